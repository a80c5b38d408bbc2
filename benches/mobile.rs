//! The gateway over a phone's bad link: QUIC, TLS and WSS (plain TCP and WS on request) through an emulated
//! mobile network, with real processes on both sides.
//!
//! Two network namespaces, `oddm-gw` (198.18.0.1) and `oddm-ph` (198.18.0.2), each with a TUN device; this
//! process relays packets between them in userspace (`mobile/link.rs`) and applies delay, jitter, loss, a rate
//! limit with a drop-tail queue, blackouts and address changes (`mobile/netns.rs`). The gateway release binary
//! runs in `oddm-gw`, with a fresh data directory and its dev certificate; the sender (this binary,
//! `--role sender`) runs beside it over loopback; the phone runs this binary again (`--role probe`, the library
//! client) and the real CLI (`odd chat`) in `oddm-ph`. Scenarios: `mobile/steady.rs` (relay check, connect,
//! latency at loss, bulk, head-of-line) and `mobile/outage.rs` (address change, blackout).
//!
//! Run (as root): `cargo bench --bench mobile`. Environment:
//! - `MOBILE_TRANSPORTS` (quic,tls,wss; also tcp, ws), `MOBILE_SCENARIOS`
//!   (relay,connect,latency,bulk,hol,blackout,netchange), `MOBILE_RTT_MS` and `MOBILE_LOSS` (comma lists,
//!   percent; override each scenario's own), `MOBILE_RATE_MBIT` (10; 0 = unlimited), `MOBILE_QUEUE` (packets,
//!   64), `MOBILE_JITTER_MS` (0), `MOBILE_BLACKOUTS` (seconds, 5,20; add 60 to measure the long one),
//!   `MOBILE_CHANGES` (notified,silent), `MOBILE_CONNECTS` (10), `MOBILE_MESSAGES` (120 per latency run),
//!   `MOBILE_FILES` (10), `MOBILE_AFTER_S` (40: how long an outage run waits for recovery), `MOBILE_CHAT`
//!   (1; 0 = no `odd chat`), `MOBILE_BIN_DIR` (target/release: where `odd-gateway` and `odd` are, so an older
//!   build can be measured with the same harness), `MOBILE_DEBUG` (1: after each outage run, a timeline of what
//!   every client and the gateway's log said).
//!
//! The phone-side library probe is compiled from this tree; `odd chat` and the gateway come from
//! `MOBILE_BIN_DIR`. Every scenario is bounded; the default run takes about 8.5 minutes.

#[path = "mobile/link.rs"]
mod link;
#[path = "mobile/measure.rs"]
mod measure;
#[path = "mobile/netns.rs"]
mod netns;
#[path = "mobile/outage.rs"]
mod outage;
#[path = "mobile/probe.rs"]
mod probe;
#[path = "mobile/procs.rs"]
mod procs;
#[path = "mobile/sender.rs"]
mod sender;
#[path = "mobile/steady.rs"]
mod steady;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use netns::{Topology, GW_ADDR, GW_NS, PH_NS};
use procs::{Gateway, Proc};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--role") {
        let role = args.get(i + 1).cloned().unwrap_or_default();
        let spec: Value = serde_json::from_str(args.get(i + 2).map_or("{}", |s| s.as_str()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        return match role.as_str() {
            "probe" => rt.block_on(probe::run(spec)),
            "sender" => rt.block_on(sender::run(spec)),
            other => anyhow::bail!("unknown role {other:?}"),
        };
    }
    if !args.iter().any(|a| a == "--bench") {
        return Ok(());
    }
    if let Some(why) = netns::unavailable() {
        eprintln!("\n*** mobile bench SKIPPED: {why} ***\n");
        return Ok(());
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        // Dropping the run (on a signal too) drops its processes (killed) and the topology (torn down).
        tokio::select! {
            r = bench() => r,
            _ = tokio::signal::ctrl_c() => { eprintln!("interrupted: cleaning up"); Ok(()) }
            _ = term.recv() => { eprintln!("terminated: cleaning up"); Ok(()) }
        }
    })?;
    netns::cleanup("oddm");
    Ok(())
}

fn list<T: std::str::FromStr + Clone>(name: &str, default: &[T]) -> Vec<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.split(',').filter_map(|s| s.trim().parse().ok()).collect()
        }
        _ => default.to_vec(),
    }
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

pub struct Config {
    pub transports: Vec<String>,
    pub scenarios: Vec<String>,
    /// Set only when the environment names them: they override each scenario's defaults.
    pub rtts: Option<Vec<u64>>,
    pub losses: Option<Vec<f64>>,
    pub rate_mbit: f64,
    pub queue: usize,
    pub jitter_ms: u64,
    pub blackouts: Vec<u64>,
    pub changes: Vec<String>,
    pub connects: u64,
    pub messages: u64,
    pub files: u64,
    pub after: Duration,
    pub chat: bool,
    pub bin_dir: PathBuf,
}

