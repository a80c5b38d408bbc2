//! The server API's reads about rooms (API key, no rights checks; see `server_api.rs`):
//! `GET /api/server/rooms?after=&limit=`, `GET /api/server/rooms/{rid}` and
//! `GET /api/server/rooms/{rid}/presence?after=&limit=`; and `GET /api/server/users/{uid}` (where a user is).
//! `POST /api/server/rooms {rid, owner?}` creates a room (the way to make rooms when `create_on_join` is off);
//! `GET` / `POST /api/server/rooms/{rid}/properties` read and set a room's properties.

use super::error::segment;
use axum::extract::rejection::PathRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use super::server_api::{caller, finish, json_body, read_body, user_id};
use super::HttpState;

/// Pages hold 1..=1000 entries; 100 unless the caller asks.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PageParams {
    /// The last id of the previous page.
    after: Option<String>,
    /// 1..=1000, default 100.
    limit: Option<usize>,
}

/// A page's `after` and `limit`, the limit checked (400 outside 1..=1000).
pub(super) fn page_params(
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<(Option<String>, usize), ApiError> {
    let Query(p) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    Ok((p.after, limit))
}

/// `{"rooms": [{"id","owner","created","present"}], "more"}`, ascending by id after `after`.
pub async fn rooms(
    State(state): State<HttpState>,
    headers: HeaderMap,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let key = caller(&state, &headers, "rooms")?;
    let result = async {
        let (after, limit) = page_params(q)?;
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        Ok(state.rooms.rooms_page(after.as_deref(), limit).await?)
    }
    .await;
    finish(&state, &key, "rooms", result).map(Json)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    rid: String,
    /// Holds `rwx` in the room; the server API's publisher id when absent.
    owner: Option<String>,
}

/// `POST /api/server/rooms {rid, owner?}`: 201 with the room when this call created it, 200 with the room as it
/// was when it already existed (the owner is then unchanged).
pub async fn create(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let key = caller(&state, &headers, "create_room")?;
    let result = async {
        let body = read_body(&state, &headers, body).await?;
        let b: CreateBody = json_body(&body)?;
        let owner = b
            .owner
            .unwrap_or_else(|| state.server_api.publisher_id.clone());
        if owner.starts_with(crate::auth::GUEST_PREFIX) {
            return Err(ApiError::BadRequest(format!(
                "owner: `{}` ids are the gateway's own guests'",
                crate::auth::GUEST_PREFIX
            )));
        }
        Ok(state.rooms.server_create_room(&b.rid, &owner).await?)
    }
    .await;
    let (room, created) = finish(&state, &key, "create_room", result)?;
    let status = if created {
        axum::http::StatusCode::CREATED
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, Json(room)))
}

/// `{"id","owner","created","properties","default_rights","present"}`; 404 for an unknown room.
pub async fn room(
    State(state): State<HttpState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let rid = segment(path)?;
    let key = caller(&state, &headers, "room")?;
    let result = state.rooms.room_info(&rid).await.map_err(ApiError::from);
    finish(&state, &key, "room", result).map(Json)
}

/// `GET /api/server/rooms/{rid}/properties`: `{"properties": {...}}`, every property the room has.
pub async fn properties(
    State(state): State<HttpState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let rid = segment(path)?;
    let key = caller(&state, &headers, "room_properties")?;
    let result = state
        .rooms
        .server_room_properties(&rid)
        .await
        .map(|p| serde_json::json!({ "properties": p }))
        .map_err(ApiError::from);
    finish(&state, &key, "room_properties", result).map(Json)
}

/// `POST /api/server/rooms/{rid}/properties {"offline_notify": true, ...}`: sets the given properties (the
/// others stay), checked as `setProperty` checks them; answers `{"properties": {...}}`, all of them after.
pub async fn set_properties(
    State(state): State<HttpState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let rid = segment(path)?;
    let key = caller(&state, &headers, "set_room_properties")?;
    let result = async {
        let body = read_body(&state, &headers, body).await?;
        let given: serde_json::Map<String, Value> = json_body(&body)?;
        if given.is_empty() {
            return Err(ApiError::BadRequest(
                "give at least one property, e.g. {\"offline_notify\": true}".into(),
            ));
        }
        let props = state.rooms.server_set_room_properties(&rid, &given).await?;
        Ok(serde_json::json!({ "properties": props }))
    }
    .await;
    finish(&state, &key, "set_room_properties", result).map(Json)
}

/// `{"users": [{"id","nick","avatar"}], "more", "count"}`: who is present (on every node), ascending by id.
pub async fn presence(
    State(state): State<HttpState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let rid = segment(path)?;
    let key = caller(&state, &headers, "presence")?;
    let result = async {
        let (after, limit) = page_params(q)?;
        let page = state.rooms.presence(&rid, after.as_deref(), limit).await?;
        serde_json::to_value(page).map_err(|e| ApiError::BadRequest(e.to_string()))
    }
    .await;
    finish(&state, &key, "presence", result).map(Json)
}

/// `{"id","rooms": [rooms present in, on every node],"connections": <live here>,"parked": <parked here>,
/// "seen": <the stored profile, or null for a user who never connected>}`.
pub async fn user(
    State(state): State<HttpState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let uid = segment(path)?;
    let key = caller(&state, &headers, "user")?;
    let result = async {
        user_id(&uid)?;
        let seen = state.rooms.user_record(&uid).await?;
        let (live, parked) = state.rooms.sessions_of(&uid);
        Ok(serde_json::json!({
            "id": uid,
            "rooms": state.rooms.rooms_of(&uid),
            "connections": live,
            "parked": parked,
            "seen": seen,
        }))
    }
    .await;
    finish(&state, &key, "user", result).map(Json)
}
