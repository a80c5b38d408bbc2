//! The `connect` hook: the backend accepts a token and names the user (docs/hooks.md).

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::auth::{validate_named_user, AuthError, Principal};
use crate::protocol::args::User;
use crate::rooms::RoomClaims;

/// What the backend said, or that it could not be asked.
#[derive(Debug)]
pub enum ConnectOutcome {
    /// Accepted, and for how long the backend lets the gateway reuse the answer for this token (`cache_s`).
    Accepted(Principal, Option<Duration>),
    Refused(AuthError),
    /// Unreachable, timed out, a non-2xx answer or one that is not the documented JSON: what the client may
    /// be told (a fixed category), and the details for the operator's log (URLs, statuses, parse errors).
    Unavailable(&'static str, String),
}

fn unavailable(public: &'static str, detail: impl Into<String>) -> ConnectOutcome {
    ConnectOutcome::Unavailable(public, detail.into())
}

#[derive(Clone)]
pub struct ConnectHook {
    http: reqwest::Client,
    /// Bounds the checks in flight (`max_concurrent`).
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    timeout: Duration,
    url: String,
    secret: Vec<u8>,
    pub fail_open: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    /// Accepted: who the client is, and the rooms it may enter (absent: any room its rights allow).
    user: Option<User>,
    rooms: Option<Vec<String>>,
    /// Refused: why (told to the client).
    reject: Option<String>,
    /// Accepted: the gateway may reuse this answer for the same token for this many seconds (at most 3,600)
    /// instead of asking again (HTTP requests ask for every request otherwise).
    cache_s: Option<u64>,
}

impl ConnectHook {
    pub fn new(config: &crate::config::Hooks) -> Option<ConnectHook> {
        if config.connect.url.is_empty() {
            return None;
        }
        let http = match super::http::client(
            Duration::from_millis(config.connect.timeout_ms.max(1)),
            config.ca_file.as_deref(),
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "connect hook disabled");
                return None;
            }
        };
        let timeout = Duration::from_millis(config.connect.timeout_ms.max(1));
        Some(ConnectHook {
            http,
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(
                config.connect.max_concurrent.max(1),
            )),
            timeout,
            url: config.connect.url.clone(),
            secret: config.secret.as_bytes().to_vec(),
            fail_open: config.connect.fail_open,
        })
    }

    /// Asks the backend about `token` from a client at `peer` over `transport`.
    pub async fn ask(&self, token: &str, transport: &str, peer: &str) -> ConnectOutcome {
        let _slot = match tokio::time::timeout(self.timeout, self.slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            _ => return unavailable("too many connect checks in flight", "no free slot"),
        };
        let body = json!({ "token": token, "transport": transport, "peer": peer }).to_string();
        let sent = super::post_signed(&self.http, &self.url, &self.secret, body).await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return unavailable("timed out", "timed out"),
            Err(e) => return unavailable("unreachable", format!("unreachable: {e}")),
        };
        if !resp.status().is_success() {
            return unavailable("answered with an error", super::http::refusal(&resp));
        }
        let body = match super::http::read_capped(resp, super::http::CONNECT_ANSWER_MAX).await {
            Ok(b) => b,
            Err(e) if e.starts_with("answer longer") => {
                return unavailable("answer longer than the limit", e)
            }
            Err(e) => return unavailable("unreachable", e),
        };
        let answer: Answer = match serde_json::from_slice(&body) {
            Ok(a) => a,
            Err(e) => return unavailable("unreadable answer", format!("unreadable answer: {e}")),
        };
        match (answer.user, answer.reject) {
            // The backend's reason goes to the client: at most 200 bytes, nothing that could steer a terminal
            // or hide text.
            (_, Some(reason)) => {
                let reason = crate::transport::link::one_line(&reason, 200);
                ConnectOutcome::Refused(AuthError::Invalid(format!(
                    "refused by the backend: {reason}"
                )))
            }
            (Some(user), None) => match validate_named_user(&user) {
                Ok(()) => ConnectOutcome::Accepted(
                    Principal {
                        user,
                        rooms: answer
                            .rooms
                            .map(RoomClaims::only)
                            .unwrap_or_else(RoomClaims::any),
                        expires: None,
                    },
                    answer
                        .cache_s
                        .filter(|s| *s > 0)
                        .map(|s| Duration::from_secs(s.min(3_600))),
                ),
                Err(e) => unavailable("named an invalid user", format!("the user it named: {e}")),
            },
            (None, None) => unavailable(
                "unreadable answer",
                "answer has neither `user` nor `reject`",
            ),
        }
    }
}
