//! Request bodies, read only once the caller is authenticated: handlers take the body unread, check the key or
//! token from the headers, and only then call `read`, which holds the body to the route's cap (a
//! `Content-Length` over it is refused before a byte is read), to `limits.http_body_timeout_ms` for the whole
//! body, and to the process-wide memory budget while it is read. A stranger's body is never buffered, and a
//! stalled one never holds memory or a connection past the deadline.

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_LENGTH;
use axum::http::HeaderMap;
use bytes::BytesMut;
use futures::StreamExt;

use super::error::ApiError;
use super::HttpState;
use crate::transport::Hold;

/// The server API's JSON bodies (a published message included).
pub const SERVER_API_MAX: usize = 2 << 20;

/// Reads `body` (at most `max` bytes) within the body deadline.
pub async fn read(
    state: &HttpState,
    headers: &HeaderMap,
    body: Body,
    max: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::TooLarge(format!("the body is over {max} bytes"));
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX)) {
        return Err(too_large());
    }
    let mut hold = Hold::new(state.budget.clone());
    let mut buf = BytesMut::new();
    let mut chunks = body.into_data_stream();
    let reading = async {
        while let Some(chunk) = chunks.next().await {
            let chunk =
                chunk.map_err(|_| ApiError::BadRequest("the body could not be read".into()))?;
            let len = buf.len() + chunk.len();
            if len > max {
                return Err(too_large());
            }
            if !hold.resize(len) {
                state
                    .metrics
                    .memory_budget_refusals_total
                    .with_label_values(&["http_body"])
                    .inc();
                return Err(ApiError::Busy(
                    "the gateway's memory budget is exhausted; try again later".into(),
                ));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(())
    };
    match tokio::time::timeout(state.body_timeout, reading).await {
        Ok(Ok(())) => Ok(buf.freeze()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ApiError::Timeout(format!(
            "the body did not arrive within {} ms",
            state.body_timeout.as_millis()
        ))),
    }
}
