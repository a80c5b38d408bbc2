//! Users as the gateway has seen them: created at first connect, refreshed at every connect.

use super::{now_ms, with_pool, Store, StoreError};

impl Store {
    /// Records a user (id, nick, avatar) as seen now.
    pub async fn upsert_user(&self, id: &str, nick: &str, avatar: &str) -> Result<(), StoreError> {
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
        Ok(())
    }
}
