//! The server API (`/api/server/...`): what the app's own backend calls, with an API key from
//! `[server_api] keys` in the `X-API-Key` header. Every call is counted per key name, call and outcome
//! (`odd_gateway_server_api_requests_total`); keys are compared in constant time and never logged.
//!
//! `POST /api/server/disconnect` ends every session of a user, on every node, with a reason its client is told.
//! `POST /api/server/broadcast` does the same into several rooms at once.
//! `POST /api/server/publish` puts a message into a room or a user's conversation through the same journal as
//! client posts: committed before the answer, with the same order and `mid`s (docs/http-api.md).

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::error::ApiError;
use super::HttpState;
use crate::protocol::args::{Cast, SendKind, User};
use crate::rooms::Post;

/// The header that carries the key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The name of the caller's key, or 401 (counted under key `-`).
pub(super) fn caller(
    state: &HttpState,
    headers: &HeaderMap,
    call: &str,
) -> Result<String, ApiError> {
    let presented = headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match state.server_api.key_name(presented.trim()) {
        Some(name) if !presented.is_empty() => Ok(name.to_string()),
        _ => {
            count(state, "-", call, "unauthorized");
            Err(ApiError::Unauthorized(
                "the server API needs a valid key in X-API-Key".into(),
            ))
        }
    }
}

/// A user id named in a request, held to the rules of a token's user id.
pub(super) fn user_id(id: &str) -> Result<(), ApiError> {
    // Only the id is judged; a placeholder nick satisfies the rest of the identity check.
    let who = User {
        id: id.to_string(),
        nick: "-".into(),
        avatar: String::new(),
    };
    crate::auth::validate_user(&who).map_err(not_a_token)
}

/// A user named in a request failed the rules of a token's user: say what is wrong with it, without the
/// token wording (there is no token here).
fn not_a_token(e: crate::auth::AuthError) -> ApiError {
    match e {
        crate::auth::AuthError::Invalid(why) => ApiError::BadRequest(why),
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// A server-API body, read once the key checked out (`body.rs`).
pub(super) async fn read_body(
    state: &HttpState,
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, ApiError> {
    super::body::read(state, headers, body, super::body::SERVER_API_MAX).await
}

/// A request body, held to the same check as a client's command arguments (nesting depth, valid Unicode:
/// whatever is accepted can be read back by every reader), then parsed.
pub(super) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    crate::protocol::json_check::check_json(body)
        .map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = crate::protocol::plain_json_error(&e.into_inner().to_string());
        ApiError::BadRequest(if path == "." {
            format!("body: {inner}")
        } else {
            format!("body: {path}: {inner}")
        })
    })
}

fn count(state: &HttpState, key: &str, call: &str, outcome: &str) {
    state
        .metrics
        .server_api_requests_total
        .with_label_values(&[key, call, outcome])
        .inc();
}

