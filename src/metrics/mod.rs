//! Prometheus metrics: one registry per gateway (so tests can run several gateways in one process), served on
//! `GET /metrics`. Names follow the Prometheus conventions: `odd_gateway_*`, `_total` for counters,
//! `_seconds` and `_bytes` in base units. docs/operations.md lists them all.
//!
//! Hot paths never look labels up: a connection resolves its transport's counters once (`LinkMetrics`).
//! A leaf module: other layers call its event-named methods; it imports no layer but `protocol`'s names.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

mod process;
mod series;

use crate::protocol::MessageType;

/// The `transport` label values, one per transport (`TransportKind::as_str`; a test in `transport` keeps the
/// two lists equal). Metrics is a leaf: it names transports by label, it does not import them.
pub const TRANSPORTS: [&str; 4] = ["tcp", "tls", "quic", "ws"];

/// Why a request failed, as far as the metrics care; the label values are a fixed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `odd_gateway_auth_failures_total{reason}`.
    Auth(&'static str),
    /// `odd_gateway_protocol_errors_total{kind}`.
    Protocol(&'static str),
}

pub struct Metrics {
    registry: Registry,
    /// `process_*`, read from `/proc` at each scrape (`render`).
    process: process::ProcessMetrics,
    pub connections_open: IntGaugeVec,
    pub connections_total: IntCounterVec,
    pub connections_closed_total: IntCounterVec,
    pub frames_received_total: IntCounterVec,
    pub frames_sent_total: IntCounterVec,
    pub bytes_received_total: IntCounterVec,
    pub bytes_sent_total: IntCounterVec,
    pub commands_total: IntCounterVec,
    pub command_duration_seconds: HistogramVec,
    pub fanout_deliveries_total: IntCounter,
    pub pushes_dropped_total: IntCounterVec,
    pub slow_consumer_disconnects_total: IntCounterVec,
    pub auth_failures_total: IntCounterVec,
    pub protocol_errors_total: IntCounterVec,
    pub rooms_loaded: IntGauge,
    pub room_members: IntGauge,
    pub messages_stored_total: IntCounter,
    pub store_commit_duration_seconds: Histogram,
    pub store_batch_messages: Histogram,
    pub store_commit_failures_total: IntCounter,
    pub sessions_parked: IntGauge,
    pub session_resumes_total: IntCounter,
    pub bus_published_total: IntCounterVec,
    pub bus_received_total: IntCounterVec,
    pub bus_errors_total: IntCounterVec,
    pub cluster_nodes: IntGauge,
    pub history_unreadable_total: IntCounter,
    pub session_panics_total: IntCounter,
    pub memory_budget_bytes: IntGauge,
    pub memory_budget_used_bytes: IntGauge,
    pub memory_budget_refusals_total: IntCounterVec,
    pub store_up: IntGauge,
    pub store_errors_total: IntCounter,
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(h.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    h
}

/// Latency buckets from 100 µs to 10 s.
fn latency_buckets() -> Vec<f64> {
    vec![
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ]
}

impl Metrics {
    /// Builds the registry. The names and label sets are static, so registration cannot fail at run time; a
    /// clash would be a programming error caught by every test.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let process = process::ProcessMetrics::register(&r);
        let connections_open = IntGaugeVec::new(
            Opts::new(
                "odd_gateway_connections_open",
                "Connections open now, by transport.",
            ),
            &["transport"],
        )
        .unwrap_or_else(|e| panic!("metric: {e}"));
        r.register(Box::new(connections_open.clone()))
            .unwrap_or_else(|e| panic!("metric: {e}"));
        let m = Metrics {
            connections_open,
            connections_total: counter_vec(
                &r,
                "odd_gateway_connections_total",
                "Connections accepted, by transport.",
                &["transport"],
            ),
            connections_closed_total: counter_vec(
                &r,
                "odd_gateway_connections_closed_total",
                "Connections closed, by transport and reason.",
                &["transport", "reason"],
            ),
            frames_received_total: counter_vec(
                &r,
                "odd_gateway_frames_received_total",
                "Frames received, by transport and message type.",
                &["transport", "type"],
            ),
            frames_sent_total: counter_vec(
                &r,
                "odd_gateway_frames_sent_total",
                "Frames queued for sending, by transport and message type.",
                &["transport", "type"],
            ),
            bytes_received_total: counter_vec(
                &r,
                "odd_gateway_received_bytes_total",
                "Frame bytes received (header + payload), by transport.",
                &["transport"],
            ),
            bytes_sent_total: counter_vec(
                &r,
                "odd_gateway_sent_bytes_total",
                "Frame bytes queued for sending (header + payload), by transport.",
                &["transport"],
            ),
            commands_total: counter_vec(
                &r,
                "odd_gateway_commands_total",
                "Commands handled, by name and the status code answered.",
                &["command", "code"],
            ),
            command_duration_seconds: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "odd_gateway_command_duration_seconds",
                        "Time from a command's arrival to its answer, by command.",
                    )
                    .buckets(latency_buckets()),
                    &["command"],
                )
                .unwrap_or_else(|e| panic!("metric: {e}"));
                r.register(Box::new(h.clone()))
                    .unwrap_or_else(|e| panic!("metric: {e}"));
                h
            },
            fanout_deliveries_total: counter(
                &r,
                "odd_gateway_fanout_deliveries_total",
                "Messages pushed to recipients (one per recipient connection).",
            ),
            pushes_dropped_total: counter_vec(
                &r,
                "odd_gateway_pushes_dropped_total",
                "Pushes not queued because the recipient's queue was full, by transport.",
                &["transport"],
            ),
            slow_consumer_disconnects_total: counter_vec(
                &r,
                "odd_gateway_slow_consumer_disconnects_total",
                "Connections cut off because they did not read fast enough, by transport.",
                &["transport"],
            ),
            auth_failures_total: counter_vec(
                &r,
                "odd_gateway_auth_failures_total",
                "Rejected connects, by reason.",
                &["reason"],
            ),
            protocol_errors_total: counter_vec(
                &r,
                "odd_gateway_protocol_errors_total",
                "Malformed input, by kind.",
                &["kind"],
            ),
            rooms_loaded: gauge(
                &r,
                "odd_gateway_rooms",
                "Rooms with at least one member present.",
            ),
            room_members: gauge(
                &r,
                "odd_gateway_room_members",
                "Member pipes present in rooms.",
            ),
            messages_stored_total: counter(
                &r,
                "odd_gateway_messages_stored_total",
                "Messages committed to the store.",
            ),
            store_commit_duration_seconds: histogram(
                &r,
                "odd_gateway_store_commit_duration_seconds",
                "Time to commit one journal batch.",
                latency_buckets(),
            ),
            store_batch_messages: histogram(
                &r,
                "odd_gateway_store_batch_messages",
                "Messages per committed journal batch.",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
            ),
            store_commit_failures_total: counter(
                &r,
                "odd_gateway_store_commit_failures_total",
                "Journal batches whose commit failed.",
            ),
            sessions_parked: gauge(
                &r,
                "odd_gateway_sessions_parked",
                "Sessions kept for a fast reconnect after losing their transport.",
            ),
            session_resumes_total: counter(
                &r,
                "odd_gateway_session_resumes_total",
                "Sessions taken over by a fast reconnect.",
            ),
            bus_published_total: counter_vec(
                &r,
                "odd_gateway_bus_published_total",
                "Events this node published on the cluster bus, by kind.",
                &["kind"],
            ),
            bus_received_total: counter_vec(
                &r,
                "odd_gateway_bus_received_total",
                "Events this node received from the cluster bus (its own included), by kind.",
                &["kind"],
            ),
            bus_errors_total: counter_vec(
                &r,
                "odd_gateway_bus_errors_total",
                "Cluster bus failures: publish, decode.",
                &["kind"],
            ),
            cluster_nodes: gauge(
                &r,
                "odd_gateway_cluster_nodes",
                "Nodes this node sees alive, itself included (1 for a single node).",
            ),
            history_unreadable_total: counter(
                &r,
                "odd_gateway_history_unreadable_total",
                "Stored messages a history read could not render (served as placeholders).",
            ),
            session_panics_total: counter(
                &r,
                "odd_gateway_session_panics_total",
                "Session tasks that panicked (and were cleaned up like a normal end).",
            ),
            memory_budget_bytes: gauge(
                &r,
                "odd_gateway_memory_budget_bytes",
                "The process-wide budget for reassembly buffers and outbound queues (limits.memory_budget_bytes).",
            ),
            memory_budget_used_bytes: gauge(
                &r,
                "odd_gateway_memory_budget_used_bytes",
                "Bytes held now in reassembly buffers and outbound queues, all connections together.",
            ),
            memory_budget_refusals_total: counter_vec(
                &r,
                "odd_gateway_memory_budget_refusals_total",
                "Connections closed because the memory budget was exhausted, by what they wanted to hold.",
                &["what"],
            ),
            store_up: {
                let g = gauge(
                    &r,
                    "odd_gateway_store_up",
                    "1 while the store answers and commits (checked every 5 s and by /readyz), else 0.",
                );
                g.set(1);
                g
            },
            store_errors_total: counter(
                &r,
                "odd_gateway_store_errors_total",
                "Requests of any kind (join, chmod, history, send, ...) refused because the store failed.",
            ),
            process,
            registry: r,
        };
        m.start_at_zero();
        m
    }

    /// Every metric family this gateway can export (including ones with no samples yet), for checks that
    /// dashboards and alert rules only name real metrics.
    pub fn family_names(&self) -> Vec<String> {
        use prometheus::core::Collector;
        let collectors: Vec<&dyn Collector> = vec![
            &self.connections_open,
            &self.connections_total,
            &self.connections_closed_total,
            &self.frames_received_total,
            &self.frames_sent_total,
            &self.bytes_received_total,
            &self.bytes_sent_total,
            &self.commands_total,
            &self.command_duration_seconds,
            &self.fanout_deliveries_total,
            &self.pushes_dropped_total,
            &self.slow_consumer_disconnects_total,
            &self.auth_failures_total,
            &self.protocol_errors_total,
            &self.rooms_loaded,
            &self.room_members,
            &self.messages_stored_total,
            &self.store_commit_duration_seconds,
            &self.store_batch_messages,
            &self.store_commit_failures_total,
            &self.sessions_parked,
            &self.session_resumes_total,
            &self.bus_published_total,
            &self.bus_received_total,
            &self.bus_errors_total,
            &self.cluster_nodes,
            &self.history_unreadable_total,
            &self.session_panics_total,
            &self.memory_budget_bytes,
            &self.memory_budget_used_bytes,
            &self.memory_budget_refusals_total,
            &self.store_up,
            &self.store_errors_total,
        ];
        let mut names: Vec<String> = collectors
            .iter()
            .flat_map(|c| c.desc().into_iter().map(|d| d.fq_name.clone()))
            .collect();
        // What the process collector exports on Linux.
        names.extend(
            [
                "process_cpu_seconds_total",
                "process_open_fds",
                "process_max_fds",
                "process_virtual_memory_bytes",
                "process_resident_memory_bytes",
                "process_start_time_seconds",
                "process_threads",
            ]
            .map(String::from),
        );
        names
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        self.process.refresh();
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }

    /// One answered command: counted by name and status code, its latency observed from `started`.
    pub fn command_answered(&self, name: &str, code: &str, started: std::time::Instant) {
        self.commands_total.with_label_values(&[name, code]).inc();
        self.command_duration_seconds
            .with_label_values(&[name])
            .observe(started.elapsed().as_secs_f64());
    }

    /// A command whose arguments could not be parsed (no name to label it with).
    pub fn command_unparsed(&self) {
        self.commands_total
            .with_label_values(&["invalid", crate::protocol::status::codes::CALL_FAILED])
            .inc();
    }

    /// A request refused for a reason operators watch: a failed authentication or malformed input.
    pub fn request_failed(&self, failure: Failure) {
        match failure {
            Failure::Auth(reason) => self.auth_failures_total.with_label_values(&[reason]).inc(),
            Failure::Protocol(kind) => self.protocol_errors_total.with_label_values(&[kind]).inc(),
        }
    }

    /// Counters of one connection, resolved once.
    pub fn link(&self, t: &str) -> LinkMetrics {
        let types = [
            MessageType::Abort,
            MessageType::AckWindowSize,
            MessageType::Ack,
            MessageType::Command,
        ];
        LinkMetrics {
            frames_sent: types.map(|m| self.frames_sent_total.with_label_values(&[t, m.name()])),
            frames_received: types
                .map(|m| self.frames_received_total.with_label_values(&[t, m.name()])),
            bytes_sent: self.bytes_sent_total.with_label_values(&[t]),
            bytes_received: self.bytes_received_total.with_label_values(&[t]),
            dropped: self.pushes_dropped_total.with_label_values(&[t]),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// One connection's counters.
#[derive(Clone, Debug)]
pub struct LinkMetrics {
    frames_sent: [IntCounter; 4],
    frames_received: [IntCounter; 4],
    bytes_sent: IntCounter,
    bytes_received: IntCounter,
    dropped: IntCounter,
}

fn slot(kind: MessageType) -> usize {
    kind as usize - 1
}

impl LinkMetrics {
    pub fn sent(&self, kind: MessageType, bytes: usize) {
        self.frames_sent[slot(kind)].inc();
        self.bytes_sent.inc_by(bytes as u64);
    }

    pub fn received(&self, kind: MessageType, bytes: usize) {
        self.frames_received[slot(kind)].inc();
        self.bytes_received.inc_by(bytes as u64);
    }

    pub fn dropped(&self) {
        self.dropped.inc();
    }
}
