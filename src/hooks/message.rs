//! The `message` hook: every committed message, delivered to the backend in id order (so in order per room
//! and per conversation), in batches, at least once (docs/hooks.md). The `offline` hook runs the same way
//! over the same rows, posting only the recipients who have no connection.
//!
//! The durable outbox is the messages table itself: a cursor row (`hook_cursors`) says how far the backend
//! has acknowledged, and the task posts the rows after it. A restart resumes from the cursor, so nothing is
//! lost or reordered; a crash between the backend's 2xx and the cursor's update sends that batch again (same
//! `mid`s: the backend de-duplicates by `mid`). In a cluster the nodes share the cursor and a lease on it, so
//! one node at a time delivers.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::rooms::Rooms;
use crate::store::{CursorLease, Store};

/// Which asynchronous hook a task delivers.
#[derive(Clone)]
pub enum Kind {
    /// Every committed message.
    Message,
    /// For each committed message, the recipients without a connection (docs/hooks.md, `offline`).
    Offline,
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::Offline => "offline",
        }
    }
}

/// The most stored readers of one room the offline hook considers per message.
const MAX_ROOM_READERS: u32 = 10_000;

pub struct MessageHook {
    kind: Kind,
    http: reqwest::Client,
    url: String,
    secret: Vec<u8>,
    batch: u32,
    /// The delivery lease and cursor.
    lease: CursorLease,
    store: Store,
    rooms: Rooms,
    metrics: Arc<Metrics>,
}

impl MessageHook {
    pub fn new(
        kind: Kind,
        config: &crate::config::Hooks,
        node: &str,
        store: Store,
        rooms: Rooms,
        metrics: Arc<Metrics>,
    ) -> Option<MessageHook> {
        let c = match kind {
            Kind::Message => &config.message,
            Kind::Offline => &config.offline,
        };
        if c.url.is_empty() {
            return None;
        }
        let http = match super::http::client(
            Duration::from_millis(c.timeout_ms.max(1)),
            config.ca_file.as_deref(),
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(hook = kind.name(), error = %e, "hook disabled");
                return None;
            }
        };
        let kind_name = kind.name();
        Some(MessageHook {
            kind,
            http,
            url: c.url.clone(),
            secret: config.secret.as_bytes().to_vec(),
            batch: c.batch,
            lease: CursorLease::new(kind_name, node),
            store,
            rooms,
            metrics,
        })
    }

    /// Delivers until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut pace = super::pace::Pace::default();
        loop {
            let round = self.round().await;
            if round.is_err() {
                self.count("failed");
            }
            if !pace.wait(self.kind.name(), round, &shutdown).await {
                return;
            }
        }
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .hook_calls_total
            .with_label_values(&[self.kind.name(), outcome])
            .inc();
    }

    /// One delivery: `Ok(true)` when a batch was delivered (look again at once), `Ok(false)` when there was
    /// nothing to deliver or another node holds the lease.
    async fn round(&mut self) -> Result<bool, String> {
        let backlog = self
            .metrics
            .hook_backlog_messages
            .with_label_values(&[self.kind.name()]);
        let Some(last) = self.cursor().await? else {
            // Another node holds the lease: its backlog is its to report.
            backlog.set(0);
            return Ok(false);
        };

        let rows = self
            .store
            .messages_after(last, self.batch)
            .await
            .map_err(|e| format!("store: {e}"))?;
        // What is left to deliver: all of it fits in this batch, or ask how far the messages go.
        let newest_stored = self.store.newest_message_id();
        backlog.set(super::pace::left(rows.len(), self.batch, last, newest_stored).await?);
        let Some(newest) = rows.last().map(|m| m.id) else {
            return Ok(false);
        };
        let body = match &self.kind {
            Kind::Message => self.rooms.hook_messages(rows),
            Kind::Offline => match self.notifications(rows).await? {
                Some(body) => body,
                // Nobody in this batch was offline: move on without a request.
                None => return self.advance(newest).await,
            },
        };
        let started = std::time::Instant::now();
        let sent = super::post_signed(&self.http, &self.url, &self.secret, body).await;
        self.metrics
            .hook_duration_seconds
            .with_label_values(&[self.kind.name()])
            .observe(started.elapsed().as_secs_f64());
        let resp = sent.map_err(|e| format!("unreachable: {e}"))?;
        if !resp.status().is_success() {
            return Err(super::http::refusal(&resp));
        }
        super::http::discard(resp).await;
        self.count("delivered");
        self.advance(newest).await
    }

    async fn cursor(&mut self) -> Result<Option<i64>, String> {
        self.lease
            .cursor(&self.store)
            .await
            .map_err(|e| format!("store: {e}"))
    }

    async fn advance(&mut self, newest: i64) -> Result<bool, String> {
        let held = self
            .store
            .hook_advance(self.kind.name(), self.lease.node(), newest)
            .await
            .map_err(|e| format!("store: {e}"))?;
        self.lease.moved(newest, held);
        Ok(true)
    }

    /// `{"notifications": [{"user", "message"}]}` for the recipients of `rows` who have no connection: the
    /// target of a uni-cast, and the stored readers of a room whose `offline_notify` property is true; never
    /// the sender. `None` when nobody is offline. Offline means: no connected session on this node (a parked
    /// one is a phone that lost its network: it counts as offline) and present in no room on another node.
    async fn notifications(
        &self,
        rows: Vec<crate::store::StoredMessage>,
    ) -> Result<Option<String>, String> {
        use std::collections::HashMap;
        // Per batch, each room's readers are read once and each user is judged once: a batch is often many
        // messages of one room, and judging a user scans the rooms in memory.
        let mut readers: HashMap<String, Vec<String>> = HashMap::new();
        let mut offline: HashMap<String, bool> = HashMap::new();
        let rooms = &self.rooms;
        let mut items = Vec::new();
        for m in rows {
            let candidates: &[String] = match &m.room_id {
                None => std::slice::from_ref(&m.target),
                Some(rid) => {
                    if !readers.contains_key(rid) {
                        let list = if rooms.offline_notify(rid).await.unwrap_or(false) {
                            self.store
                                .readers_of(rid, MAX_ROOM_READERS)
                                .await
                                .map_err(|e| format!("store: {e}"))?
                        } else {
                            Vec::new()
                        };
                        readers.insert(rid.clone(), list);
                    }
                    readers.get(rid).map(Vec::as_slice).unwrap_or_default()
                }
            };
            let users: Vec<String> = candidates
                .iter()
                .filter(|u| **u != m.sender)
                .filter(|u| {
                    *offline.entry(u.to_string()).or_insert_with(|| {
                        rooms.sessions_of(u).0 == 0 && rooms.remote_rooms_of(u).is_empty()
                    })
                })
                .cloned()
                .collect();
            if users.is_empty() {
                continue;
            }
            let message = self.rooms.hook_message(m);
            for u in users {
                let user = serde_json::to_string(&u).unwrap_or_default();
                items.push(format!("{{\"user\":{user},\"message\":{message}}}"));
            }
        }
        Ok((!items.is_empty()).then(|| format!("{{\"notifications\":[{}]}}", items.join(","))))
    }
}
