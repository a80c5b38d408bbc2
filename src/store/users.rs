//! Users as the gateway has seen them: created at first connect, rewritten when their nick or avatar changes.
//!
//! A connect of a user whose row this process already wrote with the same profile writes nothing, so a
//! thousand phones reconnecting cost no thousand writes. `last_seen_ms` is therefore the last time the row was
//! written (first connect, a profile change, or the first connect after a restart), not every connect.

/// Users remembered before the memory is cleared and rows are written again (bounds it for huge user bases).
const REMEMBER_USERS: usize = 100_000;

use super::{now_ms, with_pool, Store, StoreError};

impl Store {
    /// The user as last recorded: (nick, avatar, first connect ms, last recorded ms); `None` if never seen.
    pub async fn user(&self, id: &str) -> Result<Option<(String, String, i64, i64)>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as("SELECT nick, avatar, created_ms, last_seen_ms FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Records a user (id, nick, avatar) as seen now.
    pub async fn upsert_user(&self, id: &str, nick: &str, avatar: &str) -> Result<(), StoreError> {
        let profile = (nick.to_string(), avatar.to_string());
        if self.written().get(id) == Some(&profile) {
            return Ok(());
        }
        let now = now_ms();
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO users (id, nick, avatar, created_ms, last_seen_ms) VALUES ($1, $2, $3, $4, $4)
                 ON CONFLICT (id) DO UPDATE SET nick = excluded.nick, avatar = excluded.avatar,
                 last_seen_ms = excluded.last_seen_ms",
            )
            .bind(id)
            .bind(nick)
            .bind(avatar)
            .bind(now)
            .execute(pool)
            .await?;
        });
        let mut written = self.written();
        if written.len() >= REMEMBER_USERS {
            written.clear();
        }
        written.insert(id.to_string(), profile);
        Ok(())
    }

    fn written(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (String, String)>> {
        self.written_users.lock().unwrap_or_else(|e| e.into_inner())
    }
}
