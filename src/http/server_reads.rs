//! The server API's reads for an operator (API key; see `server_api.rs`), the admin console's data:
//! `GET /api/server/nodes` (this node's and every live node's figures), `GET /api/server/rooms/{rid}/messages`
//! and `GET /api/server/search?room=&q=` (a room's history and search without a member's rights),
//! `GET /api/server/rooms/{rid}/rights` (stored rights), `GET /api/server/media` and
//! `POST /api/server/media/end {id}` (the SFU's peer connections).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{segment, ApiError};
use super::history::page_answer;
use super::search::hits_answer;
use super::server_api::{caller, finish, json_body, read_body};
use super::server_rooms::{page_params, PageParams as ListParams};
use super::HttpState;
use crate::sfu::PeerKey;

/// `{"self": <this node>, "nodes": [<this node's figures>, <each other live node's, from its heartbeat>],
/// "publisher": {"id","nick"}}`.
pub async fn nodes(
    State(state): State<HttpState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let key = caller(&state, &headers, "nodes")?;
    let mut overview = state.rooms.nodes_overview((state.figures)());
    // The server's own identity: no member may hold it (the console marks its messages as the server's).
    overview["publisher"] = json!({
        "id": state.server_api.publisher_id,
        "nick": state.server_api.publisher_nick,
    });
    finish(&state, &key, "nodes", Ok(overview)).map(Json)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PageParams {
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<u32>,
}

/// A page of a room's history, shaped as the members' `GET /api/rooms/{rid}/messages` (no rights check).
pub async fn room_messages(
    State(state): State<HttpState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let rid = segment(path)?;
    let key = caller(&state, &headers, "room_messages")?;
    let result = async {
        let Query(p) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let page = state
            .rooms
            .server_history(&rid, p.before, p.after, p.limit)
            .await?;
        Ok(page_answer(&page, p.before, p.after))
    }
    .await;
    finish(&state, &key, "room_messages", result)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchParams {
    /// The words (docs/protocol.md, "Search").
    q: String,
    /// The room to search (required: the server API searches one room at a time).
    room: String,
    before: Option<i64>,
    limit: Option<u32>,
}

/// Search in one room, shaped as the members' `GET /api/search` (no rights check).
pub async fn search(
    State(state): State<HttpState>,
    headers: HeaderMap,
    q: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let key = caller(&state, &headers, "search")?;
    let result = async {
        let Query(p) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let hits = state
            .rooms
            .server_search(&p.room, &p.q, p.before, p.limit)
            .await?;
        Ok(hits_answer(&hits))
    }
    .await;
    finish(&state, &key, "search", result)
}

/// `{"rights": [{"user","mask"}], "more"}`: the users with stored rights in a room, ascending by id.
pub async fn rights(
    State(state): State<HttpState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let rid = segment(path)?;
    let key = caller(&state, &headers, "room_rights")?;
    let result = async {
        let (after, limit) = page_params(q)?;
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        Ok(state
            .rooms
            .room_rights(&rid, after.as_deref(), limit)
            .await?)
    }
    .await;
    finish(&state, &key, "room_rights", result).map(Json)
}

/// A peer connection's id in the server API: `pipe-<connection>-<pipe>`, or for a WHIP/WHEP resource
/// `http-<digest>`: the resource's own number is the secret in its `/rtc/resources/{id}` URL (whoever holds
/// it may end the session), so it is never shown; a keyed digest of it, stable for this process, is.
fn peer_id(key: PeerKey) -> String {
    match key {
        PeerKey::Pipe { conn, pipe } => format!("pipe-{conn}-{pipe}"),
        PeerKey::Http(id) => {
            use sha2::Digest;
            static SALT: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
            let salt = SALT.get_or_init(rand::random);
            let digest = sha2::Sha256::new()
                .chain_update(salt)
                .chain_update(id.to_be_bytes())
                .finalize();
            format!("http-{}", hex::encode(&digest[..12]))
        }
    }
}

/// Whether `id` has the shape of a peer id (`peer_id`); which peer it names is found among the live ones.
fn well_formed(id: &str) -> bool {
    if let Some(rest) = id.strip_prefix("pipe-") {
        return rest.split_once('-').is_some_and(|(conn, pipe)| {
            conn.parse::<u64>().is_ok() && pipe.parse::<u16>().is_ok() && !rest.contains('+')
        });
    }
    id.strip_prefix("http-").is_some_and(|h| {
        h.len() == 24
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `{"peers": [{"id","role","stream","via","connected","age_ms"}]}`: the SFU's publishers and players.
pub async fn media(
    State(state): State<HttpState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let key = caller(&state, &headers, "media")?;
    let peers: Vec<Value> = state
        .sfu
        .peers()
        .await
        .into_iter()
        .map(|p| {
            let via = match (p.key, p.publisher) {
                (PeerKey::Pipe { .. }, _) => "signaling",
                (PeerKey::Http(_), true) => "whip",
                (PeerKey::Http(_), false) => "whep",
            };
            json!({
                "id": peer_id(p.key),
                "role": if p.publisher { "publisher" } else { "player" },
                "stream": p.stream,
                "via": via,
                "connected": p.connected,
                "age_ms": u64::try_from(p.age.as_millis()).unwrap_or(u64::MAX),
            })
        })
        .collect();
    finish(&state, &key, "media", Ok(json!({ "peers": peers }))).map(Json)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EndBody {
    /// A peer's `id` from `GET /api/server/media`.
    id: String,
}

/// Ends a peer connection: its owner is told (a signaling pipe gets `NetStream.Failed`-style failure, a
/// publisher's players `Play.Stop`). `{"ended": true}`; 404 when there is no such peer.
pub async fn end_media(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let key = caller(&state, &headers, "end_media")?;
    let result = async {
        let body = read_body(&state, &headers, body).await?;
        let b: EndBody = json_body(&body)?;
        if !well_formed(&b.id) {
            return Err(ApiError::BadRequest(
                "id: a peer id from GET /api/server/media".into(),
            ));
        }
        let peer = state
            .sfu
            .peers()
            .await
            .into_iter()
            .map(|p| p.key)
            .find(|key| peer_id(*key) == b.id);
        let ended = match peer {
            Some(key) => state.sfu.end(key, "ended by the server").await,
            None => false,
        };
        if ended {
            Ok(json!({ "id": b.id, "ended": true }))
        } else {
            Err(ApiError::NotFound(format!("no peer connection {}", b.id)))
        }
    }
    .await;
    finish(&state, &key, "end_media", result).map(Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_are_well_formed_and_hide_the_resource_number() {
        for key in [PeerKey::Pipe { conn: 7, pipe: 3 }, PeerKey::Http(42)] {
            assert!(well_formed(&peer_id(key)), "{}", peer_id(key));
        }
        assert_eq!(peer_id(PeerKey::Http(42)), peer_id(PeerKey::Http(42)));
        assert_ne!(peer_id(PeerKey::Http(42)), peer_id(PeerKey::Http(43)));
        // The resource's number shows in neither base (a 16- or 19-digit run in 24 random hex digits: never).
        let secret: u64 = 0x1234_5678_9abc_def0;
        let shown = peer_id(PeerKey::Http(secret));
        assert!(!shown.contains(&secret.to_string()) && !shown.contains(&format!("{secret:x}")));
        for junk in [
            "",
            "pipe-",
            "pipe-1",
            "pipe-a-b",
            "pipe-+1-2",
            "http-",
            "http-42",
            "other-1",
            "pipe-1-99999",
        ] {
            assert!(!well_formed(junk), "{junk}");
        }
    }
}
