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
    /// A body over its route's cap (413).
    TooLarge(String),
    /// A body that did not arrive within the deadline (408).
    Timeout(String),
    /// The gateway cannot take it now (503).
    Busy(String),
    Room(RoomError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = match code {
            "unauthorized" => StatusCode::UNAUTHORIZED,
            "forbidden" => StatusCode::FORBIDDEN,
            "not_found" => StatusCode::NOT_FOUND,
            "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
            "timeout" => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        };
        if let ApiError::Room(RoomError::Store(inner)) = &self {
            tracing::error!(error = %inner, "an API request failed in the store");
        }
        (
            status,
            Json(json!({ "error": self.message(), "code": code })),
        )
            .into_response()
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
            | ApiError::NotFound(m)
            | ApiError::TooLarge(m)
            | ApiError::Timeout(m)
            | ApiError::Busy(m) => m.clone(),
        }
    }

    /// The `code` of the JSON answer, which decides its HTTP status (also the outcome label of the server
    /// API's metrics).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Auth(_) | ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::TooLarge(_) => "too_large",
            ApiError::Timeout(_) => "timeout",
            ApiError::Busy(_) => "unavailable",
            ApiError::Room(RoomError::NoSuchRoom(_) | RoomError::NoSuchMessage(_)) => "not_found",
            ApiError::Room(
                RoomError::NoRead(_)
                | RoomError::NoWrite(_)
                | RoomError::NotAdmin(_)
                | RoomError::Banned(_)
                | RoomError::NotGranted(_),
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

/// A route's path parameters; a malformed one (bad percent-encoding) is a JSON 400 like every other error,
/// not the framework's plain-text rejection.
pub fn segment<T>(
    path: Result<axum::extract::Path<T>, axum::extract::rejection::PathRejection>,
) -> Result<T, ApiError> {
    path.map(|axum::extract::Path(v)| v)
        .map_err(|_| ApiError::BadRequest("the URL's path is not valid UTF-8 text".into()))
}

/// A numeric path segment (`what` names it in the error).
pub fn number(segment: String, what: &str) -> Result<i64, ApiError> {
    segment
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{what} must be a number")))
}

/// Any path no route serves: a JSON 404.
pub async fn no_route() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// A route asked with a method it does not serve: a JSON 405.
pub async fn wrong_method() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(
            json!({"error": "this route does not serve that method", "code": "method_not_allowed"}),
        ),
    )
        .into_response()
}
