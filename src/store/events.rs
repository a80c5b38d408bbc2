//! The `events` hook's outbox: connects, disconnects, joins and leaves written in batches, read after a
//! cursor, deleted once delivered.

use sqlx::QueryBuilder;

use super::{with_pool, Store, StoreError};

/// An event to write.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: String,
    pub user: String,
    pub room: Option<String>,
    pub node: String,
    pub at_ms: i64,
    /// JSON text.
    pub detail: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: i64,
    pub kind: String,
    pub user_id: String,
    pub room_id: Option<String>,
    pub node: String,
    pub at_ms: i64,
    pub detail: String,
}

impl Store {
    /// Writes a batch in one statement, in its order.
    pub async fn append_events(&self, batch: &[NewEvent]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // Ids commit in id order, whatever node writes (the delivery reads after a cursor): PostgreSQL under an
        // advisory lock; SQLite has a single writer.
        let lock = match self.backend() {
            "postgres" => Some(super::postgres::APPEND_LOCK + 1),
            _ => None,
        };
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            if let Some(key) = lock {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut qb = QueryBuilder::new(
                "INSERT INTO events (kind, user_id, room_id, node, at_ms, detail) ",
            );
            qb.push_values(batch, |mut row, e| {
                row.push_bind(e.kind.as_str())
                    .push_bind(e.user.as_str())
                    .push_bind(e.room.as_deref())
                    .push_bind(e.node.as_str())
                    .push_bind(e.at_ms)
                    .push_bind(e.detail.as_str());
            });
            qb.build().execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Events with ids above `after`, ascending, at most `limit`.
    pub async fn events_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, StoredEvent>(
                "SELECT id, kind, user_id, room_id, node, at_ms, detail FROM events \
                 WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }

    /// The newest stored event's id (0 when there is none).
    pub async fn newest_event_id(&self) -> Result<i64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM events")
                .fetch_one(pool)
                .await?
                .unwrap_or(0)
        }))
    }

    /// Deletes delivered events (ids up to `upto`).
    pub async fn forget_events(&self, upto: i64) -> Result<u64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query("DELETE FROM events WHERE id <= $1")
                .bind(upto)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
