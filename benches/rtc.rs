//! `cargo bench --bench rtc`: what the SFU costs and carries on this machine.
//!
//! Spawns the gateway (`odd-gateway`, a separate process, so its CPU is its own from `/proc/<pid>/stat`),
//! then for each shape P publishers x S players: every publisher (a str0m peer in this process) sends 30 video
//! frames a second of a stated size and 30 opus frames, for a stated window; every player (str0m, its own
//! signaling connection, as the SDK) counts what arrives. Printed per shape: the publishers' bitrate, packets
//! the gateway sent per second (every UDP datagram out: RTP, RTCP, STUN), frames delivered / frames expected
//! (loss), the gateway's CPU per 1,000 packets out and per player (in cores), and the bench's own CPU, so a
//! run bound by the client side is visible.
//!
//! `RTC_SHAPES="1x1,1x10,4x25"` and `RTC_KBPS=1000`, `RTC_SECS=8` choose what runs; `RTC_PAUSE=35` waits that
//! many seconds before each shape (the previous shape's connections vanish without closing, so their sessions and
//! peer connections live on for the 30 s reconnect grace); `RTC_LOG` is the gateway's log filter.

#[path = "../tests/common/webrtc.rs"]
mod webrtc;

use std::process::Stdio;
use std::time::{Duration, Instant};

use odd_gateway::client::{Client, Reply};
use odd_gateway::metrics::cpu_time;
use serde_json::json;
use str0m::media::MediaKind;
use webrtc::{Offering, Peer, Seen};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free udp port")
}

/// `odd_gateway_rtc_datagrams_total{dir="out"}` from the gateway's `/metrics`.
async fn datagrams_out(http: u16) -> anyhow::Result<f64> {
    metric(http, "odd_gateway_rtc_datagrams_total{dir=\"out\"}").await
}

/// One series of the gateway's `/metrics`.
async fn metric(http: u16, series: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{http}/metrics"))
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0))
}

/// Datagrams the kernel dropped on the gateway's SFU socket (its receive buffer was full), from the `drops`
/// column of `/proc/net/udp`.
fn socket_drops(port: u16) -> u64 {
    let text = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let local = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.ends_with(&local))
        })
        .filter_map(|l| {
            l.split_whitespace()
                .last()
                .and_then(|d| d.parse::<u64>().ok())
        })
        .sum()
}

async fn signaling(tcp: u16) -> anyhow::Result<(Client, u16)> {
    let c = Client::connect(&format!("tcp://127.0.0.1:{tcp}"), "").await?;
    let p = c.create("signaling").await?;
    Ok((c, p))
}

async fn publish(tcp: u16, id: &str) -> anyhow::Result<(Client, String, Peer)> {
    let (mut c, p) = signaling(tcp).await?;
    let off = Offering::new(id).await;
    c.notify(p, json!({"name": "sdp", "type": "offer", "sdp": off.offer}))
        .await?;
    let (mut answer, mut stream) = (None, None);
    while stream.is_none() {
        let r = next_push(&mut c, "publish").await?;
        if r.name() == "sdp" {
            answer = r.args["sdp"].as_str().map(str::to_string);
        }
        if r.code() == "NetStream.Publish.Start" {
            stream = r.info()["stream"].as_str().map(str::to_string);
        }
    }
    let mut peer = off.answered(&answer.ok_or_else(|| anyhow::anyhow!("no sdp"))?);
    connected(&mut peer, "publisher").await?;
    Ok((c, stream.unwrap_or_default(), peer))
}

/// The next push within 10 s; an error status (the gateway refused `what`) is an error here too.
async fn next_push(c: &mut Client, what: &str) -> anyhow::Result<Reply> {
    let r = c
        .next_push_within(Duration::from_secs(10))
        .await
        .ok_or_else(|| anyhow::anyhow!("no answer to {what} within 10 s"))?;
    anyhow::ensure!(!r.is_error(), "{what} refused: {}", r.description());
    Ok(r)
}

