//! What a receiver saw, reduced to figures; percentiles; tables.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

/// The `q` quantile of sorted values (nearest rank), NaN if empty.
pub fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// A number with `d` decimals, or "-".
pub fn num(v: f64, d: usize) -> String {
    if v.is_finite() {
        format!("{v:.d$}")
    } else {
        "-".into()
    }
}

pub fn opt(v: Option<f64>, d: usize) -> String {
    v.map_or("-".into(), |v| num(v, d))
}

/// One receiver's view of one room's stream of `m <seq> <sent>` messages.
#[derive(Debug, Default)]
pub struct Flow {
    pub expected: usize,
    pub received: usize,
    pub lost: usize,
    pub dups: usize,
    /// Arrivals whose seq is below one that arrived before them.
    pub reordered: usize,
    /// First arrival of each message: arrival - send, ms, sorted.
    pub latency: Vec<f64>,
    /// From `since` to the arrival of the first message sent at or after it (ms); None: none arrived.
    pub back_after: Option<f64>,
}

/// `msgs`: `msg` events (`seq`, `sent`, `at` in us) in arrival order; `expected`: the seqs the sender had
/// acknowledged; `since`: an instant (us) for `back_after` (0: not wanted).
pub fn flow(msgs: &[Value], expected: &BTreeSet<i64>, since: i64) -> Flow {
    let mut seen = HashSet::new();
    let (mut max, mut f) = (i64::MIN, Flow::default());
    let mut latency = Vec::new();
    for m in msgs {
        let (Some(seq), Some(sent), Some(at)) =
            (m["seq"].as_i64(), m["sent"].as_i64(), m["at"].as_i64())
        else {
            continue;
        };
        if !expected.contains(&seq) && seq < expected.first().copied().unwrap_or(i64::MIN) {
            continue; // an earlier stream's
        }
        if !seen.insert(seq) {
            f.dups += 1;
            continue;
        }
        if seq < max {
            f.reordered += 1;
        }
        max = max.max(seq);
        latency.push((at - sent) as f64 / 1e3);
        if since > 0 && sent >= since && f.back_after.is_none() {
            f.back_after = Some((at - since) as f64 / 1e3);
        }
    }
    f.expected = expected.len();
    f.received = expected.iter().filter(|s| seen.contains(s)).count();
    f.lost = f.expected - f.received;
    f.latency = sorted(latency);
    f
}

/// The seqs a `streamed` event says were acknowledged for `room`.
pub fn acked(streamed: &Value, room: &str) -> BTreeSet<i64> {
    let (first, last) = (
        streamed["first"].as_i64().unwrap_or(1),
        streamed["last"].as_i64().unwrap_or(0),
    );
    let failed: HashSet<i64> = streamed["failed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f[0] == room)
        .filter_map(|f| f[1].as_i64())
        .collect();
    (first..=last).filter(|s| !failed.contains(s)).collect()
}

/// The probe's own account of its session from `since` on: kept, resumed, new (+ rejoin), reopened, gave up.
pub fn probe_session(events: &[Value], since: i64) -> String {
    let mut parts = Vec::new();
    for e in events.iter().filter(|e| e["at"].as_i64() >= Some(since)) {
        let resumed = e["resumed"] == true;
        match e["ev"].as_str().unwrap_or_default() {
            "reconnected" if resumed => parts.push("resumed"),
            "reconnected" if e["restored"] == true => parts.push("NEW(restored)"),
            "reconnected" => parts.push("NEW"),
            "closed" => parts.push("closed"),
            "reopened" if resumed => parts.push("reopened+resumed"),
            "reopened" => parts.push("reopened:NEW"),
            "rejoined" => parts.push("rejoin"),
            "gave_up" => parts.push("GAVE UP"),
            "goodbye" => parts.push(
                if e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("taken over"))
                {
                    "GOODBYE(taken over)"
                } else {
                    "GOODBYE"
                },
            ),
            _ => {}
        }
    }
    if parts.is_empty() {
        "kept".into()
    } else {
        tally(&parts, ",")
    }
}

/// The gateway's account (its log) of a user's session from `since` on: `user` is an id, or a prefix of one
/// (`odd chat` prints the nick, the id's first 10 characters).
pub fn gateway_session(log: &[Value], user: &str, since: i64) -> String {
    if user.is_empty() {
        return "?".into();
    }
    let mut parts: Vec<&str> = Vec::new();
    for e in log.iter().filter(|e| e["at"].as_i64() >= Some(since)) {
        if !e["user"].as_str().is_some_and(|u| u.starts_with(user)) {
            continue;
        }
        match e["msg"].as_str().unwrap_or_default() {
            "session kept for a fast reconnect" => parts.push("parked"),
            "session resumed" => parts.push("resumed"),
            "connection closed" => parts.push("closed"),
            _ => {}
        }
    }
    if parts.is_empty() {
        "no loss seen".into()
    } else {
        tally(&parts, ">")
    }
}

/// `a,b,a,b,c` -> `a x2,b x2,c`: each part once, in first-seen order, with its count when above one.
fn tally(parts: &[&str], sep: &str) -> String {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for p in parts {
        match seen.iter_mut().find(|(q, _)| q == p) {
            Some((_, n)) => *n += 1,
            None => seen.push((p, 1)),
        }
    }
    let shown: Vec<String> = seen
        .iter()
        .map(|(p, n)| {
            if *n > 1 {
                format!("{p} x{n}")
            } else {
                p.to_string()
            }
        })
        .collect();
    shown.join(sep)
}

/// A plain-text table.
pub struct Table {
    title: String,
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: &str, head: &[&str]) -> Table {
        Table {
            title: title.to_string(),
            head: head.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// A row of what was measured after its leading cells (transport, link shape), or of the failure.
    pub fn measured(&mut self, mut lead: Vec<String>, cells: anyhow::Result<Vec<String>>) {
        lead.extend(cells.unwrap_or_else(|e| vec![format!("FAILED: {e:#}")]));
        self.rows.push(lead);
    }

    pub fn print(&self) {
        let mut width: Vec<usize> = self.head.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = width.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = width.get(i).copied().unwrap_or(0)))
                .collect();
            println!("| {} |", padded.join(" | "));
        };
        println!("\n{}\n", self.title);
        line(&self.head);
        let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
        line(&rule);
        for r in &self.rows {
            line(r);
        }
    }
}