/// Runs one call and counts its outcome under the caller's key.
pub(super) fn finish<T>(
    state: &HttpState,
    key: &str,
    call: &str,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    count(state, key, call, outcome);
    result
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PublishBody {
    /// A room id (a room post) ...
    room: Option<String>,
    /// ... or a user id (a uni-cast to every connection of that user).
    user: Option<String>,
    #[serde(rename = "type", default = "text")]
    kind: SendKind,
    #[schemars(with = "serde_json::Value")]
    data: Box<RawValue>,
    /// Who it is from; default: `[server_api] publisher_id` / `publisher_nick`.
    sender: Option<User>,
}

fn text() -> SendKind {
    SendKind::Text
}

pub async fn publish(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let key = caller(&state, &headers, "publish")?;
    let result = match read_body(&state, &headers, body).await {
        Ok(body) => publish_as(&state, &body).await,
        Err(e) => Err(e),
    };
    finish(&state, &key, "publish", result).map(Json)
}

async fn publish_as(state: &HttpState, body: &[u8]) -> Result<Value, ApiError> {
    let p: PublishBody = json_body(body)?;
    let (cast, target) = match (p.room, p.user) {
        (Some(room), None) => (Cast::Multi, room),
        (None, Some(user)) => (Cast::Uni, user),
        _ => {
            return Err(ApiError::BadRequest(
                "name exactly one of `room` and `user`".into(),
            ))
        }
    };
    let post = server_post(state, p.sender, p.kind, cast, target, p.data)?;
    let posted = state.rooms.server_post(post).await?.committed().await?;
    Ok(json!({ "mid": posted.mid, "timestamp": posted.timestamp, "delivered": posted.delivered }))
}

/// A message from the backend: from `sender` (checked like a token's user) or the configured publisher.
fn server_post(
    state: &HttpState,
    sender: Option<User>,
    kind: SendKind,
    cast: Cast,
    target: String,
    data: Box<RawValue>,
) -> Result<Post, ApiError> {
    let sender = match sender {
        Some(u) => {
            crate::auth::validate_named_user(&u).map_err(not_a_token)?;
            u
        }
        None => User {
            id: state.server_api.publisher_id.clone(),
            nick: state.server_api.publisher_nick.clone(),
            avatar: String::new(),
        },
    };
    Ok(Post {
        sender,
        conn: 0,
        kind,
        cast,
        target,
        data,
        payload: bytes::Bytes::new(),
        persist: true,
        origin: None,
    })
}

/// The most rooms one broadcast names.
const MAX_BROADCAST_ROOMS: usize = 100;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BroadcastBody {
    rooms: Vec<String>,
    #[serde(rename = "type", default = "text")]
    kind: SendKind,
    #[schemars(with = "serde_json::Value")]
    data: Box<RawValue>,
    sender: Option<User>,
}

/// `POST /api/server/broadcast`: one message into each of several rooms. Each room's post is its own (its own
/// `mid`, committed or refused on its own): `{"results": [{"room","mid"} | {"room","code","error"}]}` in the
/// order the rooms were named. All are queued before any is awaited, so they commit together.
pub async fn broadcast(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let key = caller(&state, &headers, "broadcast")?;
    let result = match read_body(&state, &headers, body).await {
        Ok(body) => broadcast_as(&state, &body).await,
        Err(e) => Err(e),
    };
    finish(&state, &key, "broadcast", result).map(Json)
}

async fn broadcast_as(state: &HttpState, body: &[u8]) -> Result<Value, ApiError> {
    let b: BroadcastBody = json_body(body)?;
    if b.rooms.is_empty() || b.rooms.len() > MAX_BROADCAST_ROOMS {
        return Err(ApiError::BadRequest(format!(
            "name 1 to {MAX_BROADCAST_ROOMS} rooms"
        )));
    }
    let mut pending = Vec::with_capacity(b.rooms.len());
    for room in &b.rooms {
        let post = server_post(
            state,
            b.sender.clone(),
            b.kind,
            Cast::Multi,
            room.clone(),
            b.data.clone(),
        )?;
        pending.push(state.rooms.server_post(post).await);
    }
    let mut results = Vec::with_capacity(pending.len());
    for (room, p) in b.rooms.iter().zip(pending) {
        let outcome = match p {
            Ok(p) => p.committed().await,
            Err(e) => Err(e),
        };
        results.push(match outcome {
            Ok(posted) => json!({ "room": room, "mid": posted.mid }),
            Err(e) => {
                let e = ApiError::from(e);
                json!({ "room": room, "code": e.code(), "error": e.message() })
            }
        });
    }
    Ok(json!({ "results": results }))
}

/// The longest reason a disconnect passes on to the client.
const MAX_REASON: usize = 256;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DisconnectBody {
    user: String,
    reason: Option<String>,
}

pub async fn disconnect(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let key = caller(&state, &headers, "disconnect")?;
    let result = match read_body(&state, &headers, body).await {
        Ok(body) => disconnect_as(&state, &key, &body),
        Err(e) => Err(e),
    };
    finish(&state, &key, "disconnect", result).map(Json)
}

fn disconnect_as(state: &HttpState, key: &str, body: &[u8]) -> Result<Value, ApiError> {
    let d: DisconnectBody = json_body(body)?;
    user_id(&d.user)?;
    let reason = d
        .reason
        .unwrap_or_else(|| "disconnected by the server".to_string());
    if reason.chars().count() > MAX_REASON {
        return Err(ApiError::BadRequest(format!(
            "reason is longer than {MAX_REASON} characters"
        )));
    }
    let ended = state.rooms.disconnect_user(&d.user, &reason);
    tracing::info!(key, user = %d.user, %reason, ended, "server API disconnect");
    Ok(json!({ "disconnected": ended }))
}