/// Waits up to 10 s for the peer's ICE and DTLS to complete.
async fn connected(peer: &mut Peer, who: &str) -> anyhow::Result<()> {
    let addr = peer.addr;
    peer.next(Duration::from_secs(10), |s| {
        (*s == Seen::Connected).then_some(())
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("{who} at {addr} did not connect"))
}

async fn play(tcp: u16, stream: &str) -> anyhow::Result<(Client, Peer)> {
    let (mut c, p) = signaling(tcp).await?;
    c.notify(p, json!({"name": "play", "stream": stream}))
        .await?;
    let offer = loop {
        let r = next_push(&mut c, "play").await?;
        if r.name() == "sdp" {
            break r.args["sdp"].as_str().unwrap_or_default().to_string();
        }
    };
    let (mut peer, answer) = Peer::answer(&offer).await;
    c.notify(p, json!({"name": "sdp", "type": "answer", "sdp": answer}))
        .await?;
    connected(&mut peer, "player").await?;
    Ok((c, peer))
}

/// Counts a player's frames that arrive between `from` and `until`.
async fn count(
    mut peer: Peer,
    from: tokio::time::Instant,
    until: tokio::time::Instant,
) -> (usize, usize) {
    let (mut audio, mut video) = (0, 0);
    while let Ok(Some(s)) = tokio::time::timeout_at(until, peer.seen.recv()).await {
        if tokio::time::Instant::now() < from {
            continue;
        }
        if let Seen::Frame { kind, .. } = s {
            if kind == MediaKind::Audio {
                audio += 1;
            } else {
                video += 1;
            }
        }
    }
    (audio, video)
}

#[allow(clippy::too_many_arguments)]
async fn shape(
    tcp: u16,
    http: u16,
    udp: u16,
    pid: u32,
    p: usize,
    s: usize,
    kbps: usize,
    secs: u64,
) -> anyhow::Result<()> {
    let drops0 = socket_drops(udp);
    let send0 = metric(http, "odd_gateway_rtc_failures_total{stage=\"send\"}").await?;
    let video_bytes = kbps * 1000 / 8 / 30;
    let mut publishers = Vec::new();
    for i in 0..p {
        publishers.push(publish(tcp, &format!("bench{i}-{}", rand_id())).await?);
    }
    let mut players = Vec::new();
    for (_, stream, _) in &publishers {
        for _ in 0..s {
            let started = Instant::now();
            let player = play(tcp, stream).await.map_err(|e| {
                anyhow::anyhow!(
                    "{e} (player {} of {}, after {:?})",
                    players.len() + 1,
                    p * s,
                    started.elapsed()
                )
            })?;
            players.push(player);
        }
    }
    for (_, _, peer) in &publishers {
        peer.stream_sized(Duration::from_millis(33), video_bytes);
    }
    // Let keyframes and pacing settle, then measure a window.
    let from = tokio::time::Instant::now() + Duration::from_secs(1);
    let until = from + Duration::from_secs(secs);
    let mut counters = Vec::new();
    let mut conns = Vec::new();
    for (c, peer) in players {
        counters.push(tokio::spawn(count(peer, from, until)));
        conns.push(c);
    }
    tokio::time::sleep_until(from).await;
    let (cpu0, me0, out0, t0) = (
        cpu_time(Some(pid)),
        cpu_time(None),
        datagrams_out(http).await?,
        Instant::now(),
    );
    let mut got = (0usize, 0usize);
    for h in counters {
        let (a, v) = h.await?;
        got.0 += a;
        got.1 += v;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let (cpu1, me1, out1) = (
        cpu_time(Some(pid)),
        cpu_time(None),
        datagrams_out(http).await?,
    );
    let gw = cpu1
        .zip(cpu0)
        .map(|(b, a)| (b - a).as_secs_f64())
        .unwrap_or(f64::NAN);
    let me = me1
        .zip(me0)
        .map(|(b, a)| (b - a).as_secs_f64())
        .unwrap_or(f64::NAN);
    let packets = out1 - out0;
    let expected = (elapsed * (1000.0 / 33.0)) * (p * s) as f64;
    println!(
        "{p:>2} x {s:>3} at {kbps} kbit/s | out {:>8.0} pkt/s {:>7.1} Mbit/s | video frames {:>6} of ~{:>6.0} ({:>5.1}%), audio {:>6} | gateway {:>5.2} cores = {:>6.1} us/pkt, {:>5.3} cores/player, socket drops {}, send failures {} | bench {:>5.2} cores",
        packets / elapsed,
        (p * s * kbps) as f64 / 1000.0,
        got.1,
        expected,
        100.0 * got.1 as f64 / expected,
        got.0,
        gw / elapsed,
        gw * 1e6 / packets.max(1.0),
        gw / elapsed / (p * s) as f64,
        socket_drops(udp) - drops0,
        metric(http, "odd_gateway_rtc_failures_total{stage=\"send\"}").await? - send0,
        me / elapsed,
    );
    drop(conns);
    for (c, _, _) in publishers {
        c.close().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}

fn rand_id() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let shapes =
        std::env::var("RTC_SHAPES").unwrap_or_else(|_| "1x1,1x10,1x50,4x25,10x10,2x100".into());
    let kbps: usize = std::env::var("RTC_KBPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let secs: u64 = std::env::var("RTC_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir()?;
    let (tcp, http, udp) = (free_port(), free_port(), free_udp_port());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_odd-gateway"))
        .env("ODD_DATA_DIR", dir.path())
        .env("ODD_TCP", format!("127.0.0.1:{tcp}"))
        .env("ODD_HTTP", format!("127.0.0.1:{http}"))
        .env("ODD_RTC", format!("127.0.0.1:{udp}"))
        .env("ODD_TLS", "off")
        .env("ODD_QUIC", "off")
        .env("ODD_HTTPS", "off")
        .env(
            "RUST_LOG",
            std::env::var("RTC_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(if std::env::var("RTC_LOG").is_ok() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or_else(|| anyhow::anyhow!("no pid"))?;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", tcp))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("odd-gateway SFU, {secs} s windows, 30 video + 30 opus frames a second per publisher (client and server share the 2 cores)");
    for shape_text in shapes.split(',') {
        let Some((p, s)) = shape_text.split_once('x') else {
            continue;
        };
        let (p, s): (usize, usize) = (p.trim().parse()?, s.trim().parse()?);
        if let Some(pause) = std::env::var("RTC_PAUSE").ok().and_then(|v| v.parse().ok()) {
            tokio::time::sleep(Duration::from_secs(pause)).await;
        }
        if let Err(e) = shape(tcp, http, udp, pid, p, s, kbps, secs).await {
            println!("{p} x {s}: failed: {e}");
        }
    }
    child.kill().await?;
    Ok(())
}
