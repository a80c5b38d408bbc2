//! `Authorization: Bearer <token>` resolved exactly as `connect` resolves it (`hooks::Authenticator`: the
//! connect hook when configured, asked with transport `http`). No header is an empty token (a guest, where
//! anonymous access is on).

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;

use super::error::ApiError;
use super::HttpState;
use crate::auth::Principal;

/// The caller with what its token allows.
pub async fn principal(state: &HttpState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let token = match headers.get(AUTHORIZATION) {
        None => "",
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| ApiError::BadRequest("Authorization header is not ASCII".into()))?;
            v.strip_prefix("Bearer ")
                .ok_or_else(|| {
                    ApiError::BadRequest("Authorization must be `Bearer <token>`".into())
                })?
                .trim()
        }
    };
    state
        .auth
        .principal(token, "http", "")
        .await
        .map_err(ApiError::Auth)
}
