//! The fan-out scenario (1 sender -> N receivers) against what a user might pick instead of odd-gateway:
//! Mosquitto (MQTT, 127.0.0.1:1883) and NATS (127.0.0.1:4222), both running on these machines, next to the
//! gateway itself over TCP and QUIC. Same measurement everywhere: the sender stamps each message with the time
//! since a shared epoch, receivers record arrival - stamp.
//!
//! Run: `cargo bench --bench peers` (needs `cargo build --release --bins` for the gateway runs).
//! Options via env: PEERS_N (receivers, default 1000), PEERS_M (messages, default 200).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

const QUIET: Duration = Duration::from_secs(10);

struct Outcome {
    name: String,
    deliveries: usize,
    per_sec: f64,
    p50: f64,
    p99: f64,
    max: f64,
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

async fn nats(n: usize, m: usize) -> anyhow::Result<Outcome> {
    let subject = format!("bench.fanout.{}", std::process::id());
    let mut subs = Vec::new();
    for _ in 0..n {
        let c = async_nats::connect("127.0.0.1:4222").await?;
        let s = c.subscribe(subject.clone()).await?;
        c.flush().await?;
        subs.push((c, s));
    }
    let epoch = Instant::now();
    let mut tasks = Vec::new();
    for (c, mut s) in subs {
        tasks.push(tokio::spawn(async move {
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
        }));
    }
    let publisher = async_nats::connect("127.0.0.1:4222").await?;
    for _ in 0..m {
        publisher
            .publish(subject.clone(), stamp(epoch).into())
            .await?;
    }
    publisher.flush().await?;
    collect("nats (core, no persistence)", tasks).await
}

async fn mosquitto(n: usize, m: usize) -> anyhow::Result<Outcome> {
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
        client.subscribe(topic.clone(), QoS::AtLeastOnce).await?;
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
    let opts = MqttOptions::new(
        format!("odd-bench-pub-{}", std::process::id()),
        "127.0.0.1",
        1883,
    );
    let (publisher, mut events) = AsyncClient::new(opts, 1024);
    let driver = tokio::spawn(async move {
        let mut acked = 0;
        while acked < m {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    for _ in 0..m {
        publisher
            .publish(topic.clone(), QoS::AtLeastOnce, false, stamp(epoch))
            .await?;
    }
    let _ = tokio::time::timeout(QUIET, driver).await;
    collect("mosquitto (MQTT QoS 1, no persistence)", tasks).await
}

async fn collect(
    name: &str,
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, Duration)>>,
) -> anyhow::Result<Outcome> {
    let (mut all, mut last) = (Vec::new(), Duration::ZERO);
    for t in tasks {
        let (l, at) = t.await?;
        all.extend(l);
        last = last.max(at);
    }
    Ok(outcome(name, all, last))
}

/// The gateway through its own bench harness (`odd bench fanout --json`), as a separate process.
async fn gateway(transport: &str, n: usize, m: usize) -> anyhow::Result<Outcome> {
    let odd = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("odd"))
        .ok_or_else(|| anyhow::anyhow!("no target dir"))?;
    let out = tokio::process::Command::new(&odd)
        .args([
            "bench",
            "fanout",
            "--transport",
            transport,
            "-n",
            &n.to_string(),
            "-m",
            &m.to_string(),
            "--json",
        ])
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
        name: format!("odd-gateway {transport} (committed before ack)"),
        deliveries: r["deliveries"].as_u64().unwrap_or(0) as usize,
        per_sec: r["deliveries_per_sec"].as_f64().unwrap_or(f64::NAN),
        p50: l["p50"].as_f64().unwrap_or(f64::NAN),
        p99: l["p99"].as_f64().unwrap_or(f64::NAN),
        max: l["max"].as_f64().unwrap_or(f64::NAN),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let n: usize = std::env::var("PEERS_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let m: usize = std::env::var("PEERS_M")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!("fan-out: 1 sender -> {n} receivers, {m} messages\n");
    println!(
        "{:<48} {:>10} {:>12} {:>9} {:>9} {:>9}",
        "system", "delivered", "deliv/s", "p50 ms", "p99 ms", "max ms"
    );
    let runs: Vec<(&str, anyhow::Result<Outcome>)> = vec![
        ("gateway tcp", gateway("tcp", n, m).await),
        ("gateway quic", gateway("quic", n, m).await),
        ("nats", nats(n, m).await),
        ("mosquitto", mosquitto(n, m).await),
    ];
    for (what, r) in runs {
        match r {
            Ok(o) => println!(
                "{:<48} {:>10} {:>12.0} {:>9.2} {:>9.2} {:>9.2}",
                o.name, o.deliveries, o.per_sec, o.p50, o.p99, o.max
            ),
            Err(e) => println!("{what:<48} failed: {e:#}"),
        }
    }
    Ok(())
}
