//! Retention: deleting a thread's oldest messages in bounded batches, and remembering where each thread's
//! kept history now begins (`history_pruned`), so history can say that messages were pruned rather than
//! pretend the thread began there.

use std::collections::HashMap;

use sqlx::QueryBuilder;

use super::models::Thread;
use super::{with_pool, Store, StoreError};

/// The cursor and lease name the pruner keeps in `hook_cursors` (its cursor: how far conversations were
/// scanned).
pub const PRUNER: &str = "retention";

/// What one batch of conversation pruning did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prune {
    /// Messages deleted.
    pub deleted: u64,
    /// Every id up to this one was looked at: the next batch starts above it.
    pub scanned_to: i64,
}

#[derive(sqlx::FromRow)]
struct PeerRow {
    id: i64,
    peer_lo: String,
    peer_hi: String,
}

impl Store {
    /// The newest message id created before `cutoff_ms`, found by bisecting the primary key: ids follow
    /// commit order and creation times follow it (to within one commit batch), so no index on time is needed
    /// and the search costs ~log2(ids) point reads. `None`: no message is that old.
    pub async fn id_before_time(&self, cutoff_ms: i64) -> Result<Option<i64>, StoreError> {
        let bounds: (Option<i64>, Option<i64>) = with_pool!(self, |pool| {
            sqlx::query_as("SELECT MIN(id), MAX(id) FROM messages")
                .fetch_one(pool)
                .await?
        });
        let (Some(mut lo), Some(mut hi)) = bounds else {
            return Ok(None);
        };
        // Invariant: every message below `lo` is older than the cutoff; none at or above `hi + 1` is.
        let mut found = None;
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            let row: Option<(i64, i64)> = with_pool!(self, |pool| {
                sqlx::query_as(
                    "SELECT id, created_ms FROM messages WHERE id >= $1 ORDER BY id LIMIT 1",
                )
                .bind(mid)
                .fetch_optional(pool)
                .await?
            });
            match row {
                Some((id, created)) if created < cutoff_ms => {
                    found = Some(id);
                    lo = id + 1;
                }
                Some(_) | None => hi = mid - 1,
            }
        }
        Ok(found)
    }

    /// The oldest id room `rid` keeps under a limit of `keep` messages (`None`: it has no more than that).
    pub async fn room_keep_from(&self, rid: &str, keep: u64) -> Result<Option<i64>, StoreError> {
        let offset = i64::try_from(keep.saturating_sub(1)).unwrap_or(i64::MAX);
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT id FROM messages WHERE room_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2",
            )
            .bind(rid)
            .bind(offset)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Deletes up to `limit` of room `rid`'s oldest messages with ids below `below` (their search entries with
    /// them) and records where the room's history now begins, in one short transaction. Returns how many.
    pub async fn prune_room(&self, rid: &str, below: i64, limit: u32) -> Result<u64, StoreError> {
        let ids: Vec<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT id FROM messages WHERE room_id = $1 AND id < $2 ORDER BY id LIMIT $3",
            )
            .bind(rid)
            .bind(below)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        let Some(&last) = ids.last() else {
            return Ok(0);
        };
        let thread = Thread::Room(rid.to_string()).read_key();
        self.delete_messages(&ids, &[(thread, last + 1)]).await
    }

    /// Deletes up to `limit` conversation messages with ids above `after` and below `below`, looking at no
    /// more than `window` ids (so one batch is bounded however few conversation messages there are among room
    /// ones), and records where each conversation now begins.
    pub async fn prune_conversations(
        &self,
        after: i64,
        below: i64,
        window: i64,
        limit: u32,
    ) -> Result<Prune, StoreError> {
        let upper = below.min(after.saturating_add(window));
        let rows: Vec<PeerRow> = with_pool!(self, |pool| {
            sqlx::query_as::<_, PeerRow>(
                "SELECT id, peer_lo, peer_hi FROM messages WHERE id > $1 AND id < $2 \
                 AND peer_lo IS NOT NULL ORDER BY id LIMIT $3",
            )
            .bind(after)
            .bind(upper)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        let full = rows.len() as u64 >= u64::from(limit);
        let scanned_to = match (full, rows.last()) {
            (true, Some(r)) => r.id,
            _ => upper - 1,
        };
        let mut begins: HashMap<String, i64> = HashMap::new();
        for r in &rows {
            let key = Thread::Peers(r.peer_lo.clone(), r.peer_hi.clone()).read_key();
            let at = begins.entry(key).or_insert(0);
            *at = (*at).max(r.id + 1);
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let begins: Vec<(String, i64)> = begins.into_iter().collect();
        let deleted = self.delete_messages(&ids, &begins).await?;
        Ok(Prune {
            deleted,
            scanned_to,
        })
    }

    /// Deletes `ids` and their search entries, and moves each thread's recorded beginning forward.
    async fn delete_messages(
        &self,
        ids: &[i64],
        begins: &[(String, i64)],
    ) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let unindex = format!(
            "DELETE FROM message_search WHERE {} IN (",
            self.db.dialect().search_id
        );
        Ok(with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut qb = QueryBuilder::new(unindex);
            let mut list = qb.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            qb.push(")");
            qb.build().execute(&mut *tx).await?;
            let mut qb = QueryBuilder::new("DELETE FROM messages WHERE id IN (");
            let mut list = qb.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            qb.push(")");
            let deleted = qb.build().execute(&mut *tx).await?.rows_affected();
            for (thread, from) in begins {
                sqlx::query(
                    "INSERT INTO history_pruned (thread, before_mid) VALUES ($1, $2) \
                     ON CONFLICT (thread) DO UPDATE SET before_mid = excluded.before_mid \
                     WHERE history_pruned.before_mid < excluded.before_mid",
                )
                .bind(thread)
                .bind(*from)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            deleted
        }))
    }

    /// Where retention left `thread`'s history beginning: its messages below this id were pruned.
    pub async fn pruned_before(&self, thread: &Thread) -> Result<Option<i64>, StoreError> {
        let key = thread.read_key();
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>("SELECT before_mid FROM history_pruned WHERE thread = $1")
                .bind(&key)
                .fetch_optional(pool)
                .await?
        }))
    }
}
