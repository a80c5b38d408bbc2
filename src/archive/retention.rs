//! Retention: a background pruner deletes what a thread no longer keeps, in bounded batches.
//!
//! A room keeps messages younger than its `retention_age_s` property and at most its newest
//! `retention_count` (each defaulting to `[history]`; `0` = no limit); conversations keep messages younger than
//! `[history] retention_age_s`. Each batch is one short transaction of at most `prune_batch` deletes, and the
//! pruner yields between batches, so sends wait for at most one batch's lock. History reports the pruned range
//! (`pruned_before`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::{CursorLease, RoomRow, Store, StoreError, PRUNER};

/// Rooms read per page while the pruner walks them.
const ROOMS_PAGE: u32 = 500;
/// Ids one conversation batch looks at, at most.
const CONVERSATION_WINDOW: i64 = 10_000;
/// Pause between batches: lets waiting commits take the write lock.
const BETWEEN_BATCHES: Duration = Duration::from_millis(2);

/// Retention limits: the defaults (`[history]`), or one room's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Seconds a message is kept (0: forever).
    pub age_s: u64,
    /// Newest messages a room keeps (0: all).
    pub count: u64,
}

impl Retention {
    /// `row`'s limits: its properties where set, else these defaults.
    fn of_room(self, row: &RoomRow) -> Retention {
        // Properties that are not a JSON object (written by hand) set nothing: the defaults hold.
        let props: serde_json::Map<String, Value> =
            serde_json::from_str(&row.properties).unwrap_or_default();
        let get =
            |key: &str, default: u64| props.get(key).and_then(Value::as_u64).unwrap_or(default);
        Retention {
            age_s: get("retention_age_s", self.age_s),
            count: get("retention_count", self.count),
        }
    }
}

/// How the pruner works (from `[history]`).
#[derive(Debug, Clone, Copy)]
pub struct PruneSettings {
    /// Limits of conversations, and of rooms whose properties set none.
    pub defaults: Retention,
    /// How often it runs.
    pub interval: Duration,
    /// Messages deleted per transaction.
    pub batch: u32,
}

pub struct Pruner {
    store: Store,
    defaults: Retention,
    interval: Duration,
    batch: u32,
    lease: CursorLease,
    metrics: Arc<Metrics>,
}

impl Pruner {
    pub fn new(store: Store, settings: PruneSettings, node: &str, metrics: Arc<Metrics>) -> Pruner {
        Pruner {
            store,
            defaults: settings.defaults,
            interval: settings.interval.max(Duration::from_millis(1)),
            batch: settings.batch.max(1),
            lease: CursorLease::new(PRUNER, node),
            metrics,
        }
    }

    /// Prunes every `interval` until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
            match self.pass().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "retention pruned messages"),
                Err(e) => tracing::warn!(error = %e, "retention pass failed; next pass retries"),
            }
        }
    }

    /// One pass over every room and the conversations; returns how many messages it deleted.
    pub async fn pass(&mut self) -> Result<u64, StoreError> {
        self.pass_at(crate::clock::now_ms()).await
    }

    /// `pass` as if the clock read `now` (ms since the epoch): ages are measured from it. Tests run retention
    /// at a time of their choosing this way, instead of waiting for messages to age.
    pub async fn pass_at(&mut self, now: i64) -> Result<u64, StoreError> {
        let store = self.store.clone();
        let Some(scanned) = self.lease.cursor(&store).await? else {
            return Ok(0);
        };
        // The id below which messages are older than an age: one bisection per distinct age per pass.
        let mut below_age: HashMap<u64, Option<i64>> = HashMap::new();
        let mut total = 0;
        let mut after: Option<String> = None;
        loop {
            let page = store.rooms_page(after.as_deref(), ROOMS_PAGE).await?;
            for row in &page {
                let keep = self.defaults.of_room(row);
                let mut below: Option<i64> = None;
                if keep.age_s > 0 {
                    below = match below_age.get(&keep.age_s) {
                        Some(known) => *known,
                        None => {
                            let cutoff = now.saturating_sub(secs_to_ms(keep.age_s));
                            let id = store.id_before_time(cutoff).await?.map(|id| id + 1);
                            below_age.insert(keep.age_s, id);
                            id
                        }
                    };
                }
                if keep.count > 0 {
                    if let Some(first_kept) = store.room_keep_from(&row.id, keep.count).await? {
                        below = Some(below.map_or(first_kept, |b| b.max(first_kept)));
                    }
                }
                let Some(below) = below else { continue };
                loop {
                    let n = store.prune_room(&row.id, below, self.batch).await?;
                    total += n;
                    self.count("room", n);
                    if n < u64::from(self.batch) {
                        break;
                    }
                    tokio::time::sleep(BETWEEN_BATCHES).await;
                }
            }
            match page.last() {
                Some(last) if page.len() as u32 >= ROOMS_PAGE => after = Some(last.id.clone()),
                _ => break,
            }
        }
        if self.defaults.age_s > 0 {
            let cutoff = now.saturating_sub(secs_to_ms(self.defaults.age_s));
            if let Some(oldest_kept) = store.id_before_time(cutoff).await?.map(|id| id + 1) {
                let mut at = scanned;
                while at < oldest_kept - 1 {
                    let step = store
                        .prune_conversations(at, oldest_kept, CONVERSATION_WINDOW, self.batch)
                        .await?;
                    at = step.scanned_to;
                    total += step.deleted;
                    self.count("conversation", step.deleted);
                    tokio::time::sleep(BETWEEN_BATCHES).await;
                }
                if at > scanned {
                    let held = store.hook_advance(PRUNER, self.lease.node(), at).await?;
                    self.lease.moved(at, held);
                }
            }
        }
        Ok(total)
    }

    fn count(&self, thread: &str, n: u64) {
        if n > 0 {
            self.metrics
                .history_pruned_total
                .with_label_values(&[thread])
                .inc_by(n);
        }
    }
}

fn secs_to_ms(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}
