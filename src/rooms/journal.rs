//! The journal: the single task that commits messages in batches (group commit) and then fans them out.
//!
//! Senders queue a `Post` and wait. The journal takes everything queued (up to `max_batch`), commits it in one
//! transaction, and only then pushes each message to its recipients, in id order, and answers each sender.
//! While one batch commits the next one gathers, so throughput grows with load instead of paying one commit
//! per message. Because fan-out follows commit, an acknowledged or delivered message is always in the store.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::access::{authorize, Act};
use super::post::{Post, Posted, PushArgs};
use super::state::{validate_room_id, validate_user_id};
use super::{Inner, RoomError, Rooms};
use crate::protocol::args::Cast;
use crate::protocol::outgoing::command_frame;
use crate::store::{NewMessage, Thread};
use crate::transport::{Picks, SharedBatch};

/// Posts waiting for the journal. Senders wait for their answer, so this only bounds bursts.
const QUEUE: usize = 8192;
/// A batch stops gathering once its payloads reach this many bytes.
const BATCH_BYTES: usize = 8 << 20;

pub(super) struct Entry {
    post: Post,
    push: PushArgs,
    created_ms: i64,
    done: oneshot::Sender<Result<Posted, RoomError>>,
}

pub(super) struct JournalHandle {
    tx: mpsc::Sender<Entry>,
    pub(super) stats: Arc<JournalStats>,
}

/// Counters for the bench and the metrics: how well group commit is batching.
#[derive(Debug, Default)]
pub struct JournalStats {
    pub batches: AtomicU64,
    pub messages: AtomicU64,
    pub failed_batches: AtomicU64,
}

impl JournalHandle {
    pub(super) fn channel() -> (JournalHandle, mpsc::Receiver<Entry>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(JournalStats::default());
        (JournalHandle { tx, stats }, rx)
    }
}

impl Rooms {
    /// Checks, stores (unless temporary) and delivers a message; returns once it is committed and pushed.
    pub async fn post(&self, post: Post) -> Result<Posted, RoomError> {
        self.submit(post).await?.committed().await
    }

    /// Checks a message and queues it for the journal; the returned handle resolves once it is committed and
    /// delivered. Messages submitted one after another are committed and delivered in that order, so a
    /// connection can keep many in flight without losing its ordering.
    pub async fn submit(&self, post: Post) -> Result<PendingPost, RoomError> {
        let push = self.check(&post)?;
        // In a cluster a room's messages are committed by its home node, so they have one order everywhere.
        if post.cast == Cast::Multi {
            if let Some((bus, home)) = self.home_elsewhere(&post.target) {
                return Ok(Rooms::forward(bus, &home, &post));
            }
        }
        self.enqueue(post, push).await
    }

    /// Whether `post` may be sent as it is (membership, rights, ids, size), without sending it: what the
    /// session checks before asking the `publish` hook, so only messages that could be sent reach the backend.
    pub fn check_post(&self, post: &Post) -> Result<(), RoomError> {
        self.check(post).map(|_| ())
    }

    /// Queues a checked message, with its push arguments, for this node's journal.
    pub(super) async fn enqueue(
        &self,
        post: Post,
        push: PushArgs,
    ) -> Result<PendingPost, RoomError> {
        let (done, answer) = oneshot::channel();
        let entry = Entry {
            post,
            push,
            created_ms: crate::clock::now_ms(),
            done,
        };
        self.inner
            .journal
            .tx
            .send(entry)
            .await
            .map_err(|_| RoomError::ShuttingDown)?;
        Ok(PendingPost(answer))
    }

    /// Membership and rights: what the sender's own node checks before anything is stored. Returns the push
    /// arguments, built (and their size checked) here once.
    fn check(&self, post: &Post) -> Result<PushArgs, RoomError> {
        match post.cast {
            Cast::Multi => {
                validate_room_id(&post.target)?;
                let state = self.room_state(&post.target);
                let room = state.rooms.get(&post.target);
                let member = room
                    .and_then(|r| r.members.iter().find(|m| m.conn == post.conn))
                    .ok_or_else(|| RoomError::NotJoined(post.target.clone()))?;
                let mask = room.map(|r| r.mask_of(&post.sender.id));
                authorize(&member.claims, Act::Send, &post.target, mask)?;
            }
            Cast::Uni => validate_user_id(&post.target)?,
        }
        PushArgs::build(post)
    }
}

/// A submitted message on its way through the journal (here, or on the room's home node).
pub struct PendingPost(pub(super) oneshot::Receiver<Result<Posted, RoomError>>);

impl PendingPost {
    pub async fn committed(self) -> Result<Posted, RoomError> {
        self.0.await.map_err(|_| RoomError::ShuttingDown)?
    }
}

