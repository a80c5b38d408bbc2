//! API errors as JSON: `{"error": "...", "code": "..."}` with a fitting HTTP status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::auth::AuthError;
use crate::rooms::RoomError;

#[derive(Debug)]
pub enum ApiError {
    Auth(AuthError),
    /// No or a wrong server-API key.
    Unauthorized(String),
    Forbidden(String),
    BadRequest(String),
    NotFound(String),
    Room(RoomError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::Auth(e) => (StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            ApiError::Room(e) => {
                let (status, code) = match &e {
                    RoomError::NoSuchRoom(_) => (StatusCode::NOT_FOUND, "not_found"),
                    RoomError::NoRead(_) | RoomError::Banned(_) | RoomError::NotGranted(_) => {
                        (StatusCode::FORBIDDEN, "forbidden")
                    }
                    RoomError::Invalid { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
                    RoomError::Store(inner) => {
                        tracing::error!(error = %inner, "history read failed");
                        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
                    }
                    _ => (StatusCode::BAD_REQUEST, "bad_request"),
                };
                (status, code, e.to_string())
            }
        };
        (status, Json(json!({ "error": message, "code": code }))).into_response()
    }
}

impl ApiError {
    /// The human-readable part of the answer.
    pub fn message(&self) -> String {
        match self {
            ApiError::Auth(e) => e.to_string(),
            ApiError::Room(e) => e.to_string(),
            ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::BadRequest(m)
            | ApiError::NotFound(m) => m.clone(),
        }
    }

    /// The `code` of the JSON answer (also the outcome label of the server API's metrics).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Auth(_) | ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::Room(RoomError::NoSuchRoom(_)) => "not_found",
            ApiError::Room(
                RoomError::NoRead(_) | RoomError::Banned(_) | RoomError::NotGranted(_),
            ) => "forbidden",
            ApiError::Room(RoomError::Store(_)) => "unavailable",
            ApiError::Room(_) => "bad_request",
        }
    }
}

impl From<RoomError> for ApiError {
    fn from(e: RoomError) -> Self {
        ApiError::Room(e)
    }
}
