//! Scenarios on a link that stays up: the relay's own check, connect time, latency at loss, bulk transfer,
//! head-of-line blocking.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::measure::{flow, num, opt, pct, sorted, Table};
use super::netns::{GW_ADDR, GW_NS, PH_NS};
use super::procs::{cpu_ms, Proc};
use super::Bench;

/// Runs `f` on a thread inside network namespace `ns`.
fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::thread::JoinHandle<std::io::Result<T>> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(path)?;
        use std::os::fd::AsRawFd;
        // SAFETY: setns on this thread only, with a namespace file we hold open.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        f()
    })
}

/// One TCP transfer phone -> gateway through the link: (connect time, Mbit/s of `bytes`).
async fn transfer(bytes: usize) -> anyhow::Result<(Duration, f64)> {
    let listener = in_ns(GW_NS, || std::net::TcpListener::bind((GW_ADDR, 0)))
        .join()
        .map_err(|_| anyhow::anyhow!("thread panicked"))??;
    let port = listener.local_addr()?.port();
    let server = std::thread::spawn(move || -> std::io::Result<usize> {
        let (mut s, _) = listener.accept()?;
        let (mut buf, mut total) = (vec![0u8; 1 << 16], 0);
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    });
    let client = in_ns(PH_NS, move || {
        let start = Instant::now();
        let mut s = std::net::TcpStream::connect((GW_ADDR, port))?;
        let connected = start.elapsed();
        let chunk = vec![0x33u8; 1 << 16];
        let start = Instant::now();
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            s.write_all(&chunk[..n])?;
            left -= n;
        }
        s.shutdown(std::net::Shutdown::Write)?;
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)?;
        Ok((connected, start.elapsed()))
    });
    let (connected, took) = tokio::task::spawn_blocking(move || client.join())
        .await?
        .map_err(|_| anyhow::anyhow!("thread panicked"))??;
    let got = server
        .join()
        .map_err(|_| anyhow::anyhow!("thread panicked"))??;
    Ok((connected, got as f64 * 8.0 / took.as_secs_f64() / 1e6))
}

/// The emulation itself: what the relay moves unshaped, whether the rate limit and the delay are what was asked.
pub async fn relay(b: &mut Bench) -> anyhow::Result<()> {
    let mut t = Table::new(
        "relay: a bare TCP transfer phone -> gateway through the userspace link (no gateway involved)",
        &["link", "connect (1 RTT)", "goodput Mbit/s", "bench CPU ms/MB"],
    );
    let rate = b.cfg.rate_mbit;
    for (label, rtt, shaped, bytes) in [
        ("unshaped, 0 ms", 0, false, 64 << 20),
        ("RTT 100 ms, configured rate", 100, true, 4 << 20),
    ] {
        b.shape(rtt, 0.0)?;
        if !shaped {
            b.cfg.rate_mbit = 0.0;
            b.shape(rtt, 0.0)?;
            b.cfg.rate_mbit = rate;
        }
        let cpu0 = cpu_ms(Some(std::process::id()));
        let (connected, mbit) = transfer(bytes).await?;
        let cpu1 = cpu_ms(Some(std::process::id()));
        let per_mb = cpu0.zip(cpu1).map(|(a, b)| (b - a) / (bytes as f64 / 1e6));
        let label = if shaped {
            format!("RTT {rtt} ms, {rate} Mbit/s, queue {}", b.cfg.queue)
        } else {
            label.to_string()
        };
        t.row(vec![
            label,
            format!("{:.1} ms", connected.as_secs_f64() * 1e3),
            num(mbit, 1),
            opt(per_mb, 2),
        ]);
    }
    t.print();
    Ok(())
}

