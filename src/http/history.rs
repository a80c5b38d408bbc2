//! `GET /api/rooms/{rid}/messages` and `GET /api/users/{a}/conversations/{b}/messages`; and
//! `GET /api/rooms/{rid}/presence` (who is there, paged by user id: crowded rooms push no presence).
//!
//! Query: `before` (ids below), `after` (ids above), `limit`. Pages are ascending by id; the response's
//! `before` / `after` are the cursors for the next older / newer page, `more` says whether one exists.

use super::error::segment;
use axum::extract::rejection::PathRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;

use super::auth::principal;
use super::error::ApiError;
use super::HttpState;
use crate::rooms::{page_json, HistoryRequest, HistoryThread, RoomClaims};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(super) struct Params {
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<u32>,
}

fn params<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(p)| p)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

async fn page(
    state: &HttpState,
    user: &str,
    claims: &RoomClaims,
    thread: HistoryThread,
    p: Params,
) -> Result<axum::response::Response, ApiError> {
    let page = state
        .rooms
        .history(
            user,
            claims,
            HistoryRequest {
                thread,
                before: p.before,
                after: p.after,
                limit: p.limit,
            },
        )
        .await?;
    Ok(page_answer(&page, p.before, p.after))
}

/// A page as the HTTP API answers it, asked with `before` / `after`: JSON text already (stored data is passed
/// through, never re-parsed), at most `HTTP_PAGE_MAX` bytes, trimmed from the end it was not asked to start at.
pub(super) fn page_answer(
    page: &crate::store::Page,
    before: Option<i64>,
    after: Option<i64>,
) -> axum::response::Response {
    let newest = after.is_none() || before.is_some();
    json_text(page_json(page, newest, Some(HTTP_PAGE_MAX)))
}

/// The most bytes of JSON one history page or search answer carries over HTTP: messages past it are left for
/// the next page (`more: true`). A response is held whole until the client reads it, so without a bound a
/// client that asks for big pages and never reads could pin tens of megabytes per connection.
pub(super) const HTTP_PAGE_MAX: usize = 1 << 20;

/// A response whose body is JSON text built already (a history page, search hits).
pub(super) fn json_text(raw: Box<serde_json::value::RawValue>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body: Box<str> = raw.into();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        String::from(body),
    )
        .into_response()
}

pub async fn room_messages(
    State(state): State<HttpState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let rid = segment(path)?;
    let p = principal(&state, &headers).await?;
    page(
        &state,
        &p.user.id,
        &p.rooms,
        HistoryThread::Room(rid),
        params(q)?,
    )
    .await
}

pub async fn conversation_messages(
    State(state): State<HttpState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let (a, b) = segment(path)?;
    let p = principal(&state, &headers).await?;
    let user = &p.user;
    let other = if user.id == a {
        b
    } else if user.id == b {
        a
    } else {
        return Err(ApiError::Forbidden(format!(
            "only {a} and {b} may read their conversation"
        )));
    };
    page(
        &state,
        &user.id,
        &p.rooms,
        HistoryThread::With(other),
        params(q)?,
    )
    .await
}

/// `GET /api/messages/{mid}/payload`: the binary payload of a file message, as `application/octet-stream`.
pub async fn message_payload(
    State(state): State<HttpState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::response::Response, ApiError> {
    let mid: i64 = super::error::number(segment(path)?, "message id")?;
    use axum::response::IntoResponse;
    let p = principal(&state, &headers).await?;
    match state.rooms.payload(&p.user.id, &p.rooms, mid).await? {
        // A member's upload, served from the gateway's own origin: never as anything a browser would run or
        // render here (the admin console lives on this origin too).
        Some(bytes) => Ok((
            [
                (axum::http::header::CONTENT_TYPE, "application/octet-stream"),
                (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (axum::http::header::CONTENT_DISPOSITION, "attachment"),
                (
                    axum::http::header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; sandbox",
                ),
            ],
            bytes,
        )
            .into_response()),
        None => Err(ApiError::NotFound(format!(
            "message {mid} has no payload you can read"
        ))),
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(super) struct PresenceParams {
    after: Option<String>,
    limit: Option<usize>,
}

/// Users present in a room, ascending by id: `{users, more, count}`; `after` = the last id of the previous page.
pub async fn room_presence(
    State(state): State<HttpState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<PresenceParams>, QueryRejection>,
) -> Result<axum::Json<crate::rooms::PresencePage>, ApiError> {
    let rid = segment(path)?;
    let p = principal(&state, &headers).await?;
    let q = params(q)?;
    let limit = q.limit.unwrap_or(500);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let page = state
        .rooms
        .presence_page(&p.user.id, &p.rooms, &rid, q.after.as_deref(), limit)
        .await?;
    Ok(axum::Json(page))
}

/// `GET /api/users/{uid}/unread`: every room and conversation `uid` has a read position in, with unread
/// counts (`Rooms::unread_of`). The user's own token, or a server-API key.
pub async fn user_unread(
    State(state): State<HttpState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let uid = segment(path)?;
    if !crate::protocol::args::user::valid_user_id(&uid) {
        return Err(ApiError::BadRequest(
            "user id must be 1-128 letters, digits or _ - . @ : (not . or ..)".into(),
        ));
    }
    if headers.contains_key(super::server_api::API_KEY_HEADER) {
        let key = super::server_api::caller(&state, &headers, "unread")?;
        let result = state.rooms.unread_of(&uid).await.map_err(ApiError::from);
        return super::server_api::finish(&state, &key, "unread", result).map(axum::Json);
    }
    let p = principal(&state, &headers).await?;
    if p.user.id != uid {
        return Err(ApiError::Forbidden(format!(
            "only {uid} (or the server API) may read {uid}'s unread counts"
        )));
    }
    Ok(axum::Json(state.rooms.unread_of(&uid).await?))
}
