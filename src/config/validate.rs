//! `Config::validate`: settings that would only fail later (at the first connection, or in a cluster) are
//! refused at start, with the key and the reason.

use super::{Config, ConfigError};

impl Config {
    /// Catches settings that would only fail later, at the first connection.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(reason) = self
            .cors
            .origins
            .iter()
            .filter(|o| *o != "*")
            .find_map(|o| super::Cors::normalize(o).err())
        {
            return Err(ConfigError::Invalid {
                key: "cors.origins",
                reason: reason.into(),
            });
        }
        let l = &self.limits;
        if l.max_frame_bytes < 64 {
            return Err(ConfigError::Invalid {
                key: "limits.max_frame_bytes",
                reason: "must be at least 64".into(),
            });
        }
        if l.max_message_bytes < l.max_frame_bytes.min(65_536) {
            return Err(ConfigError::Invalid {
                key: "limits.max_message_bytes",
                reason: "must be at least min(max_frame_bytes, 65536)".into(),
            });
        }
        if l.max_pipes == 0 || l.max_pipes > u16::MAX as usize {
            return Err(ConfigError::Invalid {
                key: "limits.max_pipes",
                reason: "must be between 1 and 65535".into(),
            });
        }
        if l.outbound_queue == 0 {
            return Err(ConfigError::Invalid {
                key: "limits.outbound_queue",
                reason: "must be at least 1".into(),
            });
        }
        if let Some(a) = self.listen.rtc.addr() {
            if a.ip().is_unspecified() && self.rtc.public_ip.is_none() {
                return Err(ConfigError::Invalid {
                    key: "rtc.public_ip",
                    reason: format!(
                        "listen.rtc binds every interface ({a}): name the address browsers reach it at"
                    ),
                });
            }
        }
        if !crate::sfu::StreamName::valid_app(&self.rtc.app) {
            return Err(ConfigError::Invalid {
                key: "rtc.app",
                reason: "1 to 128 characters, no `@`".into(),
            });
        }
        self.server_api.validate()?;
        for (key, batch) in [
            ("hooks.message.batch", self.hooks.message.batch),
            ("hooks.offline.batch", self.hooks.offline.batch),
            ("hooks.events.batch", self.hooks.events.batch),
        ] {
            if !(1..=1000).contains(&batch) {
                return Err(ConfigError::Invalid {
                    key,
                    reason: format!("{batch}: between 1 and 1000 per request"),
                });
            }
        }
        if let Some(p) = self
            .hooks
            .publish
            .rooms
            .iter()
            .find(|p| p.is_empty() || p.trim_end_matches('*').contains('*'))
        {
            return Err(ConfigError::Invalid {
                key: "hooks.publish.rooms",
                reason: format!("{p:?}: a room id, or a prefix ending in one `*`"),
            });
        }
        for (key, url) in [
            ("hooks.connect.url", &self.hooks.connect.url),
            ("hooks.publish.url", &self.hooks.publish.url),
            ("hooks.message.url", &self.hooks.message.url),
            ("hooks.offline.url", &self.hooks.offline.url),
            ("hooks.events.url", &self.hooks.events.url),
        ] {
            if url.is_empty() {
                continue;
            }
            let parsed = reqwest::Url::parse(url).map_err(|e| ConfigError::Invalid {
                key,
                reason: format!("not a URL: {e}"),
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be an http:// or https:// URL with a host".into(),
                });
            }
        }
        let any_hook = [
            &self.hooks.connect.url,
            &self.hooks.publish.url,
            &self.hooks.message.url,
            &self.hooks.offline.url,
            &self.hooks.events.url,
        ]
        .iter()
        .any(|u| !u.is_empty());
        if any_hook && self.hooks.secret.trim().chars().count() < MIN_SECRET_CHARS {
            return Err(ConfigError::Invalid {
                key: "hooks.secret",
                reason: format!(
                    "every hook request is signed with it (X-Odd-Signature): set at least \
                     {MIN_SECRET_CHARS} characters (better: the ODD_HOOKS_SECRET environment variable)"
                ),
            });
        }
        if let Some(secret) = &self.auth.jwt_secret {
            if secret.trim().len() < MIN_JWT_SECRET_BYTES {
                return Err(ConfigError::Invalid {
                    key: "auth.jwt_secret",
                    reason: format!(
                        "an HS256 secret must be at least {MIN_JWT_SECRET_BYTES} bytes (RFC 7518 3.2: as long \
                         as the hash); e.g. `openssl rand -hex 32`"
                    ),
                });
            }
        }
        if let Some(ca) = &self.hooks.ca_file {
            super::hooks::ca_certificates(ca).map_err(|reason| ConfigError::Invalid {
                key: "hooks.ca_file",
                reason,
            })?;
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid {
                key: "tls",
                reason: "set both tls.cert and tls.key, or neither".into(),
            });
        }
        if crate::protocol::args::Mask::from_letters(&self.rooms.default_rights).is_none() {
            return Err(ConfigError::Invalid {
                key: "rooms.default_rights",
                reason: "only the letters r, w, x".into(),
            });
        }
        if self.rooms.history_max == 0
            || self.rooms.history_default == 0
            || self.rooms.history_default > self.rooms.history_max
        {
            return Err(ConfigError::Invalid {
                key: "rooms.history_default",
                reason: "must be between 1 and rooms.history_max".into(),
            });
        }
        if self.history.prune_interval_ms == 0 || self.history.prune_batch == 0 {
            return Err(ConfigError::Invalid {
                key: "history.prune_batch",
                reason: "history.prune_interval_ms and history.prune_batch must be at least 1"
                    .into(),
            });
        }
        let c = &self.cluster;
        if !c.nats_url.is_empty() {
            if c.subject_prefix.is_empty()
                || !c
                    .subject_prefix
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' || ch == '.')
                || c.subject_prefix.starts_with('.')
                || c.subject_prefix.ends_with('.')
            {
                return Err(ConfigError::Invalid {
                    key: "cluster.subject_prefix",
                    reason: "letters, digits, `_`, `-` and inner dots".into(),
                });
            }
            if self.database_url().starts_with("sqlite:") {
                return Err(ConfigError::Invalid {
                    key: "cluster.nats_url",
                    reason:
                        "a cluster shares one PostgreSQL database (database.url = postgres://...); \
                             each node's own SQLite file would split the history"
                            .into(),
                });
            }
            if c.heartbeat_ms == 0 || c.node_ttl_ms < 2 * c.heartbeat_ms {
                return Err(ConfigError::Invalid {
                    key: "cluster.node_ttl_ms",
                    reason: "heartbeat_ms must be at least 1 and node_ttl_ms at least twice it"
                        .into(),
                });
            }
        }
        for t in &self.auth.tokens {
            if t.token.is_empty() || t.id.is_empty() {
                return Err(ConfigError::Invalid {
                    key: "auth.tokens",
                    reason: "every entry needs a non-empty token and id".into(),
                });
            }
        }
        Ok(())
    }
}

/// The shortest hook secret accepted (the same floor as server-API keys).
pub const MIN_SECRET_CHARS: usize = 16;
/// The shortest HS256 secret accepted: as long as SHA-256's output (RFC 7518, section 3.2).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
