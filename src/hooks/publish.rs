//! The `publish` hook: before a member's message is stored, the backend accepts it, rejects it (the sender
//! gets `NetGroup.Posting.Failed` with the backend's reason) or replaces its `data` (moderation, spam filters,
//! profanity masks), as Centrifugo's publish proxy does (docs/hooks.md). Opt-in per room pattern; bounded in
//! flight; on a timeout or a failure it refuses the message, or with `fail_open` lets it through.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::metrics::Metrics;
use crate::protocol::args::User;

/// What the backend decided.
#[derive(Debug)]
pub enum Verdict {
    Accept,
    /// Store and deliver this `data` instead.
    Replace(Box<RawValue>),
    /// Not stored: what the sender is told (`refused: <the backend's reason>`, one line, capped; or why the
    /// backend could not be asked).
    Reject(String),
}

/// A message to ask about.
pub struct Asked<'a> {
    pub sender: &'a User,
    /// `Some(room)` for a room post, `None` for a uni-cast to `target`.
    pub room: Option<&'a str>,
    pub target: &'a str,
    pub kind: &'a str,
    pub data: &'a RawValue,
    /// The binary payload's size (the payload itself is not sent; a `replace` drops it).
    pub payload_bytes: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    /// `accept`, `reject` or `replace`.
    result: String,
    reason: Option<String>,
    data: Option<Box<RawValue>>,
}

pub struct PublishHook {
    http: reqwest::Client,
    slots: Arc<tokio::sync::Semaphore>,
    timeout: Duration,
    url: String,
    secret: Vec<u8>,
    fail_open: bool,
    rooms: Vec<String>,
    conversations: bool,
    /// The largest answer read (a replacement up to the largest message, and some room).
    answer_max: usize,
    metrics: Arc<Metrics>,
}

impl PublishHook {
    pub fn new(
        config: &crate::config::Hooks,
        max_message_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Option<PublishHook> {
        let c = &config.publish;
        if c.url.is_empty() {
            return None;
        }
        let timeout = Duration::from_millis(c.timeout_ms.max(1));
        let http = match super::http::client(timeout, config.ca_file.as_deref()) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "publish hook disabled");
                return None;
            }
        };
        Some(PublishHook {
            http,
            slots: Arc::new(tokio::sync::Semaphore::new(c.max_concurrent.max(1))),
            timeout,
            url: c.url.clone(),
            secret: config.secret.as_bytes().to_vec(),
            fail_open: c.fail_open,
            rooms: c.rooms.clone(),
            conversations: c.conversations,
            // A replacement travels in one command (at most 65,535 bytes of arguments): twice that is plenty.
            answer_max: max_message_bytes.clamp(1, 128 * 1024),
            metrics,
        })
    }

    /// Whether a message to `room` (or, with `None`, a uni-cast) goes to the backend first.
    pub fn applies(&self, room: Option<&str>) -> bool {
        match room {
            None => self.conversations,
            Some(rid) => self.rooms.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => rid.starts_with(prefix),
                None => p == rid,
            }),
        }
    }

    /// Asks the backend; a backend that cannot answer counts as `fail_open` says.
    pub async fn ask(&self, m: &Asked<'_>) -> Verdict {
        let started = std::time::Instant::now();
        let (outcome, verdict) = match self.call(m).await {
            Ok(v) => (
                match &v {
                    Verdict::Accept => "accepted",
                    Verdict::Replace(_) => "replaced",
                    Verdict::Reject(_) => "refused",
                },
                v,
            ),
            Err((public, detail)) => {
                tracing::warn!(reason = %detail, fail_open = self.fail_open, "publish hook unavailable");
                let v = if self.fail_open {
                    Verdict::Accept
                } else {
                    Verdict::Reject(format!(
                        "not sent: the moderation backend is unavailable ({public}); try again later"
                    ))
                };
                ("unavailable", v)
            }
        };
        self.metrics
            .hook_duration_seconds
            .with_label_values(&["publish"])
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .hook_calls_total
            .with_label_values(&["publish", outcome])
            .inc();
        verdict
    }

    /// One request: the verdict, or (what the sender may be told, what the operator's log says).
    async fn call(&self, m: &Asked<'_>) -> Result<Verdict, (&'static str, String)> {
        let _slot = match tokio::time::timeout(self.timeout, self.slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            _ => return Err(("too many checks in flight", "no free slot".into())),
        };
        // `data` goes byte for byte as the sender wrote it (the backend judges what will be stored).
        #[derive(serde::Serialize)]
        struct Request<'a> {
            user: &'a User,
            room: Option<&'a str>,
            to: Option<&'a str>,
            #[serde(rename = "type")]
            kind: &'a str,
            data: &'a RawValue,
            payload_bytes: usize,
        }
        let body = serde_json::to_string(&Request {
            user: m.sender,
            room: m.room,
            to: if m.room.is_none() {
                Some(m.target)
            } else {
                None
            },
            kind: m.kind,
            data: m.data,
            payload_bytes: m.payload_bytes,
        })
        .map_err(|e| ("unreadable answer", format!("request: {e}")))?;
        let resp = super::post_signed(&self.http, &self.url, &self.secret, body)
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    ("timed out", "timed out".to_string())
                } else {
                    ("unreachable", format!("unreachable: {e}"))
                }
            })?;
        if !resp.status().is_success() {
            return Err(("answered with an error", super::http::refusal(&resp)));
        }
        let bytes = super::http::read_capped(resp, self.answer_max)
            .await
            .map_err(|e| ("unreadable answer", e))?;
        let answer: Answer = serde_json::from_slice(&bytes)
            .map_err(|e| ("unreadable answer", format!("unreadable answer: {e}")))?;
        match (answer.result.as_str(), answer.data) {
            ("accept", _) => Ok(Verdict::Accept),
            ("replace", Some(data)) => {
                // The same accept-time rules as a client's own data (depth, valid Unicode).
                crate::protocol::json_check::check_json(data.get().as_bytes())
                    .map_err(|e| ("unreadable answer", format!("replacement refused: {e}")))?;
                Ok(Verdict::Replace(data))
            }
            ("reject", _) => {
                let reason = answer.reason.unwrap_or_else(|| "no reason given".into());
                Ok(Verdict::Reject(format!(
                    "refused: {}",
                    crate::transport::link::one_line(&reason, 200)
                )))
            }
            (other, _) => Err((
                "unreadable answer",
                format!("result {other:?} (expected accept, reject, or replace with data)"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_pick_rooms_and_conversations_are_opt_in() {
        let mut config = crate::config::Hooks::default();
        config.publish.url = "http://127.0.0.1:9/".into();
        config.publish.rooms = vec!["support-*".into(), "lobby".into()];
        let hook = PublishHook::new(&config, 1 << 20, Arc::new(Metrics::new())).expect("on");
        assert!(hook.applies(Some("support-42")));
        assert!(hook.applies(Some("lobby")));
        assert!(!hook.applies(Some("lobby2")));
        assert!(!hook.applies(None));
        config.publish.rooms = vec!["*".into()];
        config.publish.conversations = true;
        let all = PublishHook::new(&config, 1 << 20, Arc::new(Metrics::new())).expect("on");
        assert!(all.applies(Some("anything")) && all.applies(None));
    }
}