fn rooms(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Starts a `recv` probe on `rooms` and waits until it has joined.
async fn receiver(b: &Bench, tr: &str, rooms: &[String]) -> anyhow::Result<Proc> {
    let p = b.probe(tr, json!({"mode": "recv", "rooms": rooms}))?;
    let ready = |e: &[Value]| e.iter().any(|v| v["ev"] == "ready" || v["ev"] == "eof");
    p.events.until(Duration::from_secs(60), ready).await;
    if p.events.of("ready").is_empty() {
        anyhow::bail!("the probe did not connect: {}", p.stderr_tail());
    }
    Ok(p)
}

/// Waits until `p` has every seq of `expected` in `room` (or `within` passed).
async fn drained(p: &Proc, room: &str, expected: &BTreeSet<i64>, within: Duration) {
    let have_all = |e: &[Value]| {
        let got: BTreeSet<i64> = e
            .iter()
            .filter(|v| v["ev"] == "msg" && v["room"] == room)
            .filter_map(|v| v["seq"].as_i64())
            .collect();
        expected.is_subset(&got)
    };
    p.events.until(within, have_all).await;
}

pub async fn connect(b: &mut Bench) -> anyhow::Result<()> {
    let n = b.cfg.connects;
    let rtt = b.cfg.rtts(&[100])[0];
    let mut t = Table::new(
        &format!("connect: socket open -> NetConnection.Connect.Success, RTT {rtt} ms, {n} connects in a row"),
        &["transport", "loss", "ok", "1st RTTs", "p50 ms", "p50 RTTs", "p90 RTTs", "max RTTs", "gw CPU ms/connect"],
    );
    for tr in b.cfg.transports.clone() {
        for loss in b.cfg.losses(&[0.0, 2.0, 5.0]) {
            b.shape(rtt, loss)?;
            let cpu0 = b.gw.cpu_ms();
            let p = b.probe(&tr, json!({"mode": "connect", "n": n}))?;
            let done = |e: &[Value]| e.iter().any(|v| v["ev"] == "done" || v["ev"] == "eof");
            p.events.until(Duration::from_secs(25 * n + 10), done).await;
            let cpu = b.gw.cpu_ms().zip(cpu0).map(|(a, b)| a - b);
            let ok: Vec<f64> = p
                .events
                .of("connect")
                .iter()
                .filter_map(|v| v["ms"].as_f64())
                .collect();
            let first = ok.first().copied();
            let ms = sorted(ok);
            let rtts = |q: f64| num(pct(&ms, q) / rtt.max(1) as f64, 1);
            t.row(vec![
                tr.clone(),
                format!("{loss}%"),
                format!("{}/{n}", ms.len()),
                opt(first.map(|f| f / rtt.max(1) as f64), 1),
                num(pct(&ms, 0.5), 0),
                rtts(0.5),
                rtts(0.9),
                rtts(1.0),
                opt(cpu.map(|c| c / ms.len().max(1) as f64), 2),
            ]);
            p.finish(Duration::from_secs(5)).await;
        }
    }
    t.print();
    Ok(())
}

pub async fn latency(b: &mut Bench) -> anyhow::Result<()> {
    let m = b.cfg.messages;
    let mut t = Table::new(
        &format!(
            "latency at loss: {m} messages at 20/s, sender -> gateway -> phone (library client)"
        ),
        &[
            "transport",
            "RTT",
            "loss",
            "received",
            "p50 ms",
            "p99 ms",
            "max ms",
            "gw CPU ms/1k msgs",
        ],
    );
    for tr in b.cfg.transports.clone() {
        for rtt in b.cfg.rtts(&[100, 300]) {
            for loss in b.cfg.losses(&[0.0, 2.0, 5.0]) {
                b.shape(rtt, loss)?;
                let room = format!("lat-{tr}-{rtt}-{loss}");
                let row = async {
                    b.join(&rooms(&[&room])).await?;
                    let p = receiver(b, &tr, &rooms(&[&room])).await?;
                    let cpu0 = b.gw.cpu_ms();
                    let seen = b.stream(&rooms(&[&room]), 20.0, m).await?;
                    let s = b
                        .streamed(seen, false, Duration::from_secs(m / 20 + 30))
                        .await?;
                    let expected = super::measure::acked(&s, &room);
                    drained(&p, &room, &expected, Duration::from_secs(15)).await;
                    let cpu = b.gw.cpu_ms().zip(cpu0).map(|(a, b)| a - b);
                    let msgs: Vec<Value> = p.events.of("msg");
                    let f = flow(&msgs, &expected, 0);
                    p.finish(Duration::from_secs(5)).await;
                    anyhow::Ok(vec![
                        format!("{}/{}", f.received, f.expected),
                        num(pct(&f.latency, 0.5), 1),
                        num(pct(&f.latency, 0.99), 1),
                        num(pct(&f.latency, 1.0), 1),
                        opt(cpu.map(|c| c / (f.received.max(1) as f64 / 1e3)), 1),
                    ])
                };
                let lead = vec![tr.clone(), format!("{rtt} ms"), format!("{loss}%")];
                t.measured(lead, row.await);
            }
        }
    }
    t.print();
    Ok(())
}

/// Sends file `seq` of `size` bytes to `room` and waits for the probe to have it: ms from send to receipt.
async fn one_file(b: &mut Bench, p: &Proc, room: &str, seq: u64, within: Duration) -> Option<f64> {
    let seen = p.events.of("file").len();
    b.sender
        .cmd(json!({"cmd": "file", "room": room, "seq": seq, "size": 65_536}))
        .await
        .ok()?;
    let f = p.events.next("file", seen, within).await?;
    let (sent, at) = (f["sent"].as_i64()?, f["at"].as_i64()?);
    (f["len"].as_u64() == Some(65_536)).then_some((at - sent) as f64 / 1e3)
}

pub async fn bulk(b: &mut Bench) -> anyhow::Result<()> {
    let n = b.cfg.files;
    let mut t = Table::new(
        &format!("bulk: one 64 KiB `file` message at a time, send -> full receipt on the phone, {n} in a row"),
        &["transport", "RTT", "loss", "received", "p50 ms", "p50 RTTs", "max ms", "Mbit/s at p50", "gw CPU ms/file"],
    );
    for tr in b.cfg.transports.clone() {
        for rtt in b.cfg.rtts(&[100, 300]) {
            for loss in b.cfg.losses(&[2.0, 5.0]) {
                b.shape(rtt, loss)?;
                let room = format!("bulk-{tr}-{rtt}-{loss}");
                let row = async {
                    b.join(&rooms(&[&room])).await?;
                    let p = receiver(b, &tr, &rooms(&[&room])).await?;
                    let cpu0 = b.gw.cpu_ms();
                    let mut ms = Vec::new();
                    for k in 0..n {
                        if let Some(v) = one_file(b, &p, &room, k, Duration::from_secs(30)).await {
                            ms.push(v);
                        }
                    }
                    let cpu = b.gw.cpu_ms().zip(cpu0).map(|(a, b)| a - b);
                    p.finish(Duration::from_secs(5)).await;
                    let ms = sorted(ms);
                    anyhow::Ok(vec![
                        format!("{}/{n}", ms.len()),
                        num(pct(&ms, 0.5), 0),
                        num(pct(&ms, 0.5) / rtt as f64, 1),
                        num(pct(&ms, 1.0), 0),
                        num(65_536.0 * 8.0 / (pct(&ms, 0.5) / 1e3) / 1e6, 2),
                        opt(cpu.map(|c| c / ms.len().max(1) as f64), 2),
                    ])
                };
                let lead = vec![tr.clone(), format!("{rtt} ms"), format!("{loss}%")];
                t.measured(lead, row.await);
            }
        }
    }
    t.print();
    Ok(())
}

/// Chat on one pipe alone, then with 64 KiB files back to back on another pipe of the same connection.
pub async fn hol(b: &mut Bench) -> anyhow::Result<()> {
    let rtt = b.cfg.rtts(&[100])[0];
    let m = b.cfg.messages;
    let mut t = Table::new(
        &format!("head-of-line: chat latency on pipe 1 (20 msg/s, {m} messages) alone, then while 64 KiB files run back to back on pipe 2; RTT {rtt} ms"),
        &["transport", "loss", "alone p50", "alone p99", "with files p50", "with files p99", "max", "files moved", "file p50 ms"],
    );
    for tr in b.cfg.transports.clone() {
        for loss in b.cfg.losses(&[2.0]) {
            b.shape(rtt, loss)?;
            let (chat, files) = (
                format!("hol-{tr}-{loss}-chat"),
                format!("hol-{tr}-{loss}-files"),
            );
            let row = async {
                b.join(&rooms(&[&chat, &files])).await?;
                let p = receiver(b, &tr, &rooms(&[&chat, &files])).await?;
                let phase = |s: Value, p: &Proc| {
                    let expected = super::measure::acked(&s, &chat);
                    let msgs: Vec<Value> = p
                        .events
                        .of("msg")
                        .into_iter()
                        .filter(|v| v["room"] == chat.as_str())
                        .collect();
                    flow(&msgs, &expected, 0)
                };
                let seen = b.stream(&rooms(&[&chat]), 20.0, m / 2).await?;
                let s = b
                    .streamed(seen, false, Duration::from_secs(m / 40 + 30))
                    .await?;
                drained(
                    &p,
                    &chat,
                    &super::measure::acked(&s, &chat),
                    Duration::from_secs(10),
                )
                .await;
                let alone = phase(s, &p);
                let seen = b.stream(&rooms(&[&chat]), 20.0, m).await?;
                let (mut moved, mut k) = (Vec::new(), 0);
                let until = Instant::now() + Duration::from_secs(m / 20 + 30);
                while b.sender.events.of("streamed").len() <= seen && Instant::now() < until {
                    if let Some(ms) = one_file(b, &p, &files, k, Duration::from_secs(15)).await {
                        moved.push(ms);
                    }
                    k += 1;
                }
                let s = b.streamed(seen, false, Duration::from_secs(30)).await?;
                drained(
                    &p,
                    &chat,
                    &super::measure::acked(&s, &chat),
                    Duration::from_secs(10),
                )
                .await;
                let with = phase(s, &p);
                p.finish(Duration::from_secs(5)).await;
                let moved = sorted(moved);
                anyhow::Ok(vec![
                    num(pct(&alone.latency, 0.5), 0),
                    num(pct(&alone.latency, 0.99), 0),
                    num(pct(&with.latency, 0.5), 0),
                    num(pct(&with.latency, 0.99), 0),
                    num(pct(&with.latency, 1.0), 0),
                    format!("{}/{k}", moved.len()),
                    num(pct(&moved, 0.5), 0),
                ])
            };
            t.measured(vec![tr.clone(), format!("{loss}%")], row.await);
        }
    }
    t.print();
    Ok(())
}
