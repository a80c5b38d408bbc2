//! The client's background side: one task per client reads the transport, hands each answer to the request
//! waiting for it (by pipe and transaction id) and everything else to the app's push queue, and, for a client
//! opened by URL, reconnects and resumes the session when the transport is lost without a goodbye.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::conn::{command, connect_args, next_txid, reconnected, Conn};
use super::reply::Reply;
use super::url::{ClientOptions, Endpoint};
use crate::protocol::{Message, Reassembler};
use crate::transport::Inbound;

/// While reconnecting, a new attempt starts this often while earlier ones are still under way (at most
/// `ATTEMPTS` at once, each given `ATTEMPT_FOR`): after a blackout the attempt whose next retransmission comes
/// first wins, instead of one attempt whose retransmission timer backed off for seconds.
const STAGGER: Duration = Duration::from_millis(400);
const ATTEMPTS: usize = 6;
const ATTEMPT_FOR: Duration = Duration::from_secs(10);

/// How the gateway ends a session's transport when a reconnect takes the session over (`session/end.rs`).
const TAKEN_OVER: (&str, &str) = ("NetConnection.Connect.Closed", "taken over by a reconnect");

/// Status codes with which the gateway says goodbye: no reconnect after them.
const GOODBYES: [&str; 5] = [
    "NetConnection.Connect.Closed",
    "NetConnection.Connect.Rejected",
    "NetConnection.Connect.Failed",
    "NetConnection.Connect.AppShutdown",
    "NetConnection.Connect.IdleTimeout",
];

/// What a URL-opened client needs to come back.
pub(super) struct Reconnect {
    pub(super) endpoint: Endpoint,
    pub(super) options: ClientOptions,
    /// (token, uuid) of the session to resume; set by a successful handshake.
    pub(super) session: Mutex<Option<(String, String)>>,
    /// The client closed on purpose: do not come back.
    pub(super) done: std::sync::atomic::AtomicBool,
    /// Pipes, rooms and the last message id per room (`memory.rs`).
    pub(super) memory: Mutex<super::memory::Memory>,
    /// Resume attempts given up on while their `connect` may still reach the gateway (a gateway that stalled
    /// and then reads every queued connection at once): each may yet resume the session and take it over from
    /// the transport this client settled on. Such a takeover is this client's own doing, not a goodbye: it
    /// comes back again, once per stray.
    pub(super) strays: std::sync::atomic::AtomicU32,
    /// The names of this client's recent resume attempts (`connect {attempt}`): a gateway that says which
    /// attempt took the session over (`info.by`) makes `strays` exact. The newest `OWN_ATTEMPTS` are kept.
    pub(super) attempts: Mutex<std::collections::VecDeque<String>>,
}

/// Resume attempts whose names a client remembers.
const OWN_ATTEMPTS: usize = 256;

impl Reconnect {
    pub(super) fn memory(&self) -> std::sync::MutexGuard<'_, super::memory::Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh name for a resume attempt, remembered as this client's own.
    fn new_attempt(&self) -> String {
        let name = format!("{:016x}", rand::random::<u64>());
        let mut own = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        if own.len() == OWN_ATTEMPTS {
            own.pop_front();
        }
        own.push_back(name.clone());
        name
    }

