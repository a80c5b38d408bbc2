//! `[hooks]`: calls from the gateway to the app's backend (docs/hooks.md).

use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Hooks {
    /// HMAC-SHA256 key for the `X-Odd-Signature` header of every hook request (prefer `ODD_HOOKS_SECRET`).
    pub secret: String,
    pub connect: ConnectHook,
    /// The synchronous `publish` hook: before a message is stored, the backend accepts, rejects or rewrites it.
    pub publish: PublishHook,
    pub message: MessageHook,
    /// The asynchronous `offline` hook (same settings as `message`).
    pub offline: MessageHook,
    /// The asynchronous `events` hook: connects, disconnects, joins and leaves, in batches, at least once, in
    /// order (same settings as `message`).
    pub events: MessageHook,
    /// PEM certificates to trust for `https://` hook URLs besides the system's roots (a private CA).
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field(
                "secret",
                &if self.secret.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("connect", &self.connect)
            .field("publish", &self.publish)
            .field("message", &self.message)
            .field("offline", &self.offline)
            .field("events", &self.events)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The synchronous `connect` hook: the backend accepts a token and names the user.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectHook {
    /// `http://...` or `https://...`; empty: off (tokens are checked by `[auth]`).
    pub url: String,
    pub timeout_ms: u64,
    /// When the backend cannot be asked (unreachable, timeout, a 5xx, an unreadable answer): false (default)
    /// refuses the connect; true falls back to `[auth]`.
    pub fail_open: bool,
    /// The most connect checks in flight at once (a reconnect storm must not flood the backend); a connect
    /// that finds none free within `timeout_ms` counts as the backend unavailable.
    pub max_concurrent: usize,
}

impl Default for ConnectHook {
    fn default() -> ConnectHook {
        ConnectHook {
            url: String::new(),
            timeout_ms: 2000,
            fail_open: false,
            max_concurrent: 64,
        }
    }
}

/// The synchronous `publish` hook (docs/hooks.md): every member's message to a matching room (and, with
/// `conversations`, every uni-cast) goes to the backend before it is stored; the answer accepts it, rejects it
/// with a reason the sender is told, or replaces its `data`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PublishHook {
    /// `http://...` or `https://...`; empty: off.
    pub url: String,
    pub timeout_ms: u64,
    /// When the backend cannot be asked (unreachable, timeout, a non-2xx, an unreadable answer): false
    /// (default) refuses the message; true stores it as sent.
    pub fail_open: bool,
    /// The most checks in flight at once, all connections together; a message that finds none free within
    /// `timeout_ms` counts as the backend unavailable.
    pub max_concurrent: usize,
    /// Room ids the hook applies to: exact ids, or patterns ending in `*` (`support-*`); `["*"]` is every room.
    pub rooms: Vec<String>,
    /// Whether uni-casts (`cast: uni`) go to the hook too.
    pub conversations: bool,
}

impl Default for PublishHook {
    fn default() -> PublishHook {
        PublishHook {
            url: String::new(),
            timeout_ms: 1000,
            fail_open: false,
            max_concurrent: 256,
            rooms: vec!["*".to_string()],
            conversations: false,
        }
    }
}

/// The asynchronous `message` hook: every committed message, in id order, at least once.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MessageHook {
    /// `http://...`; empty: off.
    pub url: String,
    pub timeout_ms: u64,
    /// The most messages (for `events`: events) in one request, 1 to 1000.
    pub batch: u32,
}

impl Default for MessageHook {
    fn default() -> MessageHook {
        MessageHook {
            url: String::new(),
            timeout_ms: 5000,
            batch: 100,
        }
    }
}

/// The certificates of `[hooks] ca_file` (checked by `--check-config` and at start-up, used by the hooks).
pub fn ca_certificates(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|_| format!("{}: not a PEM certificate bundle", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}
