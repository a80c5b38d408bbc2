//! Session ownership for a cluster: which node a session (uuid) lives on, so a fast reconnect that lands on
//! another node can find it. Only ids are kept here; the session's state moves node to node over the bus.

use super::{now_ms, with_pool, Store, StoreError};

impl Store {
    /// Records (or moves) session `uuid` of `user` to `node`.
    pub async fn record_session(
        &self,
        uuid: &str,
        user: &str,
        node: &str,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO sessions (uuid, user_id, node, updated_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (uuid) DO UPDATE SET node = excluded.node, updated_ms = excluded.updated_ms",
            )
            .bind(uuid)
            .bind(user)
            .bind(node)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The (user, node) of session `uuid`, if recorded.
    pub async fn session_owner(&self, uuid: &str) -> Result<Option<(String, String)>, StoreError> {
        let row: Option<(String, String)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT user_id, node FROM sessions WHERE uuid = $1")
                .bind(uuid)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    /// Forgets session `uuid` if `node` still owns it (a session that moved on is not touched).
    pub async fn forget_session(&self, uuid: &str, node: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE uuid = $1 AND node = $2")
                .bind(uuid)
                .bind(node)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Forgets every session of a node that died: nothing of them is left to hand over.
    pub async fn forget_node_sessions(&self, node: &str) -> Result<u64, StoreError> {
        let n = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE node = $1")
                .bind(node)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    }
}