impl Config {
    fn from_env() -> Config {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        let bin_dir = std::env::var("MOBILE_BIN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release"));
        Config {
            transports: list("MOBILE_TRANSPORTS", &s(&["quic", "tls", "wss"])),
            scenarios: list(
                "MOBILE_SCENARIOS",
                &s(&[
                    "relay",
                    "connect",
                    "latency",
                    "bulk",
                    "hol",
                    "blackout",
                    "netchange",
                ]),
            ),
            rtts: std::env::var("MOBILE_RTT_MS")
                .is_ok()
                .then(|| list("MOBILE_RTT_MS", &[100])),
            losses: std::env::var("MOBILE_LOSS")
                .is_ok()
                .then(|| list("MOBILE_LOSS", &[0.0])),
            rate_mbit: env_num("MOBILE_RATE_MBIT", 10.0),
            queue: env_num("MOBILE_QUEUE", 64),
            jitter_ms: env_num("MOBILE_JITTER_MS", 0),
            blackouts: list("MOBILE_BLACKOUTS", &[5, 20]),
            changes: list("MOBILE_CHANGES", &s(&["notified", "silent"])),
            connects: env_num("MOBILE_CONNECTS", 10),
            messages: env_num("MOBILE_MESSAGES", 120),
            files: env_num("MOBILE_FILES", 10),
            after: Duration::from_secs(env_num("MOBILE_AFTER_S", 40)),
            chat: env_num("MOBILE_CHAT", 1) != 0,
            bin_dir,
        }
    }

    pub fn rtts(&self, default: &[u64]) -> Vec<u64> {
        self.rtts.clone().unwrap_or_else(|| default.to_vec())
    }

    pub fn losses(&self, default: &[f64]) -> Vec<f64> {
        self.losses.clone().unwrap_or_else(|| default.to_vec())
    }
}

/// Everything a scenario uses: the topology, the gateway, the sender.
pub struct Bench {
    pub cfg: Config,
    pub topo: Topology,
    pub gw: Gateway,
    pub sender: Proc,
    exe: PathBuf,
}

impl Bench {
    /// Both directions: RTT/2 each way, `loss_pct` each way, the configured rate, queue and jitter.
    pub fn shape(&self, rtt_ms: u64, loss_pct: f64) -> anyhow::Result<()> {
        self.topo.link()?.shape(link::Shape {
            delay: Duration::from_micros(rtt_ms * 500),
            jitter: Duration::from_millis(self.cfg.jitter_ms),
            loss: loss_pct / 100.0,
            rate_bps: (self.cfg.rate_mbit * 1e6) as u64,
            queue: self.cfg.queue,
        });
        Ok(())
    }

