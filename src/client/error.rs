//! Client failures, worded for someone at a terminal.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("bad url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot reach {target}: {error}")]
    Connect {
        target: String,
        error: std::io::Error,
    },
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("the server answered {code}: {description}")]
    Status { code: String, description: String },
    #[error("connection closed: {0}")]
    Closed(String),
    #[error("no answer within the timeout")]
    Timeout,
    #[error("cannot encode the request: {0}")]
    Encode(String),
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}
