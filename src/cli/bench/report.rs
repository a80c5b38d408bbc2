//! What a bench run found, as a table or JSON.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub scenario: String,
    pub transport: String,
    pub connections: usize,
    pub connections_per_sec: f64,
    pub messages_sent: usize,
    pub deliveries: usize,
    pub deliveries_per_sec: f64,
    /// Connect + create + join of every member.
    pub setup_seconds: f64,
    /// The gateway's CPU time (user + system) during the set-up, when the bench can see its process.
    pub server_setup_cpu_ms: Option<f64>,
    /// From the first send to the last delivery: the phase `deliveries_per_sec` is measured over.
    pub fanout_seconds: f64,
    /// Server CPU (user + system, from /proc) per 1,000 deliveries during the fan-out phase.
    pub server_cpu_ms_per_1000: Option<f64>,
    /// The bench's own CPU per 1,000 deliveries: when it is above the server's, the run measures the client.
    pub client_cpu_ms_per_1000: Option<f64>,
    pub latency_ms: Option<Latency>,
    pub server_rss_kib_per_connection: Option<f64>,
    /// The same once every receiver has read everything (the set-up figure includes pushes still queued for
    /// receivers that do not read during set-up): what a connection keeps after a burst.
    pub server_rss_kib_per_connection_after: Option<f64>,
    /// The same, every member still connected, 6 s later.
    pub server_rss_kib_per_connection_settled: Option<f64>,
    /// The anonymous part of those (`RssAnon`: no code pages), after the set-up and settled.
    pub server_anon_kib_per_connection: Option<f64>,
    pub server_anon_kib_per_connection_settled: Option<f64>,
    pub mb_per_sec: Option<f64>,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    pub fn of(mut samples: Vec<Duration>) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
        Some(Latency {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        })
    }
}

impl Report {
    pub fn print_table(&self) {
        let row = |k: &str, v: String| println!("{k:<28} {v}");
        row(
            "scenario",
            format!("{} over {}", self.scenario, self.transport),
        );
        row(
            "connections",
            format!(
                "{} ({:.0}/s established)",
                self.connections, self.connections_per_sec
            ),
        );
        if self.messages_sent > 0 {
            row("messages sent", self.messages_sent.to_string());
            row(
                "deliveries",
                format!("{} ({:.0}/s)", self.deliveries, self.deliveries_per_sec),
            );
        }
        if self.messages_sent > 0 {
            row(
                "phases",
                format!(
                    "set-up {:.2} s{}, fan-out {:.2} s (first send to last delivery)",
                    self.setup_seconds,
                    self.server_setup_cpu_ms
                        .map(|ms| format!(" ({ms:.0} ms server CPU)"))
                        .unwrap_or_default(),
                    self.fanout_seconds
                ),
            );
        }
        if let (Some(s), Some(c)) = (self.server_cpu_ms_per_1000, self.client_cpu_ms_per_1000) {
            row(
                "CPU ms per 1,000 deliveries",
                format!(
                    "server {s:.2}, bench client {c:.2}{}",
                    if c > s {
                        "  (client-bound: the client used more)"
                    } else {
                        ""
                    }
                ),
            );
        }
        if let Some(l) = &self.latency_ms {
            row(
                "send->deliver latency ms",
                format!(
                    "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
                    l.p50, l.p90, l.p99, l.max
                ),
            );
        }
        let anon = |a: Option<f64>| a.map_or(String::new(), |a| format!(" (anonymous {a:.1} KiB)"));
        if let Some(r) = self.server_rss_kib_per_connection {
            let a = anon(self.server_anon_kib_per_connection);
            row("server RSS per connection", format!("{r:.1} KiB{a}"));
        }
        if let Some(r) = self.server_rss_kib_per_connection_after {
            row("  after the run (drained)", format!("{r:.1} KiB"));
        }
        if let Some(r) = self.server_rss_kib_per_connection_settled {
            let a = anon(self.server_anon_kib_per_connection_settled);
            row("  settled (6 s later)", format!("{r:.1} KiB{a}"));
        }
        if let Some(m) = self.mb_per_sec {
            row("file throughput", format!("{m:.1} MB/s"));
        }
        row("duration", format!("{:.2} s", self.seconds));
    }
}