fn thread_of(post: &Post) -> Thread {
    match post.cast {
        Cast::Multi => Thread::Room(post.target.clone()),
        Cast::Uni => Thread::peers(&post.sender.id, &post.target),
    }
}

pub(super) async fn run(inner: Weak<Inner>, mut rx: mpsc::Receiver<Entry>) {
    while let Some(first) = rx.recv().await {
        let Some(inner) = inner.upgrade() else { break };
        let mut bytes = first.post.payload.len();
        let mut batch = vec![first];
        while batch.len() < inner.policy.max_batch && bytes < BATCH_BYTES {
            match rx.try_recv() {
                Ok(e) => {
                    bytes += e.post.payload.len();
                    batch.push(e);
                }
                Err(_) => break,
            }
        }
        commit_and_deliver(&inner, batch).await;
    }
}

/// Commits a batch, then delivers and answers each message of it in order; a failed commit answers every
/// sender with the error and delivers nothing.
async fn commit_and_deliver(inner: &Arc<Inner>, batch: Vec<Entry>) {
    match commit(inner, &batch).await {
        Ok(ids) => fan_out(inner, batch, ids),
        Err(e) => {
            for entry in batch {
                let _ = entry.done.send(Err(RoomError::Commit(e.clone())));
            }
        }
    }
}

/// Stores the batch's persisted messages in one transaction; returns their ids in batch order.
async fn commit(inner: &Inner, batch: &[Entry]) -> Result<Vec<i64>, Arc<crate::store::StoreError>> {
    let rows: Vec<NewMessage> = batch
        .iter()
        .filter(|e| e.post.persist)
        .map(|e| NewMessage {
            thread: thread_of(&e.post),
            sender: e.post.sender.id.clone(),
            sender_nick: e.post.sender.nick.clone(),
            sender_avatar: e.post.sender.avatar.clone(),
            kind: e.post.kind.as_str().to_string(),
            cast: e.post.cast.as_str().to_string(),
            target: e.post.target.clone(),
            data: e.post.data.get().to_string(),
            payload: if e.post.payload.is_empty() {
                None
            } else {
                Some(e.post.payload.to_vec())
            },
            created_ms: e.created_ms,
        })
        .collect();
    let stats = &inner.journal.stats;
    let m = &inner.metrics;
    let started = std::time::Instant::now();
    let result = inner.store.append(&rows).await;
    if !rows.is_empty() {
        m.store_commit_duration_seconds
            .observe(started.elapsed().as_secs_f64());
    }
    match result {
        Ok(ids) => {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats
                .messages
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
            if !rows.is_empty() {
                m.store_batch_messages.observe(rows.len() as f64);
                m.messages_stored_total.inc_by(rows.len() as u64);
            }
            Ok(ids)
        }
        Err(e) => {
            m.store_commit_failures_total.inc();
            stats.failed_batches.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, messages = rows.len(), "journal commit failed; senders are told");
            Err(Arc::new(e))
        }
    }
}

/// Delivers each committed message (here, or through the bus to every node) and answers its sender. Local
/// pushes are gathered per recipient over the whole batch and queued as one item each (one wake-up per
/// recipient per batch), before any sender is answered.
fn fan_out(inner: &Inner, batch: Vec<Entry>, ids: Vec<i64>) {
    let m = &inner.metrics;
    let mut ids = ids.into_iter();
    let mut deliveries = Deliveries::default();
    let mut answers = Vec::with_capacity(batch.len());
    for entry in batch {
        let mid = if entry.post.persist { ids.next() } else { None };
        let timestamp = (entry.created_ms / 1000) as u32;
        let body = push_body(&entry, mid, timestamp);
        // Without a bus, or while NATS is unreachable, deliver here; otherwise every node, this one included,
        // delivers what comes back from the bus.
        let delivered = match (inner.bus.cluster().filter(|b| b.connected()), body) {
            (_, None) => Some(0),
            (None, Some(body)) => {
                let post = &entry.post;
                let to = To {
                    room: post.cast == Cast::Multi,
                    target: &post.target,
                    sender: &post.sender.id,
                    skip: Some(post.conn),
                };
                let n = deliver_body(inner, to, mid, &body, &mut deliveries);
                m.fanout_deliveries_total.inc_by(n as u64);
                Some(n)
            }
            (Some(bus), Some(body)) => {
                let event = crate::bus::Event::Message {
                    node: entry
                        .post
                        .origin
                        .clone()
                        .unwrap_or_else(|| bus.node().to_string()),
                    conn: entry.post.conn,
                    room: entry.post.cast == Cast::Multi,
                    target: entry.post.target.clone(),
                    sender: entry.post.sender.id.clone(),
                    mid,
                };
                bus.publish(&event, &body);
                None
            }
        };
        answers.push((
            entry.done,
            Posted {
                mid,
                timestamp,
                delivered,
            },
        ));
    }
    deliveries.flush();
    for (done, posted) in answers {
        let _ = done.send(Ok(posted));
    }
}

