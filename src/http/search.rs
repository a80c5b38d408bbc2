//! `GET /api/search?q=...[&room=rid | &user=uid][&before=mid][&limit=n]`: full-text search over what the
//! token's user may read (the in-band `history {query}`), newest first: `{messages, more, before}`. And
//! `DELETE /api/messages/{mid}`: the token's user redacts a message (the in-band `redact`).

use super::error::segment;
use axum::extract::rejection::PathRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;

use super::auth::principal;
use super::error::ApiError;
use super::HttpState;
use crate::rooms::{hits_json, HistoryThread, RedactBy, SearchRequest};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(super) struct SearchParams {
    q: String,
    room: Option<String>,
    user: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
}

pub async fn search(
    State(state): State<HttpState>,
    headers: HeaderMap,
    q: Result<Query<SearchParams>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let p = principal(&state, &headers).await?;
    let q = q
        .map(|Query(q)| q)
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let thread = match (q.room, q.user) {
        (None, None) => None,
        (Some(rid), None) => Some(HistoryThread::Room(rid)),
        (None, Some(uid)) => Some(HistoryThread::With(uid)),
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "give at most one of `room` and `user`".into(),
            ))
        }
    };
    let hits = state
        .rooms
        .search(
            &p.user.id,
            &p.rooms,
            SearchRequest {
                query: q.q,
                thread,
                before: q.before,
                limit: q.limit,
            },
        )
        .await?;
    Ok(hits_answer(&hits))
}

/// Search hits as the HTTP API answers them: JSON text, at most `HTTP_PAGE_MAX` bytes (the oldest left out).
pub(super) fn hits_answer(hits: &crate::rooms::Hits) -> axum::response::Response {
    super::history::json_text(hits_json(hits, Some(super::history::HTTP_PAGE_MAX)))
}

pub async fn redact(
    State(state): State<HttpState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let mid: i64 = super::error::number(segment(path)?, "message id")?;
    let p = principal(&state, &headers).await?;
    let by = RedactBy::User {
        id: &p.user.id,
        claims: &p.rooms,
    };
    Ok(axum::Json(state.rooms.redact(by, mid).await?))
}
