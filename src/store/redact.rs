//! Redaction: a message keeps its row (its id, thread and place in the order) and loses its data, payload and
//! search entry; `redacted_by` and `redacted_ms` make it a tombstone in history.

use super::models::Thread;
use super::{with_pool, Store, StoreError};

/// What a redaction's rights check needs to know of a message.
#[derive(Debug, Clone)]
pub struct MessageRef {
    pub thread: Thread,
    pub sender: String,
    pub redacted: bool,
}

#[derive(sqlx::FromRow)]
struct RefRow {
    room_id: Option<String>,
    peer_lo: Option<String>,
    peer_hi: Option<String>,
    sender: String,
    redacted_ms: Option<i64>,
}

impl Store {
    /// The thread and sender of message `id`, if it exists.
    pub async fn message_ref(&self, id: i64) -> Result<Option<MessageRef>, StoreError> {
        let row: Option<RefRow> = with_pool!(self, |pool| {
            sqlx::query_as::<_, RefRow>(
                "SELECT room_id, peer_lo, peer_hi, sender, redacted_ms FROM messages WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        let Some(row) = row else { return Ok(None) };
        let thread = Thread::of_row(id, row.room_id, row.peer_lo, row.peer_hi)?;
        Ok(Some(MessageRef {
            thread,
            sender: row.sender,
            redacted: row.redacted_ms.is_some(),
        }))
    }

    /// Redacts the messages `ids` (those not redacted already) on behalf of `by` at `at_ms`: data becomes
    /// `null`, the payload goes, and so does the search entry, in one transaction. With `erase_sender`, the
    /// sender's nick and avatar go too (the right to erasure). Returns the ids it redacted.
    pub async fn redact(
        &self,
        ids: &[i64],
        by: &str,
        at_ms: i64,
        erase_sender: bool,
    ) -> Result<Vec<i64>, StoreError> {
        let mut done = Vec::with_capacity(ids.len());
        let unindex = format!(
            "DELETE FROM message_search WHERE {} = $1",
            self.db.dialect().search_id
        );
        let update = if erase_sender {
            "UPDATE messages SET data = 'null', payload = NULL, redacted_by = $1, redacted_ms = $2, \
             sender_nick = '', sender_avatar = '' WHERE id = $3 AND redacted_ms IS NULL"
        } else {
            "UPDATE messages SET data = 'null', payload = NULL, redacted_by = $1, redacted_ms = $2 \
             WHERE id = $3 AND redacted_ms IS NULL"
        };
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for &id in ids {
                let changed = sqlx::query(update)
                    .bind(by)
                    .bind(at_ms)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if changed == 1 {
                    sqlx::query(&unindex).bind(id).execute(&mut *tx).await?;
                    done.push(id);
                }
            }
            tx.commit().await?;
        });
        Ok(done)
    }

    /// Up to `limit` ids of `sender`'s messages in room `rid` above `after` not redacted yet, ascending: the
    /// erasure of a user's messages pages through them with this (a key set on the room's index).
    pub async fn sender_messages_in_room(
        &self,
        rid: &str,
        sender: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT id FROM messages WHERE room_id = $1 AND id > $2 AND sender = $3 \
                 AND redacted_ms IS NULL ORDER BY id LIMIT $4",
            )
            .bind(rid)
            .bind(after)
            .bind(sender)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }
}
