//! Prometheus metrics: one registry per gateway (so tests can run several gateways in one process), served on
//! `GET /metrics`. Names follow the Prometheus conventions: `odd_gateway_*`, `_total` for counters,
//! `_seconds` and `_bytes` in base units. docs/operations.md lists them all.
//!
//! Hot paths never look labels up: a connection resolves its transport's counters once (`LinkMetrics`).
//! A leaf module: other layers call its event-named methods; it imports no layer but `protocol`'s names.

use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

mod overview;
mod process;
mod series;

pub use process::cpu_time;

use crate::protocol::MessageType;

/// The `transport` label values, one per transport (`TransportKind::as_str`; a test in `transport` keeps the
/// two lists equal). Metrics is a leaf: it names transports by label, it does not import them.
pub const TRANSPORTS: [&str; 4] = ["tcp", "tls", "quic", "ws"];

/// The hooks with a durable outbox, the `hook` label values of `odd_gateway_hook_backlog_messages`.
pub const OUTBOX_HOOKS: [&str; 3] = ["message", "offline", "events"];

/// Why a request failed, as far as the metrics care; the label values are a fixed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `odd_gateway_auth_failures_total{reason}`.
    Auth(&'static str),
    /// `odd_gateway_protocol_errors_total{kind}`.
    Protocol(&'static str),
}

/// Declares every metric once: the field, its type and how it is made. The macro registers each one, lists
/// them all for `family_names`, and builds the struct, so a metric cannot be declared but not registered.
macro_rules! metrics_table {
    ($( $(#[$doc:meta])* $field:ident: $ty:ty = $make:expr; )*) => {
        pub struct Metrics {
            registry: Registry,
            /// `process_*`, read from `/proc` at each scrape (`render`).
            process: process::ProcessMetrics,
            $( $(#[$doc])* pub $field: $ty, )*
        }

        impl Metrics {
            fn build() -> Metrics {
                let registry = Registry::new();
                let process = process::ProcessMetrics::register(&registry);
                Metrics {
                    $( $field: register(&registry, $make), )*
                    process,
                    registry,
                }
            }

            fn collectors(&self) -> Vec<&dyn Collector> {
                vec![$( &self.$field as &dyn Collector ),*]
            }
        }
    };
}

metrics_table! {
    connections_open: IntGaugeVec = gauge_vec("odd_gateway_connections_open", "Connections open now, by transport.", &["transport"]);
    connections_total: IntCounterVec = counter_vec("odd_gateway_connections_total", "Connections accepted, by transport.", &["transport"]);
    connections_closed_total: IntCounterVec = counter_vec("odd_gateway_connections_closed_total", "Connections closed, by transport and reason.", &["transport", "reason"]);
    frames_received_total: IntCounterVec = counter_vec("odd_gateway_frames_received_total", "Frames received, by transport and message type.", &["transport", "type"]);
    frames_sent_total: IntCounterVec = counter_vec("odd_gateway_frames_sent_total", "Frames queued for sending, by transport and message type.", &["transport", "type"]);
    bytes_received_total: IntCounterVec = counter_vec("odd_gateway_received_bytes_total", "Frame bytes received (header + payload), by transport.", &["transport"]);
    bytes_sent_total: IntCounterVec = counter_vec("odd_gateway_sent_bytes_total", "Frame bytes queued for sending (header + payload), by transport.", &["transport"]);
    commands_total: IntCounterVec = counter_vec("odd_gateway_commands_total", "Commands handled, by name and the status code answered.", &["command", "code"]);
    command_duration_seconds: HistogramVec = histogram_vec("odd_gateway_command_duration_seconds", "Time from a command's arrival to its answer, by command.", latency_buckets(), &["command"]);
    fanout_deliveries_total: IntCounter = counter("odd_gateway_fanout_deliveries_total", "Messages pushed to recipients (one per recipient connection).");
    pushes_dropped_total: IntCounterVec = counter_vec("odd_gateway_pushes_dropped_total", "Pushes not queued because the recipient's queue was full, by transport.", &["transport"]);
    slow_consumer_disconnects_total: IntCounterVec = counter_vec("odd_gateway_slow_consumer_disconnects_total", "Connections cut off because they did not read fast enough, by transport.", &["transport"]);
    auth_failures_total: IntCounterVec = counter_vec("odd_gateway_auth_failures_total", "Rejected connects, by reason.", &["reason"]);
    protocol_errors_total: IntCounterVec = counter_vec("odd_gateway_protocol_errors_total", "Malformed input, by kind.", &["kind"]);
    rooms_loaded: IntGauge = gauge("odd_gateway_rooms", "Rooms with at least one member present.");
    room_members: IntGauge = gauge("odd_gateway_room_members", "Member pipes present in rooms.");
    messages_stored_total: IntCounter = counter("odd_gateway_messages_stored_total", "Messages committed to the store.");
    store_commit_duration_seconds: Histogram = histogram("odd_gateway_store_commit_duration_seconds", "Time to commit one journal batch.", latency_buckets());
    store_batch_messages: Histogram = histogram("odd_gateway_store_batch_messages", "Messages per committed journal batch.", vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]);
    store_commit_failures_total: IntCounter = counter("odd_gateway_store_commit_failures_total", "Journal batches whose commit failed.");
    sessions_parked: IntGauge = gauge("odd_gateway_sessions_parked", "Sessions kept for a fast reconnect after losing their transport.");
    session_resumes_total: IntCounter = counter("odd_gateway_session_resumes_total", "Sessions taken over by a fast reconnect.");
    bus_published_total: IntCounterVec = counter_vec("odd_gateway_bus_published_total", "Events this node published on the cluster bus, by kind.", &["kind"]);
    bus_received_total: IntCounterVec = counter_vec("odd_gateway_bus_received_total", "Events this node received from the cluster bus (its own included), by kind.", &["kind"]);
    bus_errors_total: IntCounterVec = counter_vec("odd_gateway_bus_errors_total", "Cluster bus failures: publish, decode, encode.", &["kind"]);
    cluster_nodes: IntGauge = gauge("odd_gateway_cluster_nodes", "Nodes this node sees alive, itself included (1 for a single node).");
    bus_connected: IntGauge = gauge("odd_gateway_bus_connected", "1 while this node's cluster bus connection is up, 0 while it serves on its own (always 1 for a single node).");
    history_unreadable_total: IntCounter = counter("odd_gateway_history_unreadable_total", "Stored messages a history read could not render (served as placeholders).");
    search_indexed_total: IntCounter = counter("odd_gateway_search_indexed_total", "Messages the search indexer has looked at (indexed, or found with no words).");
    history_pruned_total: IntCounterVec = counter_vec("odd_gateway_history_pruned_total", "Messages deleted by retention, by thread kind (room, conversation).", &["thread"]);
    history_redacted_total: IntCounter = counter("odd_gateway_history_redacted_total", "Messages redacted (by their sender, a room's x holder or the server API).");
    hook_calls_total: IntCounterVec = counter_vec("odd_gateway_hook_calls_total", "Calls to the backend's hooks, by hook and outcome (accepted, refused, unavailable).", &["hook", "outcome"]);
    hook_duration_seconds: HistogramVec = histogram_vec("odd_gateway_hook_duration_seconds", "Time a hook call took, by hook.", latency_buckets(), &["hook"]);
    hook_backlog_messages: IntGaugeVec = gauge_vec("odd_gateway_hook_backlog_messages", "Committed messages an asynchronous hook has yet to deliver (its durable outbox), on the node holding its lease; 0 elsewhere.", &["hook"]);
    server_api_requests_total: IntCounterVec = counter_vec("odd_gateway_server_api_requests_total", "Server API calls, by key name (`-`: no or a wrong key), call and outcome.", &["key", "call", "outcome"]);
    session_panics_total: IntCounter = counter("odd_gateway_session_panics_total", "Session tasks that panicked (and were cleaned up like a normal end).");
    rtc_publications: IntGauge = gauge("odd_gateway_rtc_publications", "WebRTC publications the SFU holds now.");
    rtc_players: IntGauge = gauge("odd_gateway_rtc_players", "WebRTC players (subscribers) the SFU serves now.");
    rtc_peers_total: IntCounterVec = counter_vec("odd_gateway_rtc_peers_total", "Peer connections the SFU set up, by role (publisher, player).", &["role"]);
    rtc_datagrams_total: IntCounterVec = counter_vec("odd_gateway_rtc_datagrams_total", "UDP datagrams on the SFU's socket (STUN, DTLS, RTP, RTCP), by direction (in, out).", &["dir"]);
    rtc_datagram_bytes_total: IntCounterVec = counter_vec("odd_gateway_rtc_datagram_bytes_total", "UDP bytes on the SFU's socket, by direction (in, out).", &["dir"]);
    rtc_rtp_packets_total: IntCounterVec = counter_vec("odd_gateway_rtc_rtp_packets_total", "RTP packets, by direction (in: from publishers, out: to players), as str0m's media statistics report them (every 2 s).", &["dir"]);
    rtc_rtp_bytes_total: IntCounterVec = counter_vec("odd_gateway_rtc_rtp_bytes_total", "RTP payload bytes, by direction (in, out).", &["dir"]);
    rtc_nacks_total: IntCounterVec = counter_vec("odd_gateway_rtc_nacks_total", "NACKs (lost packets asked again), by direction (sent: to publishers, received: from players).", &["dir"]);
    rtc_frames_forwarded_total: IntCounter = counter("odd_gateway_rtc_frames_forwarded_total", "Media frames written to players (one per frame per player).");
    rtc_keyframe_requests_total: IntCounterVec = counter_vec("odd_gateway_rtc_keyframe_requests_total", "Keyframe requests (PLI/FIR) sent to publishers, by cause (new_player, player, loss).", &["why"]);
    rtc_failures_total: IntCounterVec = counter_vec("odd_gateway_rtc_failures_total", "SFU failures, by stage (sdp, connect: ICE/DTLS never completed, ice: consent lost, dtls, rtc, send, engine: the SFU task itself failed).", &["stage"]);
    memory_budget_bytes: IntGauge = gauge("odd_gateway_memory_budget_bytes", "The process-wide budget for reassembly buffers and outbound queues (limits.memory_budget_bytes).");
    memory_budget_used_bytes: IntGauge = gauge("odd_gateway_memory_budget_used_bytes", "Bytes held now in reassembly buffers and outbound queues, all connections together.");
    memory_budget_refusals_total: IntCounterVec = counter_vec("odd_gateway_memory_budget_refusals_total", "Connections closed (reassembly) and HTTP bodies refused (http_body) because the memory budget was exhausted, by what they wanted to hold.", &["what"]);
    store_up: IntGauge = gauge("odd_gateway_store_up", "1 while the store answers and commits (checked every 5 s and by /readyz), else 0.");
    store_errors_total: IntCounter = counter("odd_gateway_store_errors_total", "Requests of any kind (join, chmod, history, send, ...) refused because the store failed.");
}

/// Registers a metric made from static names; a clash or a bad name is a programming error every test catches.
fn register<M: Collector + Clone + 'static>(r: &Registry, made: Result<M, prometheus::Error>) -> M {
    let m = made.unwrap_or_else(|e| panic!("metric: {e}"));
    r.register(Box::new(m.clone()))
        .unwrap_or_else(|e| panic!("metric: {e}"));
    m
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), labels)
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    IntGaugeVec::new(Opts::new(name, help), labels)
}

fn counter(name: &str, help: &str) -> prometheus::Result<IntCounter> {
    IntCounter::new(name, help)
}

fn gauge(name: &str, help: &str) -> prometheus::Result<IntGauge> {
    IntGauge::new(name, help)
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> prometheus::Result<Histogram> {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
}

fn histogram_vec(
    name: &str,
    help: &str,
    buckets: Vec<f64>,
    labels: &[&str],
) -> prometheus::Result<HistogramVec> {
    HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
}

/// Latency buckets from 100 µs to 10 s.
fn latency_buckets() -> Vec<f64> {
    vec![
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ]
}

impl Metrics {
    /// Builds the registry, every labelled series with known label values at 0 (`series.rs`), the store
    /// reported up until a check says otherwise.
    pub fn new() -> Metrics {
        overview::mark_start();
        let m = Metrics::build();
        m.store_up.set(1);
        m.start_at_zero();
        m
    }

    /// Every metric family this gateway can export (including ones with no samples yet), for checks that
    /// dashboards and alert rules only name real metrics.
    pub fn family_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .collectors()
            .iter()
            .flat_map(|c| c.desc().into_iter().map(|d| d.fq_name.clone()))
            .collect();
        names.extend(process::NAMES.map(String::from));
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
    /// A datagram of `bytes` arrived on the SFU's socket.
    pub fn rtc_datagram_in(&self, bytes: usize) {
        self.rtc_datagrams_total.with_label_values(&["in"]).inc();
        self.rtc_datagram_bytes_total
            .with_label_values(&["in"])
            .inc_by(bytes as u64);
    }

    /// A datagram of `bytes` left the SFU's socket.
    pub fn rtc_datagram_out(&self, bytes: usize) {
        self.rtc_datagrams_total.with_label_values(&["out"]).inc();
        self.rtc_datagram_bytes_total
            .with_label_values(&["out"])
            .inc_by(bytes as u64);
    }

    /// RTP counts a peer's media statistics grew by (`ingress`: from a publisher).
    pub fn rtc_rtp(&self, ingress: bool, packets: u64, bytes: u64, nacks: u64) {
        let dir = if ingress { "in" } else { "out" };
        self.rtc_rtp_packets_total
            .with_label_values(&[dir])
            .inc_by(packets);
        self.rtc_rtp_bytes_total
            .with_label_values(&[dir])
            .inc_by(bytes);
        self.rtc_nacks_total
            .with_label_values(&[if ingress { "sent" } else { "received" }])
            .inc_by(nacks);
    }

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

    /// `frames` frames of one kind, `bytes` together (a batch of pushes).
    pub fn sent_many(&self, kind: MessageType, frames: usize, bytes: usize) {
        self.frames_sent[slot(kind)].inc_by(frames as u64);
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
