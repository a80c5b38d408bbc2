//! Read positions: how far a user has read a room or a conversation, and how many messages lie beyond.

use super::models::Thread;
use super::{now_ms, with_pool, Store, StoreError};

impl Thread {
    /// The key of this thread in `read_positions`: `r` or `p`, then the room id or the two user ids, joined
    /// by the unit separator (a control character, which no id may hold: ids may hold `:`).
    pub fn read_key(&self) -> String {
        match self {
            Thread::Room(r) => format!("r\u{1f}{r}"),
            Thread::Peers(lo, hi) => format!("p\u{1f}{lo}\u{1f}{hi}"),
        }
    }

    /// The thread a `read_key` names.
    pub fn from_read_key(key: &str) -> Option<Thread> {
        let mut parts = key.split('\u{1f}');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("r"), Some(rid), None, None) => Some(Thread::Room(rid.to_string())),
            (Some("p"), Some(lo), Some(hi), None) => {
                Some(Thread::Peers(lo.to_string(), hi.to_string()))
            }
            _ => None,
        }
    }
}

impl Store {
    /// Moves `user`'s position in `thread` forward to `mid` (never back); returns the position in force and
    /// whether this call moved it (an insert or an update: the upsert's one affected row).
    pub async fn mark_read(
        &self,
        user: &str,
        thread: &Thread,
        mid: i64,
    ) -> Result<(i64, bool), StoreError> {
        let key = thread.read_key();
        let moved = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO read_positions (user_id, thread, mid, updated_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id, thread) DO UPDATE SET mid = excluded.mid, updated_ms = excluded.updated_ms \
                 WHERE read_positions.mid < excluded.mid",
            )
            .bind(user)
            .bind(&key)
            .bind(mid)
            .bind(now_ms())
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        });
        if moved {
            return Ok((mid, true));
        }
        Ok((
            self.read_position(user, thread).await?.unwrap_or(mid),
            false,
        ))
    }

    /// `user`'s position in `thread`, if they ever marked it.
    pub async fn read_position(
        &self,
        user: &str,
        thread: &Thread,
    ) -> Result<Option<i64>, StoreError> {
        let key = thread.read_key();
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT mid FROM read_positions WHERE user_id = $1 AND thread = $2",
            )
            .bind(user)
            .bind(&key)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Every position `user` has, as (thread key, mid), by key.
    pub async fn read_positions(&self, user: &str) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, (String, i64)>(
                "SELECT thread, mid FROM read_positions WHERE user_id = $1 ORDER BY thread",
            )
            .bind(user)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Messages in `thread` with ids above `after`, counted up to `cap` (so the cost is bounded by the cap,
    /// an index range scan on the thread's partial index, never a scan of the thread).
    pub async fn count_after(
        &self,
        thread: &Thread,
        after: i64,
        cap: u32,
    ) -> Result<i64, StoreError> {
        let cap = i64::from(cap);
        Ok(match thread {
            Thread::Room(room) => with_pool!(self, |pool| {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE room_id = $1 AND id > $2 \
                     ORDER BY id LIMIT $3) AS unread",
                )
                .bind(room)
                .bind(after)
                .bind(cap)
                .fetch_one(pool)
                .await?
            }),
            Thread::Peers(lo, hi) => with_pool!(self, |pool| {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE peer_lo = $1 AND peer_hi = $2 \
                     AND id > $3 ORDER BY id LIMIT $4) AS unread",
                )
                .bind(lo)
                .bind(hi)
                .bind(after)
                .bind(cap)
                .fetch_one(pool)
                .await?
            }),
        })
    }

    /// The newest message id in `thread` (0 when empty): one step down the thread's index.
    pub async fn newest_in(&self, thread: &Thread) -> Result<i64, StoreError> {
        let newest: Option<i64> = match thread {
            Thread::Room(room) => with_pool!(self, |pool| {
                sqlx::query_scalar("SELECT MAX(id) FROM messages WHERE room_id = $1")
                    .bind(room)
                    .fetch_one(pool)
                    .await?
            }),
            Thread::Peers(lo, hi) => with_pool!(self, |pool| {
                sqlx::query_scalar(
                    "SELECT MAX(id) FROM messages WHERE peer_lo = $1 AND peer_hi = $2",
                )
                .bind(lo)
                .bind(hi)
                .fetch_one(pool)
                .await?
            }),
        };
        Ok(newest.unwrap_or(0))
    }
}
