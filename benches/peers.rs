//! The fan-out scenario (1 sender -> N receivers) against what a user might pick instead of odd-gateway:
//! Mosquitto (MQTT, 127.0.0.1:1883) and NATS (127.0.0.1:4222), both running on these machines, next to the
//! gateway itself over TCP and QUIC. Same measurement everywhere: the sender stamps each message with the time
//! since a shared epoch, receivers record arrival - stamp.
//!
//! Beside throughput and latency every row reports the server's CPU per 1,000 deliveries (user + system, from
//! `/proc/<pid>/stat` of nats-server, mosquitto, or the gateway the harness spawned) and the bench's own, so a
//! run bound by its client is visible. Clocks start after every receiver has connected and subscribed.
//!
//! Run: `cargo bench --bench peers` (needs `cargo build --release --bins` for the gateway runs).
//! Options via env: PEERS_N (receivers, default 1000), PEERS_M (messages, default 200).
//!
//! `PEERS_SHAPE=rooms` runs the other shape instead, `odd bench rooms`'s: PEERS_ROOMS rooms (100) of PEERS_N
//! members (10), one sender per room pacing itself at PEERS_RATE msg/s (100) for PEERS_M messages (300), the
//! gateway's run and NATS's side by side (peers/rooms.rs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

#[path = "peers/rooms.rs"]
mod rooms;

const QUIET: Duration = Duration::from_secs(10);

struct Outcome {
    name: String,
    deliveries: usize,
    per_sec: f64,
    p50: f64,
    p99: f64,
    max: f64,
    /// CPU ms per 1,000 deliveries: the server's and the bench's.
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
}

