//! The phone: this bench binary re-executed inside the phone's namespace (`--role probe <json>`), using the
//! library client (`odd_gateway::client`) as an app would. It reports what it sees as JSON lines on stdout
//! (`{"ev": ...}`, times in microseconds since the Unix epoch, on the clock the sender shares) and takes
//! commands on stdin (`quit`).
//!
//! Modes: `connect` (open + connect `n` times, timing each from socket open to `NetConnection.Connect.Success`)
//! and `recv` (join `rooms`, each on its own pipe, and report every message and file that arrives). In `recv` it
//! behaves like a careful app: after a reconnect into a new session (`Client.Reconnected`, `resumed: false`)
//! it creates its pipes again and joins with `after` = the last `mid` it saw (docs/resilience.md), and when the
//! client gives up it opens a new connection itself, offering the old uuid.

use std::collections::HashMap;
use std::time::Duration;

use odd_gateway::client::{Client, ClientOptions, Reply};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

/// How long the probe keeps trying to get back on its own after the client gave up.
const REOPEN_FOR: Duration = Duration::from_secs(180);
/// Bound on one connect in `connect` mode.
const CONNECT_BOUND: Duration = Duration::from_secs(20);

pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

pub fn emit(v: Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

pub async fn run(spec: Value) -> anyhow::Result<()> {
    let url = spec["url"].as_str().unwrap_or_default().to_string();
    let opts = match spec["ca"].as_str() {
        Some(ca) if !ca.is_empty() => ClientOptions::trusting(ca.as_ref())?,
        _ => ClientOptions::default(),
    };
    match spec["mode"].as_str() {
        Some("connect") => connects(&url, &opts, spec["n"].as_u64().unwrap_or(10)).await,
        Some("recv") => {
            let rooms: Vec<String> = spec["rooms"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect();
            receive(&url, &opts, &rooms).await
        }
        other => anyhow::bail!("unknown probe mode {other:?}"),
    }
}

async fn connects(url: &str, opts: &ClientOptions, n: u64) -> anyhow::Result<()> {
    for _ in 0..n {
        let start = std::time::Instant::now();
        match tokio::time::timeout(CONNECT_BOUND, Client::connect_with(url, "", opts)).await {
            Ok(Ok(c)) => {
                let ms = start.elapsed().as_secs_f64() * 1e3;
                emit(json!({"ev": "connect", "ok": true, "ms": ms}));
                c.close().await;
            }
            Ok(Err(e)) => emit(json!({"ev": "connect", "ok": false, "error": e.to_string()})),
            Err(_) => emit(json!({"ev": "connect", "ok": false, "error": "timed out"})),
        }
    }
    emit(json!({"ev": "done"}));
    Ok(())
}

/// What the probe keeps across reconnects.
struct Joined {
    /// Room -> the pipe it is joined on.
    pipes: HashMap<String, u16>,
    /// Room -> the last mid seen.
    last_mid: HashMap<String, i64>,
}

impl Joined {
    /// Creates a pipe per room and joins it (with `after` where a mid was seen: the catch-up replay).
    async fn join_all(&mut self, client: &Client, rooms: &[String]) -> anyhow::Result<()> {
        self.pipes.clear();
        for room in rooms {
            let pipe = client.create("messaging").await?;
            match self.last_mid.get(room) {
                // `Client::join`: the library remembers the room (a room joined with a raw `call` is not
                // resumed with `after` nor restored on a new session).
                None => {
                    client.join(pipe, room).await?;
                }
                Some(mid) => {
                    let args = json!({"name": "join", "rid": room, "after": mid});
                    client.call(pipe, args).await?.ok()?;
                }
            }
            self.pipes.insert(room.clone(), pipe);
        }
        Ok(())
    }

    fn report(&mut self, p: &Reply) {
        if p.name() != "send" {
            // Anything else (presence, errors, goodbyes) is rare: reported as is, for the record.
            emit(
                json!({"ev": "push", "pipe": p.pipe, "name": p.name(), "code": p.code(),
                        "description": p.description(), "at": now_us()}),
            );
            return;
        }
        let at = now_us();
        let room = p.args["room"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mid = p.args["mid"].as_i64().unwrap_or(-1);
        let last = self.last_mid.entry(room.clone()).or_insert(mid);
        *last = (*last).max(mid);
        match p.args["type"].as_str() {
            Some("file") => emit(json!({
                "ev": "file", "room": room, "seq": p.args["data"]["seq"], "sent": p.args["data"]["t"],
                "at": at, "len": p.payload.len(), "mid": mid
            })),
            _ => {
                // "m <seq> <sent us>"
                let text = p.args["data"].as_str().unwrap_or_default();
                let mut words = text.split_whitespace().skip(1);
                let mut num = || words.next().and_then(|w| w.parse::<i64>().ok());
                if let (Some(seq), Some(sent)) = (num(), num()) {
                    emit(
                        json!({"ev": "msg", "room": room, "seq": seq, "sent": sent, "at": at, "mid": mid}),
                    );
                }
            }
        }
    }
}

async fn receive(url: &str, opts: &ClientOptions, rooms: &[String]) -> anyhow::Result<()> {
    let mut client = Client::connect_with(url, "", opts).await?;
    let mut joined = Joined {
        pipes: HashMap::new(),
        last_mid: HashMap::new(),
    };
    joined.join_all(&client, rooms).await?;
    emit(json!({"ev": "ready", "user": client.user.id, "uuid": client.uuid}));
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = stdin.next_line() => match line {
                Ok(Some(l)) if l.trim() != "quit" => continue,
                _ => break,
            },
            push = client.next_push_within(Duration::from_millis(500)) => match push {
                Some(p) if p.code() == odd_gateway::client::RECONNECTED => {
                    let resumed = p.info()["resumed"] == json!(true);
                    // A library that restores a new session itself says so (`restored`); else the app rejoins.
                    let restored = p.info()["restored"].as_bool();
                    emit(json!({"ev": "reconnected", "resumed": resumed, "restored": restored, "at": now_us(),
                                "uuid": p.info()["uuid"]}));
                    if !resumed && restored.is_none() {
                        let rejoined = joined.join_all(&client, rooms).await;
                        emit(json!({"ev": "rejoined", "ok": rejoined.is_ok(), "at": now_us()}));
                    }
                }
                Some(p) => joined.report(&p),
                None if client.is_closed() => {
                    let reason = client.closed_within(Duration::ZERO).await.unwrap_or_default();
                    emit(json!({"ev": "closed", "at": now_us(), "reason": reason}));
                    // The gateway said goodbye (refused, taken over, shut down): an app stops there.
                    if reason.starts_with("NetConnection.Connect.") {
                        emit(json!({"ev": "goodbye", "at": now_us(), "reason": reason}));
                        wait_for_quit(&mut stdin).await;
                        return Ok(());
                    }
                    let uuid = client.uuid.clone();
                    match reopen(url, opts, &uuid).await {
                        Some((c, resumed)) => {
                            client = c;
                            emit(json!({"ev": "reopened", "resumed": resumed, "at": now_us()}));
                            if !resumed {
                                let rejoined = joined.join_all(&client, rooms).await;
                                emit(json!({"ev": "rejoined", "ok": rejoined.is_ok(), "at": now_us()}));
                            }
                        }
                        None => {
                            emit(json!({"ev": "gave_up", "at": now_us()}));
                            return Ok(());
                        }
                    }
                }
                None => {}
            },
        }
    }
    client.close().await;
    Ok(())
}

/// A new connection offering the old session's uuid, retried every second for `REOPEN_FOR`.
async fn reopen(url: &str, opts: &ClientOptions, uuid: &str) -> Option<(Client, bool)> {
    let deadline = tokio::time::Instant::now() + REOPEN_FOR;
    while tokio::time::Instant::now() < deadline {
        let attempt = async {
            let mut c = Client::open_with(url, opts).await.ok()?;
            let r = c.handshake("", uuid).await.ok()?;
            Some((c, r.info()["resumed"] == json!(true)))
        };
        if let Ok(Some(done)) = tokio::time::timeout(CONNECT_BOUND, attempt).await {
            return Some(done);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    None
}

/// Reads stdin until `quit` or its end.
async fn wait_for_quit(stdin: &mut tokio::io::Lines<tokio::io::BufReader<tokio::io::Stdin>>) {
    while let Ok(Some(l)) = stdin.next_line().await {
        if l.trim() == "quit" {
            return;
        }
    }
}
