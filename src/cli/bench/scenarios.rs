//! The scenarios. All of them are "R rooms of N members, one sender per room" with different shapes, except
//! `idle`, which only connects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;

use super::receiver::{RawMember, Received};
use super::report::{Latency, Report};
use super::server::Target;
use super::{BenchArgs, Scenario};
use crate::client::{Client, PendingReply};

/// Connections opened at once while setting up.
const CONNECT_PARALLEL: usize = 64;

pub async fn run(target: &Target, args: &BenchArgs) -> anyhow::Result<Report> {
    let mut report = Report {
        scenario: format!("{:?}", args.scenario).to_lowercase(),
        transport: target.transport.clone(),
        ..Report::default()
    };
    let (rooms, members, payload) = match args.scenario {
        Scenario::Fanout => (1, args.connections + 1, 0),
        Scenario::Rooms => (args.rooms, args.connections, 0),
        Scenario::File => (1, 2, args.size),
        Scenario::Idle | Scenario::Churn => (0, 0, 0),
    };
    let (rss_before, anon_before) = (target.rss_kib(), target.anon_kib());
    if args.scenario == Scenario::Idle {
        let started = Instant::now();
        let clients = connect_many(target, args.connections, None).await?;
        report.connections = clients.len();
        report.connections_per_sec = clients.len() as f64 / started.elapsed().as_secs_f64();
        report.server_rss_kib_per_connection =
            per_conn(rss_before, target.rss_kib(), clients.len());
        report.server_anon_kib_per_connection =
            per_conn(anon_before, target.anon_kib(), clients.len());
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    // Set up: every member connects, opens a pipe and joins its room; the sender with the client library,
    // the receivers as cheap raw members (receiver.rs), each reading on its own task from its join on (as a
    // real client does) and counting from the one start signal that every room's sender waits for too, so the
    // rooms run concurrently and the clock starts at the first send, not before a drain.
    let expected = args.messages;
    let (go, _) = tokio::sync::broadcast::channel::<Instant>(1);
    let started = Instant::now();
    let setup_cpu = target.cpu();
    let mut groups = Vec::new();
    let mut receivers = Vec::new();
    for r in 0..rooms {
        let room = format!("bench-{}-{r}", report.scenario);
        let sender = connect_many(target, 1, Some(&room))
            .await?
            .pop()
            .ok_or_else(|| anyhow::anyhow!("no sender"))?;
        receivers.extend(join_many(target, members - 1, &room, &go, expected).await?);
        groups.push((room, sender));
    }
    let total = groups.len() + receivers.len();
    report.connections = total;
    report.setup_seconds = started.elapsed().as_secs_f64();
    report.server_setup_cpu_ms = match (setup_cpu, target.cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64() * 1000.0),
        _ => None,
    };
    report.connections_per_sec = total as f64 / report.setup_seconds;
    report.server_rss_kib_per_connection = per_conn(rss_before, target.rss_kib(), total);
    report.server_anon_kib_per_connection = per_conn(anon_before, target.anon_kib(), total);
    // Let the presence pushes of the set-up settle.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut senders = Vec::new();
    let rooms = groups.len().max(1);
    for (k, (room, (sender, pipe))) in groups.into_iter().enumerate() {
        let (size, window, mut start) = (payload, args.window.max(1), go.subscribe());
        // Paced senders are spread evenly over one gap (sender k starts k/R of a gap late), so the offered
        // load is steady rather than R messages at the same instant every gap.
        let pace = (args.rate > 0).then(|| {
            let gap = Duration::from_secs_f64(1.0 / args.rate as f64);
            (gap, gap.mul_f64(k as f64 / rooms as f64))
        });
        senders.push(tokio::spawn(async move {
            let epoch = start.recv().await.unwrap_or_else(|_| Instant::now());
            let shape = Shape {
                n: expected,
                pace,
                size,
                window,
            };
            send(sender, pipe, room, shape, epoch).await
        }));
    }
    let (server_cpu, client_cpu) = (target.cpu(), super::server::own_cpu());
    let epoch = Instant::now();
    let _ = go.send(epoch);
    let mut sent = 0;
    for s in senders {
        sent += s.await??;
    }
    let mut latencies = Vec::new();
    let mut last = Duration::ZERO;
    let mut bytes = 0usize;
    let mut still_connected = Vec::with_capacity(receivers.len());
    for r in receivers {
        let (got, member) = r.await?;
        still_connected.push(member);
        latencies.extend(got.latencies);
        last = last.max(got.last);
        bytes += got.bytes;
    }
    let per_1000 = |before: Option<Duration>, after: Option<Duration>| {
        let used = after?.checked_sub(before?)?;
        Some(used.as_secs_f64() * 1000.0 / (latencies.len().max(1) as f64 / 1000.0))
    };
    report.server_cpu_ms_per_1000 = per_1000(server_cpu, target.cpu());
    report.client_cpu_ms_per_1000 = per_1000(client_cpu, super::server::own_cpu());
    report.server_rss_kib_per_connection_after = per_conn(rss_before, target.rss_kib(), total);
    // Every member still connected, a while later: what the gateway keeps once the burst has settled.
    tokio::time::sleep(Duration::from_secs(6)).await;
    report.server_rss_kib_per_connection_settled = per_conn(rss_before, target.rss_kib(), total);
    report.server_anon_kib_per_connection_settled = per_conn(anon_before, target.anon_kib(), total);
    drop(still_connected);
    let elapsed = last.max(Duration::from_millis(1)).as_secs_f64();
    report.fanout_seconds = elapsed;
    report.messages_sent = sent;
    report.deliveries = latencies.len();
    report.deliveries_per_sec = latencies.len() as f64 / elapsed;
    report.latency_ms = Latency::of(latencies);
    if payload > 0 {
        report.mb_per_sec = Some(bytes as f64 / 1e6 / elapsed);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn per_conn(before: Option<u64>, after: Option<u64>, n: usize) -> Option<f64> {
    Some(after?.saturating_sub(before?) as f64 / n.max(1) as f64)
}

async fn connect_many(
    target: &Target,
    n: usize,
    room: Option<&str>,
) -> anyhow::Result<Vec<(Client, u16)>> {
    let room = room.map(str::to_string);
    let results: Vec<anyhow::Result<(Client, u16)>> = futures::stream::iter(0..n)
        .map(|i| {
            let room = room.clone();
            async move {
                let c = Client::connect_with(target.url_for(i), "", &target.options).await?;
                let pipe = c.create("messaging").await?;
                if let Some(room) = &room {
                    c.join(pipe, room).await?;
                }
                anyhow::Ok((c, pipe))
            }
        })
        .buffer_unordered(CONNECT_PARALLEL)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Joins `n` raw members to `room`, each then reading on its own task (see `RawMember::receive`) until it has
/// counted `expected` messages after `go`; the task hands the member back, still connected, with what it saw.
async fn join_many(
    target: &Target,
    n: usize,
    room: &str,
    go: &tokio::sync::broadcast::Sender<Instant>,
    expected: usize,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<(Received, RawMember)>>> {
    let results: Vec<anyhow::Result<_>> = futures::stream::iter(0..n)
        .map(|i| async move {
            let mut member = RawMember::join(target, i + 1, room).await?;
            let start = go.subscribe();
            Ok(tokio::spawn(async move {
                let got = member.receive(expected, start).await;
                (got, member)
            }))
        })
        .buffer_unordered(CONNECT_PARALLEL)
        .collect()
        .await;
    results.into_iter().collect()
}

/// What one sender sends: `n` messages of `size` bytes, paced (gap, offset) or flat out with `window` in flight.
struct Shape {
    n: usize,
    pace: Option<(Duration, Duration)>,
    size: usize,
    window: usize,
}

async fn send(
    client: Client,
    pipe: u16,
    room: String,
    shape: Shape,
    epoch: Instant,
) -> anyhow::Result<usize> {
    let Shape {
        n,
        pace,
        size,
        window,
    } = shape;
    let payload = Bytes::from(vec![0x5Au8; size]);
    let kind = if size > 0 { "file" } else { "text" };
    let mut in_flight: std::collections::VecDeque<PendingReply> = Default::default();
    let client = Arc::new(client);
    // Paced senders keep to absolute send times (start + offset + i x gap): sleeping a gap after each send
    // would add the timer's granularity and the send's own time to every gap, and offer less than the rate.
    let start = tokio::time::Instant::now();
    for i in 0..n {
        if let Some((gap, offset)) = pace {
            tokio::time::sleep_until(start + offset + gap.mul_f64(i as f64)).await;
        }
        if in_flight.len() >= window {
            if let Some(p) = in_flight.pop_front() {
                p.wait().await?.ok()?;
            }
        }
        let t = epoch.elapsed().as_micros() as u64;
        let args =
            json!({"name": "send", "type": kind, "cast": "multi", "id": room, "data": {"t": t}});
        in_flight.push_back(client.submit(pipe, args, payload.clone()).await?);
    }
    for p in in_flight {
        p.wait().await?.ok()?;
    }
    Ok(n)
}
