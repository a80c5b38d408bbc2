//! What asynchronous hooks read: messages after a cursor, and the cursor itself with its delivery lease.

use super::models::StoredMessage;
use super::sql::COLUMNS;
use super::{with_pool, Store, StoreError};

impl Store {
    /// Messages of every thread with ids above `after`, ascending, at most `limit`.
    pub async fn messages_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM messages WHERE id > $1 ORDER BY id LIMIT $2");
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, StoredMessage>(&sql)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }))
    }

    /// The newest stored message's id (0 when there is none): how far a hook's outbox reaches.
    pub async fn newest_message_id(&self) -> Result<i64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM messages")
                .fetch_one(pool)
                .await?
                .unwrap_or(0)
        }))
    }

    /// Takes (or keeps) the delivery lease of `hook` for `node` until `until_ms`; returns the cursor when this
    /// node holds the lease, `None` when another node does. A hook seen for the first time starts after the
    /// newest message: it delivers what is committed from now on, not the whole history.
    pub async fn hook_lease(
        &self,
        hook: &str,
        node: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO hook_cursors (hook, last_id, owner, lease_until_ms) \
                 SELECT CAST($1 AS TEXT), COALESCE(MAX(id), 0), '', 0 FROM messages WHERE true \
                 ON CONFLICT (hook) DO NOTHING",
            )
            .bind(hook)
            .execute(pool)
            .await?;
            let taken = sqlx::query(
                "UPDATE hook_cursors SET owner = $1, lease_until_ms = $2 \
                 WHERE hook = $3 AND (owner = $1 OR lease_until_ms < $4)",
            )
            .bind(node)
            .bind(until_ms)
            .bind(hook)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected();
            if taken == 0 {
                return Ok(None);
            }
            let last: i64 = sqlx::query_scalar("SELECT last_id FROM hook_cursors WHERE hook = $1")
                .bind(hook)
                .fetch_one(pool)
                .await?;
            Ok(Some(last))
        })
    }

    /// Moves `hook`'s cursor to `last_id` if `node` still holds its lease; false if it lost it meanwhile.
    pub async fn hook_advance(
        &self,
        hook: &str,
        node: &str,
        last_id: i64,
    ) -> Result<bool, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE hook_cursors SET last_id = $1 WHERE hook = $2 AND owner = $3 AND last_id < $1",
            )
            .bind(last_id)
            .bind(hook)
            .bind(node)
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        }))
    }

    /// Users with stored read rights (`r`) in `rid`, at most `limit`: who the offline hook considers for a
    /// room post.
    pub async fn readers_of(&self, rid: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, String>(
                "SELECT user_id FROM room_members WHERE room_id = $1 AND (mask & 255) <> 0 \
                 ORDER BY user_id LIMIT $2",
            )
            .bind(rid)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }
}