    pub fn url(tr: &str) -> anyhow::Result<&'static str> {
        Ok(match tr {
            "quic" => "quic://localhost:7102",
            "tls" => "tls://localhost:7101",
            "wss" => "wss://localhost:7443/im",
            "tcp" => "tcp://localhost:7100",
            "ws" => "ws://localhost:7180/im",
            other => anyhow::bail!("unknown transport {other:?}: quic, tls, wss, tcp or ws"),
        })
    }

    /// A probe in the phone's namespace; `spec` gets the URL and certificate added.
    pub fn probe(&self, tr: &str, mut spec: Value) -> anyhow::Result<Proc> {
        spec["url"] = json!(Bench::url(tr)?);
        spec["ca"] = json!(self.gw.cert.to_string_lossy());
        let args = vec!["--role".to_string(), "probe".into(), spec.to_string()];
        let name = format!("probe-{tr}");
        Proc::spawn(&name, PH_NS, &self.exe, &args, &[], procs::json_line, true)
    }

    /// `odd chat --room R` in the phone's namespace.
    pub fn chat(&self, tr: &str, room: &str) -> anyhow::Result<Proc> {
        let args: Vec<String> = [
            "--url",
            Bench::url(tr)?,
            "--ca",
            &self.gw.cert.to_string_lossy(),
            "chat",
            "--room",
            room,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let program = self.cfg.bin_dir.join("odd");
        let name = format!("chat-{tr}");
        Proc::spawn(&name, PH_NS, &program, &args, &[], procs::chat_line, true)
    }

    /// The sender joins `rooms`.
    pub async fn join(&mut self, rooms: &[String]) -> anyhow::Result<()> {
        let seen = self.sender.events.of("joined").len();
        self.sender
            .cmd(json!({"cmd": "join", "rooms": rooms}))
            .await?;
        match self
            .sender
            .events
            .next("joined", seen, Duration::from_secs(20))
            .await
        {
            Some(v) if v["ok"] == true => Ok(()),
            _ => anyhow::bail!("the sender could not join {rooms:?}"),
        }
    }

    /// Starts posting to `rooms` at `rate` per second, `count` times (0: until `stop_stream`).
    pub async fn stream(
        &mut self,
        rooms: &[String],
        rate: f64,
        count: u64,
    ) -> anyhow::Result<usize> {
        let seen = self.sender.events.of("streamed").len();
        self.sender
            .cmd(json!({"cmd": "stream", "rooms": rooms, "rate": rate, "count": count}))
            .await?;
        Ok(seen)
    }

    /// Waits for the stream started when `seen` streams had ended to end (stopping it first if `stop`).
    pub async fn streamed(
        &mut self,
        seen: usize,
        stop: bool,
        within: Duration,
    ) -> anyhow::Result<Value> {
        if stop {
            self.sender.cmd(json!({"cmd": "stop"})).await?;
        }
        self.sender
            .events
            .next("streamed", seen, within)
            .await
            .ok_or_else(|| anyhow::anyhow!("the sender's stream did not end"))
    }

    /// Users the room lists (server API), or None.
    pub async fn presence(&mut self, room: &str) -> Option<u64> {
        let seen = self.sender.events.of("presence").len();
        self.sender
            .cmd(json!({"cmd": "presence", "room": room}))
            .await
            .ok()?;
        let v = self
            .sender
            .events
            .next("presence", seen, Duration::from_secs(15))
            .await?;
        v["count"].as_u64()
    }
}

async fn bench() -> anyhow::Result<()> {
    let cfg = Config::from_env();
    for bin in ["odd-gateway", "odd"] {
        if !cfg.bin_dir.join(bin).exists() {
            anyhow::bail!(
                "{} is missing: `cargo build --release --bins`, or set MOBILE_BIN_DIR",
                cfg.bin_dir.join(bin).display()
            );
        }
    }
    let topo = Topology::up("oddm")?;
    let gw = Gateway::start(&cfg.bin_dir).await?;
    let exe = std::env::current_exe()?;
    let spec = json!({"url": format!("tcp://{GW_ADDR}:{}", procs::PORT_TCP),
                      "http": format!("http://{GW_ADDR}:{}", procs::PORT_HTTP), "key": gw.api_key});
    let args = vec!["--role".to_string(), "sender".into(), spec.to_string()];
    let sender = Proc::spawn("sender", GW_NS, &exe, &args, &[], procs::json_line, true)?;
    if !sender
        .events
        .until(Duration::from_secs(20), |e| {
            e.iter().any(|v| v["ev"] == "ready")
        })
        .await
    {
        anyhow::bail!("the sender did not connect: {}", sender.stderr_tail());
    }
    println!(
        "mobile bench: binaries from {}, transports {:?}, link rate {} Mbit/s, queue {} packets, jitter {} ms",
        cfg.bin_dir.display(),
        cfg.transports,
        cfg.rate_mbit,
        cfg.queue,
        cfg.jitter_ms
    );
    let mut b = Bench {
        cfg,
        topo,
        gw,
        sender,
        exe,
    };
    for scenario in b.cfg.scenarios.clone() {
        let started = std::time::Instant::now();
        let r = match scenario.as_str() {
            "relay" => steady::relay(&mut b).await,
            "connect" => steady::connect(&mut b).await,
            "latency" => steady::latency(&mut b).await,
            "bulk" => steady::bulk(&mut b).await,
            "hol" => steady::hol(&mut b).await,
            "blackout" => outage::blackouts(&mut b).await,
            "netchange" => outage::changes(&mut b).await,
            other => Err(anyhow::anyhow!("unknown scenario {other:?}")),
        };
        match r {
            Ok(()) => println!("({scenario}: {:.0} s)", started.elapsed().as_secs_f64()),
            Err(e) => println!("\n{scenario} FAILED: {e:#}"),
        }
    }
    let s = b.topo.link()?.stats();
    println!(
        "\nlink: {} packets relayed ({:.1} MB); dropped: {} by loss, {} by the queue, {} in blackouts, {} by the NAT, {} foreign; {} rewritten",
        s.relayed, s.bytes as f64 / 1e6, s.lost, s.queue_drops, s.blackout_drops, s.nat_drops, s.foreign_drops, s.rewritten
    );
    b.sender.finish(Duration::from_secs(3)).await;
    Ok(())
}
