//! Rooms and the rights of users in them.

use super::models::RoomRow;
use super::{now_ms, with_pool, Store, StoreError};

impl Store {
    /// Creates the room with `owner` unless it exists; returns the room as stored (first creator wins).
    pub async fn ensure_room(&self, id: &str, owner: &str) -> Result<(RoomRow, bool), StoreError> {
        let now = now_ms();
        let created = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO rooms (id, owner, created_ms, properties) VALUES ($1, $2, $3, '{}')
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(owner)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        });
        let row = self
            .room(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("room {id} vanished after creation")))?;
        Ok((row, created))
    }

    /// Rooms ascending by id, after `after` (exclusive), at most `limit`: the server API's room list.
    pub async fn rooms_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RoomRow>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, RoomRow>(
                "SELECT id, owner, created_ms, properties FROM rooms WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }

    pub async fn room(&self, id: &str) -> Result<Option<RoomRow>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, RoomRow>(
                "SELECT id, owner, created_ms, properties FROM rooms WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Replaces a room's properties (a JSON object as text).
    pub async fn set_room_properties(&self, id: &str, properties: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE rooms SET properties = $1 WHERE id = $2")
                .bind(properties)
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The stored rights of `user` in `room`, if any were ever set.
    pub async fn member_mask(&self, room: &str, user: &str) -> Result<Option<u32>, StoreError> {
        let m: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT mask FROM room_members WHERE room_id = $1 AND user_id = $2")
                .bind(room)
                .bind(user)
                .fetch_optional(pool)
                .await?
        });
        m.map(|m| {
            u32::try_from(m).map_err(|_| StoreError::Corrupt(format!("mask {m} out of range")))
        })
        .transpose()
    }

    /// Stored rights in `room`, ascending by user id after `after` (exclusive), at most `limit`: the server
    /// API's (and the admin console's) list of who holds what.
    pub async fn member_masks(
        &self,
        room: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, u32)>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT user_id, mask FROM room_members WHERE room_id = $1 AND user_id > $2 \
                 ORDER BY user_id LIMIT $3",
            )
            .bind(room)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(user, m)| {
                u32::try_from(m)
                    .map(|m| (user, m))
                    .map_err(|_| StoreError::Corrupt(format!("mask {m} out of range")))
            })
            .collect()
    }

    /// Sets the rights of `user` in `room` (the room must exist).
    pub async fn set_member_mask(
        &self,
        room: &str,
        user: &str,
        mask: u32,
    ) -> Result<(), StoreError> {
        self.write_member_mask(
            room,
            user,
            mask,
            "DO UPDATE SET mask = excluded.mask, updated_ms = excluded.updated_ms",
        )
        .await
    }

    /// Stores rights only if none are stored yet; returns the rights in force. A first join (the common case)
    /// is one round trip: the insert returns the row it wrote; only when a row was already there is it read.
    pub async fn init_member_mask(
        &self,
        room: &str,
        user: &str,
        mask: u32,
    ) -> Result<u32, StoreError> {
        let now = now_ms();
        let inserted: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO room_members (room_id, user_id, mask, updated_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (room_id, user_id) DO NOTHING RETURNING mask",
            )
            .bind(room)
            .bind(user)
            .bind(i64::from(mask))
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        if let Some(m) = inserted {
            return u32::try_from(m)
                .map_err(|_| StoreError::Corrupt(format!("rights {m} of {user} in {room}")));
        }
        self.member_mask(room, user)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("rights of {user} in {room} vanished")))
    }

    /// Inserts a member's rights; `on_conflict` (a fixed string from this file) says what an existing row
    /// gets.
    async fn write_member_mask(
        &self,
        room: &str,
        user: &str,
        mask: u32,
        on_conflict: &'static str,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let sql = format!(
            "INSERT INTO room_members (room_id, user_id, mask, updated_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (room_id, user_id) {on_conflict}"
        );
        with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(room)
                .bind(user)
                .bind(i64::from(mask))
                .bind(now)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
