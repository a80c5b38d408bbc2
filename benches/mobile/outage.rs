//! Scenarios where the path goes away: a blackout (every packet dropped for N seconds) and an address change
//! (`notified`: the phone's OS moves it to a new address and destroys its TCP sockets; `silent`: the NAT in
//! front of it rebinds without telling anyone). Every selected transport runs at once, each with its own room,
//! one library probe and one `odd chat` in it, while the sender posts to every room at 20 msg/s through the
//! outage and a few seconds beyond; then the run waits (bounded) until every receiver has every message.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use super::measure::{acked, flow, gateway_session, num, opt, pct, probe_session, Flow, Table};
use super::probe::now_us;
use super::procs::Proc;
use super::Bench;

struct Watch {
    tr: String,
    room: String,
    probe: Proc,
    probe_user: String,
    chat: Option<Proc>,
    chat_user: String,
}

/// Messages keep coming this long after every receiver is back (or the wait for it ran out).
const AFTER_RECOVERY: Duration = Duration::from_secs(3);
/// After the last message, how long receivers get to catch up on everything.
const DRAIN: Duration = Duration::from_secs(15);

const HEAD: [&str; 12] = [
    "outage",
    "transport",
    "client",
    "lost",
    "dup",
    "reordered",
    "back after (s)",
    "p99 ms",
    "session (client)",
    "session (gateway log)",
    "room lists",
    "running",
];

/// A probe and an `odd chat` per transport, each pair in its own room that the sender has joined.
async fn watchers(b: &mut Bench, tag: &str) -> anyhow::Result<Vec<Watch>> {
    let rooms: Vec<String> = b
        .cfg
        .transports
        .iter()
        .map(|tr| format!("{tag}-{tr}"))
        .collect();
    b.join(&rooms).await?;
    let mut out = Vec::new();
    for (tr, room) in b.cfg.transports.clone().into_iter().zip(rooms) {
        let probe = b.probe(&tr, serde_json::json!({"mode": "recv", "rooms": [room]}))?;
        let chat = if b.cfg.chat {
            Some(b.chat(&tr, &room)?)
        } else {
            None
        };
        out.push(Watch {
            tr,
            room,
            probe,
            probe_user: String::new(),
            chat,
            chat_user: String::new(),
        });
    }
    for w in &mut out {
        let up = |e: &[Value]| {
            e.iter()
                .any(|v| ["ready", "joined", "eof"].contains(&v["ev"].as_str().unwrap_or("")))
        };
        w.probe.events.until(Duration::from_secs(60), up).await;
        let ready = w.probe.events.of("ready");
        w.probe_user = ready
            .first()
            .and_then(|r| r["user"].as_str())
            .unwrap_or_default()
            .to_string();
        if w.probe_user.is_empty() {
            anyhow::bail!(
                "{}: the probe did not connect: {}",
                w.tr,
                w.probe.stderr_tail()
            );
        }
        if let Some(c) = &w.chat {
            c.events.until(Duration::from_secs(60), up).await;
            let joined = c.events.of("joined");
            w.chat_user = joined
                .first()
                .and_then(|r| r["who"].as_str())
                .unwrap_or_default()
                .to_string();
            if w.chat_user.is_empty() {
                anyhow::bail!("{}: `odd chat` did not join: {}", w.tr, c.stderr_tail());
            }
        }
    }
    Ok(out)
}

fn msgs(p: &Proc, room: &str) -> Vec<Value> {
    // `odd chat` events carry no room: it is in one.
    p.events
        .of("msg")
        .into_iter()
        .filter(|v| v["room"].is_null() || v["room"] == room)
        .collect()
}

fn count_at_least(room: &str, n: usize) -> impl Fn(&[Value]) -> bool + '_ {
    move |e: &[Value]| {
        e.iter().any(|v| v["ev"] == "eof")
            || e.iter()
                .filter(|v| v["ev"] == "msg" && (v["room"].is_null() || v["room"] == room))
                .count()
                >= n
    }
}

/// Waits until every receiver has at least `n` messages (the stream flows everywhere), at most `within`.
async fn warm(ws: &[Watch], n: usize, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    for w in ws {
        for p in std::iter::once(&w.probe).chain(w.chat.as_ref()) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            p.events.until(left, count_at_least(&w.room, n)).await;
        }
    }
}

