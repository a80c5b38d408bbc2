//! The `events` hook: connects, disconnects, joins and leaves, told to the backend in batches, at least once, in
//! the order each node recorded them (EMQX's webhooks). Sessions record events on an `EventLog` (never
//! waiting); a writer task stores them in batches in the `events` table, the durable outbox; a delivery task
//! posts what follows the hook's cursor, moves the cursor when the backend answers 2xx, and deletes what was
//! delivered. A restart resumes from the cursor. What a crash can lose: events recorded in the last moments
//! before they were written (the writer stores what is queued every `FLUSH`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::{CursorLease, NewEvent, Store};

/// The writer stores what is queued at least this often.
const FLUSH: Duration = Duration::from_millis(50);
/// Events per INSERT.
const WRITE_BATCH: usize = 500;
/// The writer's backoff after a failed write (the delivery paces itself with `pace.rs`).
const BACKOFF: (Duration, Duration) = super::pace::BACKOFF;
/// The cursor's name in `hook_cursors`.
const CURSOR: &str = "events";

/// Where sessions record events. Cheap to clone; does nothing when the hook is off.
#[derive(Clone, Default)]
pub struct EventLog {
    tx: Option<mpsc::UnboundedSender<NewEvent>>,
    node: Arc<str>,
}

impl EventLog {
    /// Records `kind` for `user` (in `room`), with `detail`. Never waits.
    pub fn record(&self, kind: &str, user: &str, room: Option<&str>, detail: Value) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(NewEvent {
                kind: kind.to_string(),
                user: user.to_string(),
                room: room.map(str::to_string),
                node: self.node.to_string(),
                at_ms: crate::clock::now_ms(),
                detail: detail.to_string(),
            });
        }
    }
}

/// The hook's tasks: the writer and the delivery, to run until shutdown.
pub struct EventTasks {
    rx: mpsc::UnboundedReceiver<NewEvent>,
    store: Store,
    delivery: Delivery,
}

struct Delivery {
    http: reqwest::Client,
    url: String,
    secret: Vec<u8>,
    batch: u32,
    lease: CursorLease,
    store: Store,
    metrics: Arc<Metrics>,
}

/// The log sessions record on, and (when `[hooks.events] url` is set) the tasks that store and deliver.
pub fn events_hook(
    config: &crate::config::Hooks,
    node: &str,
    store: Store,
    metrics: Arc<Metrics>,
) -> (EventLog, Option<EventTasks>) {
    let c = &config.events;
    if c.url.is_empty() {
        return (EventLog::default(), None);
    }
    let http = match super::http::client(
        Duration::from_millis(c.timeout_ms.max(1)),
        config.ca_file.as_deref(),
    ) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "events hook disabled");
            return (EventLog::default(), None);
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let log = EventLog {
        tx: Some(tx),
        node: node.into(),
    };
    let delivery = Delivery {
        http,
        url: c.url.clone(),
        secret: config.secret.as_bytes().to_vec(),
        batch: c.batch.max(1),
        lease: CursorLease::new(CURSOR, node),
        store: store.clone(),
        metrics,
    };
    (
        log,
        Some(EventTasks {
            rx,
            store,
            delivery,
        }),
    )
}

impl EventTasks {
    /// Stores and delivers until `shutdown`; what is queued then is stored before the writer ends.
    pub async fn run(self, shutdown: CancellationToken) {
        let EventTasks {
            rx,
            store,
            delivery,
        } = self;
        tokio::join!(write(rx, store, shutdown.clone()), delivery.run(shutdown));
    }
}

/// The writer: batches of what sessions recorded, in order; a failed write is retried (kept in order).
async fn write(
    mut rx: mpsc::UnboundedReceiver<NewEvent>,
    store: Store,
    shutdown: CancellationToken,
) {
    let mut batch: Vec<NewEvent> = Vec::new();
    let mut backoff = BACKOFF.0;
    loop {
        let stopping = shutdown.is_cancelled();
        // Stopping: sessions still hold the log (they close after this task), so do not wait for more; store
        // what is queued now and end.
        if batch.is_empty() && !stopping {
            tokio::select! {
                got = rx.recv() => match got {
                    Some(e) => batch.push(e),
                    None => return,
                },
                _ = shutdown.cancelled() => {}
            }
        }
        while batch.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            if stopping {
                return;
            }
            continue;
        }
        match store.append_events(&batch).await {
            Ok(()) => {
                batch.clear();
                backoff = BACKOFF.0;
                if stopping && rx.is_empty() {
                    return;
                }
                if !stopping {
                    tokio::time::sleep(FLUSH).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, queued = batch.len(), "events not stored yet; retrying");
                if stopping {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
            }
        }
    }
}

impl Delivery {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut pace = super::pace::Pace::default();
        loop {
            let round = self.round().await;
            if round.is_err() {
                self.count("failed");
            }
            if !pace.wait(CURSOR, round, &shutdown).await {
                return;
            }
        }
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .hook_calls_total
            .with_label_values(&[CURSOR, outcome])
            .inc();
    }

    /// One batch: `Ok(true)` when delivered (look again at once), `Ok(false)` when there was nothing to send
    /// or another node holds the lease.
    async fn round(&mut self) -> Result<bool, String> {
        let store_err = |e: crate::store::StoreError| format!("store: {e}");
        let backlog = self
            .metrics
            .hook_backlog_messages
            .with_label_values(&[CURSOR]);
        let Some(last) = self.lease.cursor(&self.store).await.map_err(store_err)? else {
            backlog.set(0);
            return Ok(false);
        };
        let rows = self
            .store
            .events_after(last, self.batch)
            .await
            .map_err(store_err)?;
        // What is left to deliver: all of it in this batch, or ask how far the outbox goes.
        let newest_stored = self.store.newest_event_id();
        backlog.set(super::pace::left(rows.len(), self.batch, last, newest_stored).await?);
        let Some(newest) = rows.last().map(|e| e.id) else {
            return Ok(false);
        };
        let events: Vec<Value> = rows
            .iter()
            .map(|e| {
                let detail: Value = serde_json::from_str(&e.detail).unwrap_or(Value::Null);
                json!({
                    "id": e.id,
                    "kind": e.kind,
                    "user": e.user_id,
                    "room": e.room_id,
                    "node": e.node,
                    "at": e.at_ms,
                    "detail": detail,
                })
            })
            .collect();
        let body = json!({ "events": events }).to_string();
        let started = std::time::Instant::now();
        let sent = super::post_signed(&self.http, &self.url, &self.secret, body).await;
        self.metrics
            .hook_duration_seconds
            .with_label_values(&[CURSOR])
            .observe(started.elapsed().as_secs_f64());
        let resp = sent.map_err(|e| format!("unreachable: {e}"))?;
        if !resp.status().is_success() {
            return Err(super::http::refusal(&resp));
        }
        super::http::discard(resp).await;
        self.count("delivered");
        let held = self
            .store
            .hook_advance(CURSOR, self.lease.node(), newest)
            .await
            .map_err(store_err)?;
        self.lease.moved(newest, held);
        if held {
            self.store.forget_events(newest).await.map_err(store_err)?;
        }
        Ok(true)
    }
}