/// The pid of a running server process by its exact name.
fn pid_of(name: &str) -> Option<u32> {
    let out = std::process::Command::new("pgrep")
        .args(["-x", name])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// CPU used by `pid` (or by the bench, `None`) since `before`, per 1,000 of `deliveries`.
fn per_1000(pid: Option<u32>, before: Option<Duration>, deliveries: usize) -> Option<f64> {
    let used = odd_gateway::metrics::cpu_time(pid)?.checked_sub(before?)?;
    Some(used.as_secs_f64() * 1e3 / (deliveries.max(1) as f64 / 1e3))
}

/// CPU readings at the start of a fan-out phase.
struct Cpu {
    pid: Option<u32>,
    server: Option<Duration>,
    client: Option<Duration>,
}

impl Cpu {
    fn start(server: &str) -> Cpu {
        let pid = pid_of(server);
        Cpu {
            pid,
            server: pid.and_then(|p| odd_gateway::metrics::cpu_time(Some(p))),
            client: odd_gateway::metrics::cpu_time(None),
        }
    }

    fn finish(&self, o: &mut Outcome) {
        o.server_cpu = self
            .pid
            .and_then(|p| per_1000(Some(p), self.server, o.deliveries));
        o.client_cpu = per_1000(None, self.client, o.deliveries);
    }
}

fn outcome(name: &str, mut lat: Vec<Duration>, last: Duration) -> Outcome {
    lat.sort_unstable();
    let at = |q: f64| {
        lat.get(((lat.len().max(1) - 1) as f64 * q) as usize)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    Outcome {
        name: name.to_string(),
        deliveries: lat.len(),
        per_sec: lat.len() as f64 / last.as_secs_f64().max(1e-3),
        p50: at(0.5),
        p99: at(0.99),
        max: at(1.0),
        server_cpu: None,
        client_cpu: None,
    }
}

fn stamp(epoch: Instant) -> Vec<u8> {
    (epoch.elapsed().as_micros() as u64).to_be_bytes().to_vec()
}

fn since(epoch: Instant, payload: &[u8]) -> Option<(Duration, Duration)> {
    let t = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
    let now = epoch.elapsed();
    Some((now.saturating_sub(Duration::from_micros(t)), now))
}

/// A NATS connection subscribed to `subject`, flushed so the subscription is in place before any clock starts.
async fn nats_subscriber(
    subject: String,
) -> anyhow::Result<(async_nats::Client, async_nats::Subscriber)> {
    let c = async_nats::connect("127.0.0.1:4222").await?;
    let s = c.subscribe(subject).await?;
    c.flush().await?;
    Ok((c, s))
}

/// A receiver's task: times `m` messages on `s` against `epoch` (giving up after `QUIET` without one), keeping
/// its connection `c` open meanwhile; returns the latencies and when the last message arrived.
fn nats_receive(
    c: async_nats::Client,
    mut s: async_nats::Subscriber,
    m: usize,
    epoch: Instant,
) -> tokio::task::JoinHandle<(Vec<Duration>, Duration)> {
    tokio::spawn(async move {
        let _keep = c;
        let (mut lat, mut last) = (Vec::with_capacity(m), Duration::ZERO);
        while lat.len() < m {
            match tokio::time::timeout(QUIET, s.next()).await {
                Ok(Some(msg)) => {
                    if let Some((l, now)) = since(epoch, &msg.payload) {
                        lat.push(l);
                        last = now;
                    }
                }
                _ => break,
            }
        }
        (lat, last)
    })
}

async fn nats(n: usize, m: usize) -> anyhow::Result<Outcome> {
    let subject = format!("bench.fanout.{}", std::process::id());
    let mut subs = Vec::new();
    for _ in 0..n {
        subs.push(nats_subscriber(subject.clone()).await?);
    }
    let publisher = async_nats::connect("127.0.0.1:4222").await?;
    let cpu = Cpu::start("nats-server");
    let epoch = Instant::now();
    let mut tasks = Vec::new();
    for (c, s) in subs {
        tasks.push(nats_receive(c, s, m, epoch));
    }
    for _ in 0..m {
        publisher
            .publish(subject.clone(), stamp(epoch).into())
            .await?;
    }
    publisher.flush().await?;
    let mut o = collect("nats (core, no persistence)", tasks, Duration::ZERO).await?;
    cpu.finish(&mut o);
    Ok(o)
}

async fn mosquitto(n: usize, m: usize, qos: rumqttc::QoS) -> anyhow::Result<Outcome> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let topic = format!("bench/fanout/{}", std::process::id());
    let epoch = Instant::now();
    let mut tasks = Vec::new();
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    for i in 0..n {
        let mut opts = MqttOptions::new(
            format!("odd-bench-sub-{}-{i}", std::process::id()),
            "127.0.0.1",
            1883,
        );
        opts.set_keep_alive(Duration::from_secs(30));
        let (client, mut events) = AsyncClient::new(opts, 64);
        client.subscribe(topic.clone(), qos).await?;
        let ready = ready.clone();
        tasks.push(tokio::spawn(async move {
            let _keep = client;
            let (mut lat, mut last) = (Vec::with_capacity(m), Duration::ZERO);
            while lat.len() < m {
                match tokio::time::timeout(QUIET, events.poll()).await {
                    Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => ready.add_permits(1),
                    Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                        if let Some((l, now)) = since(epoch, &p.payload) {
                            lat.push(l);
                            last = now;
                        }
                    }
                    Ok(Ok(_)) => {}
                    _ => break,
                }
            }
            (lat, last)
        }));
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), ready.acquire_many(n as u32)).await;
    // The phase starts now that every receiver is subscribed.
    let cpu = Cpu::start("mosquitto");
    let started = epoch.elapsed();
    let opts = MqttOptions::new(
        format!("odd-bench-pub-{}", std::process::id()),
        "127.0.0.1",
        1883,
    );
    let (publisher, mut events) = AsyncClient::new(opts, 1024);
    let driver = tokio::spawn(async move {
        let mut acked = 0;
        // The event loop must be polled for anything to leave; a QoS 1 publish is done at its PubAck, a QoS 0
        // one once it went out.
        while acked < m {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(Event::Outgoing(rumqttc::Outgoing::Publish(_))) if qos == QoS::AtMostOnce => {
                    acked += 1
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    for _ in 0..m {
        publisher
            .publish(topic.clone(), qos, false, stamp(epoch))
            .await?;
    }
    let _ = tokio::time::timeout(QUIET, driver).await;
    let name = format!("mosquitto (MQTT QoS {}, no persistence)", qos as u8);
    let mut o = collect(&name, tasks, started).await?;
    cpu.finish(&mut o);
    Ok(o)
}

/// Gathers the receivers' latencies; the phase runs from `started` (since the epoch) to the last delivery.
async fn collect(
    name: &str,
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, Duration)>>,
    started: Duration,
) -> anyhow::Result<Outcome> {
    let (mut all, mut last) = (Vec::new(), Duration::ZERO);
    for t in tasks {
        let (l, at) = t.await?;
        all.extend(l);
        last = last.max(at);
    }
    Ok(outcome(name, all, last.saturating_sub(started)))
}

/// The gateway through its own bench harness (`odd bench fanout --json`), as a separate process, its sender
/// keeping `window` messages in flight: `m` sends without waiting for acknowledgements, as the NATS and QoS 0
/// publishers here do; 32 is `odd bench`'s default, a client that waits for its acknowledgements.
async fn gateway(transport: &str, n: usize, m: usize, window: usize) -> anyhow::Result<Outcome> {
    let name = if window >= m {
        format!("odd-gateway {transport} (sender never waits)")
    } else {
        format!("odd-gateway {transport} ({window} unacknowledged)")
    };
    let args = [
        "fanout",
        "--transport",
        transport,
        "-n",
        &n.to_string(),
        "-m",
        &m.to_string(),
    ];
    odd_bench(name, &args, &["--window", &window.to_string()]).await
}

/// Runs `odd bench <args> --json` (the gateway it spawns, on ephemeral ports) and reads its report.
async fn odd_bench(name: String, args: &[&str], more: &[&str]) -> anyhow::Result<Outcome> {
    let odd = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("odd"))
        .ok_or_else(|| anyhow::anyhow!("no target dir"))?;
    let out = tokio::process::Command::new(&odd)
        .arg("bench")
        .args(args)
        .args(more)
        .arg("--json")
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "odd bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let l = &r["latency_ms"];
    Ok(Outcome {
        name,
        deliveries: r["deliveries"].as_u64().unwrap_or(0) as usize,
        per_sec: r["deliveries_per_sec"].as_f64().unwrap_or(f64::NAN),
        p50: l["p50"].as_f64().unwrap_or(f64::NAN),
        p99: l["p99"].as_f64().unwrap_or(f64::NAN),
        max: l["max"].as_f64().unwrap_or(f64::NAN),
        server_cpu: r["server_cpu_ms_per_1000"].as_f64(),
        client_cpu: r["client_cpu_ms_per_1000"].as_f64(),
    })
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn print(runs: Vec<(&str, anyhow::Result<Outcome>)>) {
    println!(
        "{:<48} {:>10} {:>12} {:>9} {:>9} {:>9} {:>12} {:>12}",
        "system", "delivered", "deliv/s", "p50 ms", "p99 ms", "max ms", "server ms/k", "bench ms/k"
    );
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for (what, r) in runs {
        match r {
            Ok(o) => println!(
                "{:<48} {:>10} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>12} {:>12}",
                o.name,
                o.deliveries,
                o.per_sec,
                o.p50,
                o.p99,
                o.max,
                ms(o.server_cpu),
                ms(o.client_cpu)
            ),
            Err(e) => println!("{what:<48} failed: {e:#}"),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    if std::env::var("PEERS_SHAPE").as_deref() == Ok("rooms") {
        let shape = rooms::Shape {
            rooms: env_or("PEERS_ROOMS", 100),
            members: env_or("PEERS_N", 10),
            messages: env_or("PEERS_M", 300),
            rate: env_or("PEERS_RATE", 100),
        };
        println!(
            "rooms: {} rooms of {} members, one sender per room at {} msg/s ({} msg/s in all), {} messages each\n",
            shape.rooms,
            shape.members,
            shape.rate,
            shape.rooms * shape.rate,
            shape.messages
        );
        print(vec![
            ("gateway tcp", rooms::gateway(&shape).await),
            ("nats", rooms::nats(&shape).await),
        ]);
        return Ok(());
    }
    let n = env_or("PEERS_N", 1000);
    let m = env_or("PEERS_M", 200);
    println!("fan-out: 1 sender -> {n} receivers, {m} messages\n");
    print(vec![
        ("gateway tcp", gateway("tcp", n, m, 32).await),
        ("gateway tcp", gateway("tcp", n, m, m).await),
        ("gateway quic", gateway("quic", n, m, m).await),
        ("nats", nats(n, m).await),
        (
            "mosquitto qos 0",
            mosquitto(n, m, rumqttc::QoS::AtMostOnce).await,
        ),
        (
            "mosquitto qos 1",
            mosquitto(n, m, rumqttc::QoS::AtLeastOnce).await,
        ),
    ]);
    Ok(())
}
