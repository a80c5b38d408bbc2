//! The sender: this bench binary re-executed inside the gateway's namespace (`--role sender <json>`), talking to
//! the gateway over its own loopback (never through the emulated link). Commands arrive as JSON lines on stdin,
//! results leave as JSON lines on stdout:
//! - `{"cmd": "join", "rooms": [...]}` -> `{"ev": "joined"}`
//! - `{"cmd": "stream", "rooms": [...], "rate": 20, "count": N}` posts `m <seq> <send time us>` to every room at
//!   `rate` per second (`count` 0: until `stop`); when it is over and every answer is in: `{"ev": "streamed",
//!   "first", "last", "failed": [[room, seq]...]}`. Sequence numbers never repeat within a run.
//! - `{"cmd": "stop"}` ends the stream.
//! - `{"cmd": "file", "room", "seq", "size"}` posts a `file` message with a binary payload of `size` bytes ->
//!   `{"ev": "file_acked", "seq", "ok"}`.
//! - `{"cmd": "presence", "room"}` -> `{"ev": "presence", "room", "count", "users"}` (the server API).

use std::time::Duration;

use bytes::Bytes;
use odd_gateway::client::Client;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use super::probe::{emit, now_us};

struct Stream {
    rooms: Vec<String>,
    tick: tokio::time::Interval,
    left: Option<u64>,
    first: i64,
    last: i64,
    stopping: bool,
    outstanding: usize,
    failed: Vec<(String, i64)>,
}

pub async fn run(spec: Value) -> anyhow::Result<()> {
    let url = spec["url"].as_str().unwrap_or_default();
    let http = spec["http"].as_str().unwrap_or_default().to_string();
    let key = spec["key"].as_str().unwrap_or_default().to_string();
    let mut client = Client::connect(url, "").await?;
    let pipe = client.create("messaging").await?;
    let web = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    emit(json!({"ev": "ready", "user": client.user.id}));
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let (acks_tx, mut acks) = mpsc::unbounded_channel::<(String, i64, bool)>();
    let mut stream: Option<Stream> = None;
    let mut seq: i64 = 0;
    loop {
        let ticking = stream.as_ref().is_some_and(|s| !s.stopping);
        tokio::select! {
            line = stdin.next_line() => {
                let Ok(Some(line)) = line else { break };
                let Ok(cmd) = serde_json::from_str::<Value>(&line) else { continue };
                let strings = |v: &Value| -> Vec<String> {
                    v.as_array().into_iter().flatten().filter_map(|r| r.as_str().map(str::to_string)).collect()
                };
                match cmd["cmd"].as_str().unwrap_or_default() {
                    "join" => {
                        let mut ok = true;
                        for room in strings(&cmd["rooms"]) {
                            ok &= client.join(pipe, &room).await.is_ok();
                        }
                        emit(json!({"ev": "joined", "ok": ok}));
                    }
                    "stream" => {
                        let rate = cmd["rate"].as_f64().unwrap_or(20.0).max(0.1);
                        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
                        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        stream = Some(Stream {
                            rooms: strings(&cmd["rooms"]),
                            tick,
                            left: cmd["count"].as_u64().filter(|n| *n > 0),
                            first: seq + 1,
                            last: seq,
                            stopping: false,
                            outstanding: 0,
                            failed: Vec::new(),
                        });
                    }
                    "stop" => {
                        if let Some(s) = stream.as_mut() {
                            s.stopping = true;
                        }
                    }
                    "file" => {
                        let room = cmd["room"].as_str().unwrap_or_default().to_string();
                        let size = cmd["size"].as_u64().unwrap_or(65_536) as usize;
                        let fseq = cmd["seq"].clone();
                        let args = json!({"name": "send", "type": "file", "cast": "multi", "id": room,
                                          "data": {"seq": fseq, "t": now_us(), "name": "blob.bin"}});
                        let payload = Bytes::from(vec![0x5a; size]);
                        match client.submit(pipe, args, payload).await {
                            Ok(answer) => {
                                tokio::spawn(async move {
                                    let ok = answer.wait().await.is_ok_and(|r| !r.is_error());
                                    emit(json!({"ev": "file_acked", "seq": fseq, "ok": ok}));
                                });
                            }
                            Err(e) => emit(json!({"ev": "file_acked", "seq": fseq, "ok": false, "error": e.to_string()})),
                        }
                    }
                    "presence" => {
                        let room = cmd["room"].as_str().unwrap_or_default().to_string();
                        let got = web
                            .get(format!("{http}/api/server/rooms/{room}/presence?limit=1000"))
                            .header("X-API-Key", &key)
                            .send()
                            .await;
                        let body: Value = match got {
                            Ok(r) => r.json().await.unwrap_or(Value::Null),
                            Err(_) => Value::Null,
                        };
                        let users: Vec<Value> = body["users"].as_array().into_iter().flatten().map(|u| u["id"].clone()).collect();
                        emit(json!({"ev": "presence", "room": room, "count": body["count"], "users": users}));
                    }
                    _ => break,
                }
            }
            _ = next_tick(&mut stream), if ticking => {
                let Some(s) = stream.as_mut() else { continue };
                seq += 1;
                s.last = seq;
                let text = format!("m {seq} {}", now_us());
                for room in s.rooms.clone() {
                    let args = json!({"name": "send", "type": "text", "cast": "multi", "id": room, "data": text});
                    let tx = acks_tx.clone();
                    match client.submit(pipe, args, Bytes::new()).await {
                        Ok(answer) => {
                            s.outstanding += 1;
                            tokio::spawn(async move {
                                let ok = answer.wait().await.is_ok_and(|r| !r.is_error());
                                let _ = tx.send((room, seq, ok));
                            });
                        }
                        Err(_) => s.failed.push((room, seq)),
                    }
                }
                if let Some(left) = s.left.as_mut() {
                    *left = left.saturating_sub(1);
                    s.stopping |= *left == 0;
                }
            }
            Some((room, n, ok)) = acks.recv() => {
                if let Some(s) = stream.as_mut() {
                    s.outstanding = s.outstanding.saturating_sub(1);
                    if !ok {
                        s.failed.push((room, n));
                    }
                }
            }
            // The echo of our own posts (and presence): read and dropped, so nothing piles up.
            _ = client.next_push_within(Duration::from_secs(3600)) => {}
        }
        if stream
            .as_ref()
            .is_some_and(|s| s.stopping && s.outstanding == 0)
        {
            if let Some(s) = stream.take() {
                emit(
                    json!({"ev": "streamed", "first": s.first, "last": s.last, "failed": s.failed}),
                );
            }
        }
    }
    client.close().await;
    Ok(())
}

async fn next_tick(stream: &mut Option<Stream>) {
    match stream {
        Some(s) => {
            s.tick.tick().await;
        }
        None => std::future::pending().await,
    }
}