/// Who a message goes to: a room's readers (`room`), or a user's connections and the sender's other ones.
pub(super) struct To<'a> {
    pub room: bool,
    /// Room id, or the user a uni-cast is for.
    pub target: &'a str,
    pub sender: &'a str,
    /// The sending connection, which gets the answer, not a copy (uni-cast only).
    pub skip: Option<u64>,
}

/// Pushes gathered per recipient connection, in order, then queued as one item per connection. Each message's
/// body is kept once; a recipient's item is its picks from the shared bodies (`transport::SharedBatch`).
#[derive(Default)]
pub(super) struct Deliveries {
    bodies: Vec<Bytes>,
    /// Looked up once per delivery: connection ids are small sequential integers, so Fx hashing (one multiply)
    /// instead of SipHash, which showed in the fan-out profile.
    by_conn: rustc_hash::FxHashMap<u64, (crate::transport::Outbox, Picks)>,
}

impl Deliveries {
    /// Keeps a message's body for this batch; its index is what recipients pick.
    fn body(&mut self, body: &Bytes) -> u32 {
        self.bodies.push(body.clone());
        u32::try_from(self.bodies.len() - 1).unwrap_or(u32::MAX)
    }

    fn add(&mut self, conn: u64, outbox: &crate::transport::Outbox, pipe: u16, body: u32) {
        match self.by_conn.entry(conn) {
            std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().1.add(pipe, body),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert((outbox.clone(), Picks::first(pipe, body)));
            }
        }
    }

    /// Queues what was gathered. Never waits: a full queue marks its connection as a slow consumer.
    pub(super) fn flush(self) {
        let bodies = Arc::new(self.bodies);
        for (_, (outbox, picks)) in self.by_conn {
            let _ = outbox.push_shared(SharedBatch::new(bodies.clone(), picks));
        }
    }
}

/// The command payload every recipient of a message gets (the pipe id is set per recipient).
fn push_body(entry: &Entry, mid: Option<i64>, timestamp: u32) -> Option<Bytes> {
    let args = entry.push.with_mid(mid);
    match command_frame(0, 0, &args, &entry.post.payload, timestamp) {
        Ok(f) => Some(f.payload),
        Err(e) => {
            // `PushArgs::build` checked the size before storing; reaching this is a bug, not a client error.
            tracing::error!(error = %e, "a stored message could not be encoded for delivery");
            None
        }
    }
}

/// Pushes an encoded message to this node's recipients: every member pipe of the room whose user holds `r`
/// (`room`), the sending connection's own included, because clients render only what the server pushes
/// (PROTOCOL.md §4: the sender sees its line with the server's id and time, in the same order as everyone);
/// or, for uni-cast, the target user's connections and the sender's *other* connections, never `skip` (the
/// sending connection, which has the answer). Never waits: a full queue marks its connection as a slow
/// consumer.
pub(super) fn deliver_body(
    inner: &Inner,
    to: To<'_>,
    mid: Option<i64>,
    body: &Bytes,
    out: &mut Deliveries,
) -> usize {
    let To {
        room,
        target,
        sender,
        skip,
    } = to;
    let mut delivered = 0;
    let index = out.body(body);
    // Counted as delivered: pushes to connected clients, not to parked sessions' queues.
    let mut push = |conn: u64, outbox: &crate::transport::Outbox, pipe: u16| -> usize {
        out.add(conn, outbox, pipe, index);
        usize::from(!outbox.is_away())
    };
    if room {
        let mut state = inner.shards.of(target);
        if let Some(room) = state.rooms.get_mut(target) {
            let super::state::Room {
                members,
                readers,
                catching_up,
                ..
            } = room;
            for (m, reads) in members.iter().zip(readers.iter()) {
                if !reads {
                    continue;
                }
                // A member replaying history (join with `after`) gets live messages after the replay.
                if let Some(held) = catching_up.get_mut(&(m.conn, m.pipe)) {
                    held.push((
                        mid,
                        crate::protocol::Frame::new(
                            crate::protocol::MessageType::Command,
                            m.pipe,
                            body.clone(),
                        ),
                    ));
                    delivered += 1;
                    continue;
                }
                delivered += push(m.conn, &m.outbox, m.pipe);
            }
        }
    } else {
        // The target's connections, and the sender's other connections (so all its devices show the
        // conversation), each once.
        let mut seen = HashSet::new();
        let inboxes = inner.shards.inboxes();
        for uid in [target, sender] {
            for m in inboxes.get(uid).into_iter().flatten() {
                if Some(m.conn) != skip && seen.insert(m.conn) {
                    delivered += push(m.conn, &m.outbox, m.pipe);
                }
            }
        }
    }
    delivered
}
