//! Messages: batched appends (group commit) and history pages.

use super::models::{
    Direction, HistoryQuery, NewMessage, Page, StoredMessage, StoredPayload, Thread,
};
use super::sql::COLUMNS;
use super::{with_pool, Db, Store, StoreError};

impl Store {
    /// Appends a batch atomically and returns the ids in the batch's order.
    ///
    /// One multi-row INSERT per batch, sent as a single statement: a statement is atomic on both backends, so
    /// no BEGIN/COMMIT round trips are needed (each is a hop to SQLite's worker thread or a PostgreSQL round
    /// trip, and under steady load those hops, not the write, were most of a commit's time).
    ///
    /// Ids come from the table's sequence in VALUES order (both backends assign them row by row as they
    /// insert). On SQLite the statement holds the database's only write lock, so its ids are consecutive and
    /// the last one is enough (no RETURNING rows streamed back one by one); on PostgreSQL RETURNING reports
    /// them and sorting restores the batch order. With one writer (see `rooms::journal`) ids also follow commit
    /// order, which is what makes the id the room's order.
    pub async fn append(&self, batch: &[NewMessage]) -> Result<Vec<i64>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids: Vec<i64> = match &self.db {
            Db::Sqlite(pool) => {
                super::sqlite::append(self.journal.as_ref().unwrap_or(pool), batch).await?
            }
            Db::Postgres(pool) => super::postgres::append(pool, batch, self.shared()).await?,
        };
        if ids.len() != batch.len() {
            return Err(StoreError::Corrupt(format!(
                "inserted {} messages but got {} ids",
                batch.len(),
                ids.len()
            )));
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// A page of a room's or a conversation's history, ascending by id.
    pub async fn history(&self, q: &HistoryQuery) -> Result<Page, StoreError> {
        let limit = i64::from(q.limit.max(1));
        let order = match q.direction() {
            Direction::Newest => "DESC",
            Direction::Oldest => "ASC",
        };
        let after = q.after.unwrap_or(0);
        let before = q.before.unwrap_or(i64::MAX);
        // One extra row tells whether there is more. Each filter matches its partial index's leading columns.
        let mut rows: Vec<StoredMessage> = match &q.thread {
            Thread::Room(room) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM messages WHERE room_id = $1 AND id > $2 AND id < $3 \
                     ORDER BY id {order} LIMIT $4"
                );
                with_pool!(self, |pool| {
                    sqlx::query_as::<_, StoredMessage>(&sql)
                        .bind(room)
                        .bind(after)
                        .bind(before)
                        .bind(limit + 1)
                        .fetch_all(pool)
                        .await?
                })
            }
            Thread::Peers(lo, hi) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM messages WHERE peer_lo = $1 AND peer_hi = $2 AND id > $3 AND id < $4 \
                     ORDER BY id {order} LIMIT $5"
                );
                with_pool!(self, |pool| {
                    sqlx::query_as::<_, StoredMessage>(&sql)
                        .bind(lo)
                        .bind(hi)
                        .bind(after)
                        .bind(before)
                        .bind(limit + 1)
                        .fetch_all(pool)
                        .await?
                })
            }
        };
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        rows.sort_by_key(|m| m.id);
        // The gap retention left shows where the page reaches below the oldest message kept: a newest-first
        // page only when it has no more beyond it (the scroll-back pages before that need no lookup), an
        // oldest-first page when it starts below the gap (one primary-key lookup).
        let pruned_before = match q.direction() {
            Direction::Newest if more => None,
            Direction::Newest => self.pruned_before(&q.thread).await?,
            Direction::Oldest => self
                .pruned_before(&q.thread)
                .await?
                .filter(|&first| after < first),
        };
        Ok(Page {
            messages: rows,
            more,
            pruned_before,
        })
    }

    /// The binary payload of one message and the thread it belongs to (for the access check), if it has one.
    pub async fn payload(&self, id: i64) -> Result<Option<StoredPayload>, StoreError> {
        let row: Option<PayloadRow> = with_pool!(self, |pool| {
            sqlx::query_as::<_, PayloadRow>(
                "SELECT room_id, peer_lo, peer_hi, payload FROM messages WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        let Some(row) = row else { return Ok(None) };
        let thread = Thread::of_row(id, row.room_id, row.peer_lo, row.peer_hi)?;
        Ok(row.payload.map(|bytes| StoredPayload { thread, bytes }))
    }
}

#[derive(sqlx::FromRow)]
struct PayloadRow {
    room_id: Option<String>,
    peer_lo: Option<String>,
    peer_hi: Option<String>,
    payload: Option<Vec<u8>>,
}
