//! The rooms shape (R rooms of N members, one sender per room pacing itself) for the gateway and for NATS, so
//! the latency at a fixed offered rate can be read against a server known to be fast on the same machine.
//!
//! Same pacing on both sides as `odd bench rooms --rate`: each sender keeps to absolute send times
//! (start + offset + i x gap), and sender k starts k/R of a gap late, so the offered load is steady. A room's
//! N members are its sender and N - 1 receivers; only the receivers' deliveries are counted, as in
//! `odd bench rooms`. The gateway stores every message before delivering it (durable SQLite, one
//! acknowledgement per message, 32 in flight); NATS core keeps nothing and acknowledges nothing.

use std::time::{Duration, Instant};

use super::{collect, stamp, Cpu, Outcome};

pub struct Shape {
    pub rooms: usize,
    /// Members per room, the sender included.
    pub members: usize,
    /// Messages each sender sends.
    pub messages: usize,
    /// Each sender's rate, messages per second.
    pub rate: usize,
}

impl Shape {
    fn gap(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate.max(1) as f64)
    }

    /// When sender `k` sends its `i`th message, from the common start.
    fn at(&self, k: usize, i: usize) -> Duration {
        let gap = self.gap();
        gap.mul_f64(k as f64 / self.rooms.max(1) as f64) + gap.mul_f64(i as f64)
    }
}

pub async fn gateway(shape: &Shape) -> anyhow::Result<Outcome> {
    let (rooms, n, m, rate) = (
        shape.rooms.to_string(),
        shape.members.to_string(),
        shape.messages.to_string(),
        shape.rate.to_string(),
    );
    let args = ["rooms", "--rooms", &rooms, "-n", &n, "-m", &m];
    let name = "odd-gateway tcp (durable, 32 unacknowledged)".to_string();
    super::odd_bench(name, &args, &["--rate", &rate]).await
}

pub async fn nats(shape: &Shape) -> anyhow::Result<Outcome> {
    let m = shape.messages;
    let subject = |r: usize| format!("bench.rooms.{}.{r}", std::process::id());
    let mut subs = Vec::new();
    let mut publishers = Vec::new();
    for r in 0..shape.rooms {
        for _ in 1..shape.members {
            subs.push(super::nats_subscriber(subject(r)).await?);
        }
        publishers.push(async_nats::connect("127.0.0.1:4222").await?);
    }
    let cpu = Cpu::start("nats-server");
    let epoch = Instant::now();
    let mut tasks = Vec::new();
    for (c, s) in subs {
        tasks.push(super::nats_receive(c, s, m, epoch));
    }
    let start = tokio::time::Instant::now();
    let mut senders = Vec::new();
    for (k, p) in publishers.into_iter().enumerate() {
        let times: Vec<Duration> = (0..m).map(|i| shape.at(k, i)).collect();
        let subject = subject(k);
        senders.push(tokio::spawn(async move {
            for at in times {
                tokio::time::sleep_until(start + at).await;
                p.publish(subject.clone(), stamp(epoch).into()).await?;
            }
            p.flush().await?;
            anyhow::Ok(())
        }));
    }
    for s in senders {
        s.await??;
    }
    let mut o = collect("nats (core, no persistence)", tasks, Duration::ZERO).await?;
    cpu.finish(&mut o);
    Ok(o)
}
