//! SQL written once for both backends that more than one repository file (or a backend's own file) builds on:
//! the message columns a page or a search returns, the batch INSERT, and the scope of a search.

use sqlx::QueryBuilder;

use super::models::{NewMessage, SearchQuery, SearchScope, Thread};

// LENGTH(bytea) is an int4 on PostgreSQL: the cast makes both backends return an i64.
pub(super) const COLUMNS: &str =
    "id, room_id, sender, sender_nick, sender_avatar, kind, cast_to, target, data, \
                       CAST(COALESCE(LENGTH(payload), 0) AS BIGINT) AS payload_len, created_ms, \
                       redacted_by, redacted_ms";

/// The batch's INSERT, one VALUES row per message, for whichever backend runs it.
pub(super) fn insert_messages<DB: sqlx::Database>(batch: &[NewMessage]) -> QueryBuilder<'_, DB>
where
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q [u8]>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut qb = QueryBuilder::new(
        "INSERT INTO messages (room_id, peer_lo, peer_hi, sender, sender_nick, sender_avatar, kind, \
         cast_to, target, data, payload, created_ms) ",
    );
    qb.push_values(batch, |mut row, m| {
        let (room, lo, hi) = match &m.thread {
            Thread::Room(r) => (Some(r.as_str()), None, None),
            Thread::Peers(a, b) => (None, Some(a.as_str()), Some(b.as_str())),
        };
        row.push_bind(room)
            .push_bind(lo)
            .push_bind(hi)
            .push_bind(m.sender.as_str())
            .push_bind(m.sender_nick.as_str())
            .push_bind(m.sender_avatar.as_str())
            .push_bind(m.kind.as_str())
            .push_bind(m.cast.as_str())
            .push_bind(m.target.as_str())
            .push_bind(m.data.as_str())
            .push_bind(m.payload.as_deref())
            .push_bind(m.created_ms);
    });
    qb
}

/// Which threads a search looks in, and the rule that redacted messages are never found.
pub(super) fn scope<'a, DB: sqlx::Database>(qb: &mut QueryBuilder<'a, DB>, q: &'a SearchQuery)
where
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    qb.push(" AND m.redacted_ms IS NULL");
    match &q.scope {
        SearchScope::Room(rid) => {
            qb.push(" AND m.room_id = ").push_bind(rid.as_str());
        }
        SearchScope::Peers(lo, hi) => {
            qb.push(" AND m.peer_lo = ").push_bind(lo.as_str());
            qb.push(" AND m.peer_hi = ").push_bind(hi.as_str());
        }
        SearchScope::Readable { rooms } => {
            // Rooms where the user's stored rights include `r` now (a room they lost `r` in drops out at
            // once), or their own conversations.
            qb.push(" AND (m.room_id IN (SELECT room_id FROM room_members WHERE user_id = ")
                .push_bind(q.user.as_str())
                .push(" AND (mask & 255) <> 0");
            if let Some(rooms) = rooms {
                // The token names the rooms it may touch: only those.
                qb.push(" AND room_id IN (");
                let mut list = qb.separated(", ");
                list.push_bind("");
                for r in rooms {
                    list.push_bind(r.as_str());
                }
                qb.push(")");
            }
            qb.push(") OR m.peer_lo = ")
                .push_bind(q.user.as_str())
                .push(" OR m.peer_hi = ")
                .push_bind(q.user.as_str())
                .push(")");
        }
    }
}
