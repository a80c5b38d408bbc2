//! The server API's history calls (API key; see `server_api.rs`): `POST /api/server/redact {mid}` redacts any
//! message in the name of the configured publisher; `POST /api/server/erase {room, user}` redacts every
//! message `user` sent in `room` and erases their nick and avatar from those rows (the right to erasure).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::server_api::{caller, finish, json_body, read_body, user_id};
use super::HttpState;
use crate::rooms::RedactBy;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RedactBody {
    mid: i64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EraseBody {
    room: String,
    user: String,
}

pub async fn redact(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let key = caller(&state, &headers, "redact")?;
    let bytes = match read_body(&state, &headers, body).await {
        Ok(b) => b,
        Err(e) => return finish(&state, &key, "redact", Err(e)),
    };
    let result = match json_body::<RedactBody>(&bytes) {
        Ok(b) => {
            let by = RedactBy::Server {
                id: &state.server_api.publisher_id,
            };
            state.rooms.redact(by, b.mid).await.map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    finish(&state, &key, "redact", result).map(Json)
}

pub async fn erase(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let key = caller(&state, &headers, "erase")?;
    let bytes = match read_body(&state, &headers, body).await {
        Ok(b) => b,
        Err(e) => return finish(&state, &key, "erase", Err(e)),
    };
    let result = match json_body::<EraseBody>(&bytes).and_then(|b| user_id(&b.user).map(|_| b)) {
        Ok(b) => state
            .rooms
            .erase_messages(&state.server_api.publisher_id, &b.room, &b.user)
            .await
            .map(|n| json!({ "room": b.room, "user": b.user, "redacted": n }))
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    finish(&state, &key, "erase", result).map(Json)
}
