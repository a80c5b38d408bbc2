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
    Forbidden(String),
    BadRequest(String),
    NotFound(String),
    Room(RoomError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::Auth(e) => (StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
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

impl From<RoomError> for ApiError {
    fn from(e: RoomError) -> Self {
        ApiError::Room(e)
    }
}