/// Waits (until `deadline`) for every receiver to get a message sent at or after `since` (us).
async fn recovered(ws: &[Watch], since: i64, deadline: tokio::time::Instant) {
    for w in ws {
        for p in std::iter::once(&w.probe).chain(w.chat.as_ref()) {
            let back = |e: &[Value]| {
                e.iter().any(|v| {
                    v["ev"] == "eof"
                        || (v["ev"] == "msg" && v["sent"].as_i64().is_some_and(|t| t >= since))
                })
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            p.events.until(left, back).await;
        }
    }
}

/// Waits (until `deadline`) for every receiver to hold every message of `expected` for its room.
async fn drain(ws: &[Watch], streamed: &Value, deadline: tokio::time::Instant) {
    for w in ws {
        let expected = acked(streamed, &w.room);
        for p in std::iter::once(&w.probe).chain(w.chat.as_ref()) {
            let room = w.room.clone();
            let have = |e: &[Value]| {
                let got: BTreeSet<i64> = e
                    .iter()
                    .filter(|v| {
                        v["ev"] == "msg" && (v["room"].is_null() || v["room"] == room.as_str())
                    })
                    .filter_map(|v| v["seq"].as_i64())
                    .collect();
                expected.is_subset(&got)
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            p.events.until(left, have).await;
        }
    }
}

fn cells(f: &Flow) -> Vec<String> {
    vec![
        format!("{}/{}", f.lost, f.expected),
        f.dups.to_string(),
        f.reordered.to_string(),
        f.back_after.map_or("never".into(), |ms| num(ms / 1e3, 1)),
        num(pct(&f.latency, 0.99), 0),
    ]
}

/// One row per receiver: what it got of the stream, how its session fared, what the room lists afterwards.
async fn outcome(
    b: &mut Bench,
    ws: Vec<Watch>,
    streamed: &Value,
    label: &str,
    start: i64,
    back: i64,
    t: &mut Table,
) {
    let log = b.gw.proc.events.with(|e| e.to_vec());
    if std::env::var_os("MOBILE_DEBUG").is_some() {
        timeline(&ws, &log, start);
        for e in log.iter().filter(|e| e["at"].as_i64() >= Some(start)) {
            let t = (e["at"].as_i64().unwrap_or(start) - start) as f64 / 1e6;
            println!(
                "  {t:>8.2} s  gateway: {} {} {}",
                e["msg"], e["user"], e["reason"]
            );
        }
    }
    for mut w in ws {
        let expected = acked(streamed, &w.room);
        let listed = b.presence(&w.room).await;
        let probe_events = w.probe.events.with(|e| e.to_vec());
        let mut row = vec![label.to_string(), w.tr.clone(), "library".into()];
        row.extend(cells(&flow(&msgs(&w.probe, &w.room), &expected, back)));
        row.push(probe_session(&probe_events, start));
        row.push(gateway_session(&log, &w.probe_user, start));
        row.push(opt(listed.map(|n| n as f64), 0));
        row.push(if w.probe.running() { "yes" } else { "no" }.into());
        t.row(row);
        if let Some(mut c) = w.chat.take() {
            let mut row = vec![label.to_string(), w.tr.clone(), "odd chat".into()];
            row.extend(cells(&flow(&msgs(&c, &w.room), &expected, back)));
            row.push("-".into());
            row.push(gateway_session(&log, &w.chat_user, start));
            row.push(opt(listed.map(|n| n as f64), 0));
            row.push(if c.running() { "yes" } else { "NO" }.into());
            t.row(row);
            c.finish(Duration::from_secs(5)).await;
        }
        w.probe.finish(Duration::from_secs(5)).await;
    }
}

/// The gateway's CPU over one outage run (20 msg/s to each transport's room, the outage, the recovery).
fn cpu_note(b: &Bench, label: &str, cpu0: Option<f64>, t0: std::time::Instant) -> String {
    let used = b.gw.cpu_ms().zip(cpu0).map(|(a, b)| a - b);
    format!(
        "{label}: gateway CPU {} ms over {:.0} s of the run",
        opt(used, 0),
        t0.elapsed().as_secs_f64()
    )
}

fn expected_members(b: &Bench) -> usize {
    1 + 1 + usize::from(b.cfg.chat)
}

/// One outage run: its watchers streaming at 20 msg/s and warmed up, and the gateway's CPU when it began.
struct Run {
    ws: Vec<Watch>,
    seen: usize,
    cpu0: Option<f64>,
    t0: std::time::Instant,
}

impl Run {
    /// Watchers in rooms of their own (`tag`), the stream started, every client receiving.
    async fn start(b: &mut Bench, tag: &str) -> anyhow::Result<Run> {
        let ws = watchers(b, tag).await?;
        let (cpu0, t0) = (b.gw.cpu_ms(), std::time::Instant::now());
        let rooms: Vec<String> = ws.iter().map(|w| w.room.clone()).collect();
        let seen = b.stream(&rooms, 20.0, 0).await?;
        warm(&ws, 20, Duration::from_secs(20)).await;
        Ok(Run { ws, seen, cpu0, t0 })
    }

    /// After the outage (`start`, and `back` when the link returned): waits up to `wait` for every client to
    /// receive again, stops the stream, drains, and records the row and the CPU note under `label`.
    async fn finish(
        self,
        b: &mut Bench,
        label: &str,
        (start, back): (i64, i64),
        wait: Duration,
        (t, notes): (&mut Table, &mut Vec<String>),
    ) -> anyhow::Result<()> {
        recovered(&self.ws, back, tokio::time::Instant::now() + wait).await;
        tokio::time::sleep(AFTER_RECOVERY).await;
        let s = b.streamed(self.seen, true, Duration::from_secs(60)).await?;
        drain(&self.ws, &s, tokio::time::Instant::now() + DRAIN).await;
        notes.push(cpu_note(b, label, self.cpu0, self.t0));
        outcome(b, self.ws, &s, label, start, back, t).await;
        Ok(())
    }
}

pub async fn blackouts(b: &mut Bench) -> anyhow::Result<()> {
    let (rtt, loss) = (b.cfg.rtts(&[100])[0], b.cfg.losses(&[0.0])[0]);
    let mut t = Table::new(
        &format!(
            "blackout: 20 msg/s through N s of total loss, until every client has new messages again (at most MOBILE_AFTER_S) + 3 s, RTT {rtt} ms, loss {loss}%; \
             back after = link return -> first message sent after it arrives; room lists: users present \
             (expected {})",
            expected_members(b)
        ),
        &HEAD,
    );
    let mut notes = Vec::new();
    for secs in b.cfg.blackouts.clone() {
        b.shape(rtt, loss)?;
        let run = Run::start(b, &format!("bo{secs}")).await?;
        let start = now_us();
        b.topo.link()?.blackout(Duration::from_secs(secs));
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let back = now_us();
        let wait = b.cfg.after.max(Duration::from_secs(secs));
        let label = format!("{secs} s");
        run.finish(b, &label, (start, back), wait, (&mut t, &mut notes))
            .await?;
    }
    t.print();
    for n in notes {
        println!("  {n}");
    }
    Ok(())
}

pub async fn changes(b: &mut Bench) -> anyhow::Result<()> {
    let (rtt, loss) = (b.cfg.rtts(&[100])[0], b.cfg.losses(&[0.0])[0]);
    let mut t = Table::new(
        &format!(
            "address change: 20 msg/s, the phone's address changes mid-run; messages go on until every client has new ones again (at most MOBILE_AFTER_S) + 3 s, RTT {rtt} ms, \
             loss {loss}%; back after = change -> first message sent after it arrives; room lists: users present \
             (expected {})",
            expected_members(b)
        ),
        &HEAD,
    );
    let mut notes = Vec::new();
    for mode in b.cfg.changes.clone() {
        b.shape(rtt, loss)?;
        let run = Run::start(b, &format!("nc-{mode}")).await?;
        let at = now_us();
        let what = match mode.as_str() {
            "notified" => {
                let killed = b.topo.notified_change()?;
                format!(
                    "notified: phone moved to {}, {killed} TCP sockets destroyed by the OS",
                    b.topo.phone_addr()
                )
            }
            "silent" => {
                let (tcp, udp) = b.topo.link()?.silent_rebind();
                format!("silent: {tcp} TCP flows black-holed, {udp} UDP flows given a new port")
            }
            other => anyhow::bail!("unknown address change {other:?}: notified or silent"),
        };
        notes.push(what);
        let wait = b.cfg.after;
        run.finish(b, &mode, (at, at), wait, (&mut t, &mut notes))
            .await?;
    }
    t.print();
    for n in notes {
        println!("  {n}");
    }
    Ok(())
}

/// MOBILE_DEBUG: what each client and the gateway's log said about it, seconds from the outage's start.
fn timeline(ws: &[Watch], log: &[Value], start: i64) {
    let rel = |v: &Value| {
        v["at"]
            .as_i64()
            .map_or(f64::NAN, |at| (at - start) as f64 / 1e6)
    };
    for w in ws {
        let mut lines = Vec::new();
        for (who, user, p) in [
            ("library", &w.probe_user, Some(&w.probe)),
            ("odd chat", &w.chat_user, w.chat.as_ref()),
        ] {
            let Some(p) = p else { continue };
            let msgs = p.events.of("msg");
            let mut last: Option<&Value> = None;
            for m in &msgs {
                // Gaps of over a second between arrivals.
                if let Some(l) = last {
                    if m["at"].as_i64().unwrap_or(0) - l["at"].as_i64().unwrap_or(0) > 1_000_000 {
                        lines.push((
                            rel(l),
                            format!("{who}: last message before a gap: seq {}", l["seq"]),
                        ));
                        lines.push((
                            rel(m),
                            format!("{who}: first message after it: seq {}", m["seq"]),
                        ));
                    }
                }
                last = Some(m);
            }
            for e in p.events.with(|e| e.to_vec()) {
                if !matches!(e["ev"].as_str(), Some("msg" | "ready" | "joined")) {
                    lines.push((rel(&e), format!("{who}: {e}")));
                }
            }
            for e in log.iter().filter(|e| {
                !user.is_empty()
                    && e["user"]
                        .as_str()
                        .is_some_and(|u| u.starts_with(user.as_str()))
            }) {
                lines.push((
                    rel(e),
                    format!("{who}: gateway: {} {}", e["msg"], e["reason"]),
                ));
            }
        }
        lines.sort_by(|a, b| a.0.total_cmp(&b.0));
        println!("-- {} (room {})", w.tr, w.room);
        for (t, l) in lines.iter().filter(|(t, _)| *t > -5.0) {
            println!("  {t:>8.2} s  {l}");
        }
    }
}