    /// Whether a takeover (`info.by`, when the gateway names the taker) was this client's own late attempt.
    fn took_over_by_self(&self, by: Option<&str>) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        match by {
            Some(by) => self
                .attempts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|a| a == by),
            // A gateway that does not say: one abandoned attempt each.
            None => self
                .strays
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// Reads the transport; when it is lost (and nobody said goodbye), reconnects and resumes the session.
pub(super) async fn supervise(
    first: crate::transport::InboundRx,
    conn: Conn,
    reconnect: Option<Arc<Reconnect>>,
) {
    let mut inbound = first;
    let reason = loop {
        let (reason, goodbye) = read_loop(inbound, &conn, reconnect.as_deref()).await;
        let back = reconnect.as_ref().and_then(|rc| {
            let session = rc.session.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let done = goodbye || rc.done.load(std::sync::atomic::Ordering::SeqCst);
            session.filter(|_| !done).map(|s| (rc, s))
        });
        let Some((rc, (token, uuid))) = back else {
            break reason;
        };
        // Requests in flight may never be answered: fail them now.
        conn.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        match come_back(rc, &conn, &token, &uuid).await {
            Some(next) => inbound = next,
            None => break reason,
        }
    };
    // The reason first: requests failed below read it as why.
    *conn.closed.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    conn.pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}

/// Reopens the transport (racing staggered attempts, `open_racing`) and resumes `uuid`, sending the last
/// message id per room so the gateway replays what the lost transport swallowed. When the session is gone,
/// the new one gets the old pipes and rooms back (`restore`). Gives up after `reconnect_for`, or when the
/// gateway refuses (a token that expired).
async fn come_back(
    rc: &Reconnect,
    conn: &Conn,
    token: &str,
    uuid: &str,
) -> Option<crate::transport::InboundRx> {
    let deadline = tokio::time::Instant::now() + rc.options.reconnect_for;
    while tokio::time::Instant::now() < deadline {
        let link = open_racing(rc, deadline).await?;
        let (tx, rx) = crate::transport::outbound_queue(1024);
        let task = link.writer.start(rx, crate::transport::Stop::new());
        *conn.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        *conn.tx.lock().unwrap_or_else(|e| e.into_inner()) = tx.clone();
        let mut inbound = link.inbound;
        let txid = next_txid(&conn.txids, 0);
        let mut args = connect_args(token, uuid);
        args["attempt"] = json!(rc.new_attempt());
        let after = rc.memory().after();
        if !after.is_empty() {
            args["after"] = json!(after);
        }
        // A client in very many rooms may not fit its `after` into one command: it resumes without it.
        let frame = command(txid, &args).or_else(|| {
            args.as_object_mut().map(|o| o.remove("after"));
            command(txid, &args)
        })?;
        if tx.send_async(frame).await.is_err() {
            rc.strays.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            continue;
        }
        let within = rc.options.resume_answer_within;
        match tokio::time::timeout(within, answer(&mut inbound, txid)).await {
            Ok(Some(r)) if !r.is_error() => {
                let new_uuid = r.info()["uuid"].as_str().unwrap_or_default().to_string();
                let resumed = r.info()["resumed"] == json!(true);
                if let Some(s) = rc
                    .session
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                {
                    s.1 = new_uuid.clone();
                }
                let mut info = json!({"uuid": new_uuid, "resumed": resumed});
                if let Some(replayed) = r.info().get("replayed") {
                    info["replayed"] = replayed.clone();
                }
                if resumed {
                    let _ = conn.pushes.send(reconnected(info));
                } else {
                    // Runs beside the reader, which hands it the answers.
                    let (pipes, rooms, rejoins) = {
                        let m = rc.memory();
                        let rejoins: Vec<_> =
                            m.rooms.iter().map(|(_, rid)| m.rejoin_args(rid)).collect();
                        (m.pipes.clone(), m.rooms.clone(), rejoins)
                    };
                    tokio::spawn(super::restore::restore(
                        conn.clone(),
                        pipes,
                        rooms,
                        rejoins,
                        info,
                    ));
                }
                return Some(inbound);
            }
            // Refused (e.g. the token expired): coming back is not possible.
            Ok(Some(_)) => return None,
            // No answer in time: this attempt's `connect` may still be read (see `Reconnect::strays`).
            _ => {
                rc.strays.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
    None
}

/// Opens the transport again: a new attempt every `STAGGER` while earlier ones are still trying (at most
/// `ATTEMPTS`); the first to succeed wins. `None` once `deadline` passes or the client closed.
async fn open_racing(
    rc: &Reconnect,
    deadline: tokio::time::Instant,
) -> Option<crate::transport::Link> {
    use futures::stream::{FuturesUnordered, StreamExt};
    let mut attempts = FuturesUnordered::new();
    let mut next = tokio::time::Instant::now();
    loop {
        if rc.done.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline && attempts.is_empty() {
            return None;
        }
        if now >= next && now < deadline && attempts.len() < ATTEMPTS {
            attempts.push(tokio::time::timeout(
                ATTEMPT_FOR,
                rc.endpoint.open_with(&rc.options, false),
            ));
            next = now + STAGGER;
        }
        // With every slot taken, only an attempt's end can start the next one: no timer (it would have
        // passed already, and the loop would spin).
        let room = attempts.len() < ATTEMPTS && now < deadline;
        tokio::select! {
            Some(done) = attempts.next(), if !attempts.is_empty() => {
                if let Ok(Ok(link)) = done {
                    return Some(link);
                }
            }
            _ = tokio::time::sleep_until(next.min(deadline)), if room => {}
        }
    }
}

/// Reads until the answer to the connect with `txid`.
async fn answer(inbound: &mut crate::transport::InboundRx, txid: u16) -> Option<Reply> {
    let mut reassembler = Reassembler::new(64 * 1024 * 1024);
    loop {
        let Inbound::Frame(f) = inbound.recv().await? else {
            return None;
        };
        if let Ok(Some(Message::Command { pipe: 0, command })) = reassembler.push(f) {
            if command.txid == txid {
                return Reply::decode(0, command).ok();
            }
        }
    }
}

/// Reads one transport until it ends; returns why, and whether the gateway said goodbye first. With a
/// reconnecting client: pushes already delivered are dropped (`Memory::fresh`), and, once connected, a
/// transport silent for `ping_every` gets a `ping`; no sign of life within `ping_timeout` after it means the
/// path is dead (a silent network change, a blackout), and the client reconnects.
async fn read_loop(
    mut inbound: crate::transport::InboundRx,
    conn: &Conn,
    rc: Option<&Reconnect>,
) -> (String, bool) {
    let (pending, pushes) = (&conn.pending, &conn.pushes);
    let mut reassembler = Reassembler::new(64 * 1024 * 1024);
    let mut goodbye = false;
    let mut said: Option<String> = None;
    let liveness = rc.and_then(|rc| Some((rc.options.ping_every?, rc.options.ping_timeout)));
    let far = Duration::from_secs(365 * 24 * 3600);
    let mut life = tokio::time::Instant::now();
    // The outstanding ping: its txid and the deadline for a sign of life.
    let mut ping: Option<(u16, tokio::time::Instant)> = None;
    let reason = loop {
        let wake = match (liveness, ping) {
            (None, _) => life + far,
            (Some(_), Some((_, deadline))) => deadline,
            (Some((every, _)), None) => life + every,
        };
        let next = tokio::select! {
            next = inbound.recv() => next,
            // The `Client` was dropped: close the transport (dropping `inbound` does) and do not come back.
            _ = pushes.closed() => return ("client dropped".to_string(), true),
            _ = tokio::time::sleep_until(wake) => {
                let Some((_, timeout)) = liveness else { continue };
                if ping.is_some() {
                    break format!("no answer to ping within {} ms: the path is dead", timeout.as_millis());
                }
                let connected = rc.is_some_and(|rc| rc.session.lock().map(|s| s.is_some()).unwrap_or(false));
                if !connected {
                    life = tokio::time::Instant::now();
                    continue;
                }
                let txid = next_txid(&conn.txids, 0);
                let tx = conn.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let ping_args =
                    crate::protocol::commands::Command::to_args(&crate::protocol::args::Ping {});
                if let Some(frame) = command(txid, &ping_args) {
                    let _ = tx.try_send(frame);
                }
                ping = Some((txid, tokio::time::Instant::now() + timeout));
                continue;
            }
        };
        // Anything at all from the gateway is life.
        life = tokio::time::Instant::now();
        let ping_txid = ping.take().map(|(txid, _)| txid);
        let frame = match next {
            None => break "connection closed".to_string(),
            // A close by the gateway: whether to come back is decided by its goodbye status, as for a loss.
            Some(Inbound::Failed(r)) | Some(Inbound::Violation(r)) | Some(Inbound::Closed(r)) => {
                break r
            }
            Some(Inbound::SlowConsumer) => break "the gateway does not read".to_string(),
            Some(Inbound::Malformed(e)) => break format!("server sent a malformed frame: {e}"),
            Some(Inbound::Frame(f)) => f,
        };
        let (pipe, cmd) = match reassembler.push(frame) {
            Ok(Some(Message::Command { pipe, command })) => (pipe, command),
            Ok(_) => continue,
            Err(e) => break format!("server sent a bad message: {e}"),
        };
        let reply = match Reply::decode(pipe, cmd) {
            Ok(r) => r,
            Err(e) => break e,
        };
        if pipe == 0 && reply.txid != 0 && Some(reply.txid) == ping_txid {
            continue;
        }
        if pipe == 0 && reply.code() == TAKEN_OVER.0 && reply.description() == TAKEN_OVER.1 {
            // One of this client's own abandoned resume attempts got through after all: come back again.
            let by = reply.info().get("by").and_then(serde_json::Value::as_str);
            if rc.is_some_and(|rc| rc.took_over_by_self(by)) {
                continue;
            }
        }
        if pipe == 0 && GOODBYES.contains(&reply.code()) && reply.level() != "status" {
            goodbye = true;
            // The gateway's reason is why the connection ends: what a request still waiting (a `connect`
            // refused at accept time, with txid 0) fails with, and what the app sees.
            said = Some(format!("{}: {}", reply.code(), reply.description()));
        }
        if let Some(rc) = rc {
            if !rc.memory().fresh(&reply) {
                continue;
            }
        }
        let waiter = if reply.txid != 0 {
            pending
                .lock()
                .ok()
                .and_then(|mut p| p.remove(&(pipe, reply.txid)))
        } else {
            None
        };
        match waiter {
            Some(w) => {
                let _ = w.send(reply);
            }
            // An answer nobody waits for any more: a request failed when its transport was lost, whose answer
            // the gateway moved to the new one with the session (docs/protocol.md, "Connect"), or the answer
            // to an abandoned resume attempt. Pushes carry txid 0; the app never sees stale answers.
            None if reply.txid != 0 => {}
            None => {
                let _ = pushes.send(reply);
            }
        }
    };
    (said.unwrap_or(reason), goodbye)
}
