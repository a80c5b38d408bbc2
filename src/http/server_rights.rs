//! The server API's rights calls (API key; see `server_api.rs`): `POST /api/server/chmod` with the in-band
//! `chmod` semantics (operator `+`, `-` or `=`; mask as letters `rwx` or a number), and the shorthands
//! `POST /api/server/ban` (no rights: cannot join, read or send) and `POST /api/server/unban` (the rights
//! named, default `rw`). A room's owner keeps `x` whatever is asked (400).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use super::server_api::{caller, finish, json_body, read_body};
use super::HttpState;
use crate::protocol::args::{Chmod, Mask, Operator};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ChmodBody {
    room: String,
    user: String,
    operator: Operator,
    mask: Mask,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BanBody {
    room: String,
    user: String,
    /// Unban only: the rights given back (default `rw`).
    mask: Option<Mask>,
}

async fn run(
    state: &HttpState,
    key: &str,
    call: &str,
    args: Result<Chmod, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let result = match args {
        Ok(args) => state
            .rooms
            .server_chmod(key, &args)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    finish(state, key, call, result).map(Json)
}

pub async fn chmod(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let key = caller(&state, &headers, "chmod")?;
    let bytes = match read_body(&state, &headers, body).await {
        Ok(b) => b,
        Err(e) => return finish(&state, &key, "chmod", Err(e)),
    };
    let args = json_body::<ChmodBody>(&bytes).map(|b| Chmod {
        rid: b.room,
        tid: b.user,
        operator: b.operator,
        mask: b.mask,
    });
    run(&state, &key, "chmod", args).await
}

pub async fn ban(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let key = caller(&state, &headers, "ban")?;
    let bytes = match read_body(&state, &headers, body).await {
        Ok(b) => b,
        Err(e) => return finish(&state, &key, "ban", Err(e)),
    };
    let args = json_body::<BanBody>(&bytes).and_then(|b| match b.mask {
        Some(_) => Err(ApiError::BadRequest("ban takes no mask".into())),
        None => Ok(Chmod {
            rid: b.room,
            tid: b.user,
            operator: Operator::Set,
            mask: Mask::NONE,
        }),
    });
    run(&state, &key, "ban", args).await
}

pub async fn unban(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let key = caller(&state, &headers, "unban")?;
    let bytes = match read_body(&state, &headers, body).await {
        Ok(b) => b,
        Err(e) => return finish(&state, &key, "unban", Err(e)),
    };
    let args = json_body::<BanBody>(&bytes).map(|b| Chmod {
        rid: b.room,
        tid: b.user,
        operator: Operator::Set,
        mask: b.mask.unwrap_or(Mask(Mask::R.0 | Mask::W.0)),
    });
    run(&state, &key, "unban", args).await
}
