//! `[server_api]`: the app backend's own API under `/api/server/...` (docs/http-api.md, "Server API").

use serde::{Deserialize, Serialize};

/// Who may call the server API, and whom its publishes come from.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServerApi {
    /// Keys that may call it, each with a name for logs and metrics (the key itself is never logged). None:
    /// the server API answers 401 to everything.
    pub keys: Vec<ApiKey>,
    /// The sender of a publish that names none.
    pub publisher_id: String,
    pub publisher_nick: String,
    /// Whether `/metrics` needs one of `keys` (`X-API-Key` or `Authorization: Bearer <key>`, as Prometheus
    /// sends it). Unset: open in the dev profile, a key required in prod (metrics name API keys and what
    /// they call).
    pub metrics_need_key: Option<bool>,
    /// Keys that may read `/metrics` and nothing else (a Prometheus credentials file should not be able to
    /// publish, ban or erase). `/metrics` also takes any of `keys`.
    pub metrics_keys: Vec<ApiKey>,
}

impl Default for ServerApi {
    fn default() -> ServerApi {
        ServerApi {
            keys: Vec::new(),
            publisher_id: "system".to_string(),
            publisher_nick: "System".to_string(),
            metrics_need_key: None,
            metrics_keys: Vec::new(),
        }
    }
}

/// Which web pages may call the members' HTTP API and WHIP/WHEP from another origin (`[cors]`, docs/http-api.md):
/// the pages of an app are rarely served by the gateway itself. Those routes take a bearer token that the
/// page's script sends, never a cookie, so answering another origin gives it nothing the browser would add
/// by itself. The server API and the admin console never answer another origin.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Cors {
    /// Origins such as `https://app.example` (scheme, host and port only; compared as browsers send them:
    /// case-insensitively, `:443`/`:80` the same as none), or `*` for any. Empty: no cross-origin answers.
    /// A list (not `*`) also decides which pages may open the WebSocket. As an environment variable: a
    /// comma-separated list (`ODD_CORS__ORIGINS=https://a.example,https://b.example`) or a TOML array.
    #[serde(deserialize_with = "list_or_commas")]
    pub origins: Vec<String>,
}

impl Default for Cors {
    fn default() -> Cors {
        Cors {
            origins: vec!["*".to_string()],
        }
    }
}

/// A list, or one string of comma-separated entries (how an environment variable gives it).
fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        One(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(l) => l,
        Either::One(s) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
    })
}

impl Cors {
    /// `host[:port]` as a URL's authority: a DNS name (letters, digits and `-` in non-empty dot-separated
    /// labels that neither start nor end with `-`), an IPv4 address or a bracketed IPv6 one, and an optional
    /// port 1-65535; the host in lower case. `None` for anything else: user info, a path, an empty or zero
    /// port, text after `]` (`[::1]@evil.example` would be a link to another host). Origins here, and the
    /// `Host` a WHIP `Location` is built on (`http/whip_origin.rs`).
    pub fn authority(s: &str) -> Option<(String, Option<u16>)> {
        if s.is_empty() || s.len() > 255 {
            return None;
        }
        let (host, port) = match s.strip_prefix('[') {
            Some(v6) => {
                let (addr, rest) = v6.split_once(']')?;
                addr.parse::<std::net::Ipv6Addr>().ok()?;
                let port = match rest {
                    "" => None,
                    _ => Some(rest.strip_prefix(':')?),
                };
                (format!("[{addr}]"), port)
            }
            None => {
                let (host, port) = match s.split_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (s, None),
                };
                let label_ok = |l: &str| {
                    !l.is_empty()
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                };
                if !host.split('.').all(label_ok) {
                    return None;
                }
                (host.to_string(), port)
            }
        };
        let port = match port {
            None => None,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse::<u16>().ok().filter(|p| *p > 0)?)
            }
            Some(_) => return None,
        };
        Some((host.to_ascii_lowercase(), port))
    }

    /// An origin as browsers send it in `Origin`: scheme and host lower-cased, the scheme's default port
    /// left out, a port without leading zeros. `Err` says why `origin` cannot be one (the value itself is
    /// not quoted, as in every configuration error).
    pub fn normalize(origin: &str) -> Result<String, &'static str> {
        let Some((scheme, rest)) = origin.split_once("://") else {
            return Err("each entry is `*` or scheme://host[:port]");
        };
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err("an origin's scheme is http or https"),
        };
        let (host, port) = Cors::authority(rest).ok_or(
            "an origin is scheme://host[:port] with a port 1 to 65535: no path, no trailing `/`, no user",
        )?;
        Ok(match port {
            Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        })
    }
}

/// The admin console at `/admin` (`[admin]`, docs/admin.md): pages that call the server API with a key the
/// operator types in. It has no powers of its own; without a server-API key configured it cannot sign in.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Admin {
    /// Serve the console. Unset: on in the dev profile, off in prod.
    pub enabled: Option<bool>,
}

impl Admin {
    /// Whether `/admin` is served under `profile`.
    pub fn enabled_in(&self, profile: super::Profile) -> bool {
        self.enabled.unwrap_or(profile == super::Profile::Dev)
    }
}

/// One API key. `Debug` shows the name only.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub name: String,
    pub key: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl ServerApi {
    /// Reads `ODD_API_KEYS` (`name=key,name=key`): keys come from the environment or the file, never flags,
    /// so they do not show in `ps`.
    pub fn keys_from_env(value: &str) -> Result<Vec<ApiKey>, String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((name, key)) if !name.trim().is_empty() && !key.trim().is_empty() => {
                    Ok(ApiKey {
                        name: name.trim().to_string(),
                        key: key.trim().to_string(),
                    })
                }
                _ => Err("each entry must be name=key".to_string()),
            })
            .collect()
    }

    /// Names must be unique and non-empty (they label metrics), keys at least 16 characters. (The publisher's
    /// identity is checked by the gateway at start, with the same rules as a token's user.)
    pub fn validate(&self) -> Result<(), super::ConfigError> {
        let invalid = |reason: String| super::ConfigError::Invalid {
            key: "server_api",
            reason,
        };
        for m in &self.metrics_keys {
            if self.keys.iter().any(|k| k.key == m.key) {
                return Err(invalid(format!(
                    "metrics key {:?} has the value of a server-API key: it would not be metrics-only",
                    m.name
                )));
            }
        }
        let mut names = std::collections::HashSet::new();
        for k in self.keys.iter().chain(&self.metrics_keys) {
            if k.name.is_empty() || !names.insert(k.name.as_str()) {
                return Err(invalid(format!(
                    "key names must be unique and non-empty ({:?})",
                    k.name
                )));
            }
            if k.key.chars().count() < 16 {
                return Err(invalid(format!(
                    "key {:?} is shorter than 16 characters",
                    k.name
                )));
            }
        }
        Ok(())
    }

    /// The name of the server-API key `presented` matches, comparing every key in constant time.
    pub fn key_name(&self, presented: &str) -> Option<&str> {
        find_key(&self.keys, presented)
    }

    /// The name of the key `presented` matches among those that may read `/metrics`: the metrics-only keys
    /// and the server-API keys.
    pub fn scrape_key_name(&self, presented: &str) -> Option<&str> {
        find_key(&self.metrics_keys, presented).or_else(|| self.key_name(presented))
    }
}

/// Which of `keys` matches `presented`, comparing every key in constant time.
fn find_key<'a>(keys: &'a [ApiKey], presented: &str) -> Option<&'a str> {
    let mut found = None;
    for k in keys {
        if constant_time_eq(k.key.as_bytes(), presented.as_bytes()) {
            found = Some(k.name.as_str());
        }
    }
    found
}

/// Equal bytes, in time that depends on the lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_by_value_and_parse_from_the_environment() {
        let api = ServerApi {
            keys: ServerApi::keys_from_env("backend=s3cret, ops = other ").expect("keys"),
            ..ServerApi::default()
        };
        assert_eq!(api.key_name("s3cret"), Some("backend"));
        assert_eq!(api.key_name("other"), Some("ops"));
        assert_eq!(api.key_name("s3cre"), None);
        assert_eq!(api.key_name(""), None);
        assert!(ServerApi::keys_from_env("nokey").is_err());
        assert!(
            !format!("{:?}", api.keys).contains("s3cret"),
            "Debug hides keys"
        );
    }

    #[test]
    fn origins_are_compared_as_browsers_send_them() {
        for (given, sent) in [
            ("https://App.Example", "https://app.example"),
            ("http://127.0.0.1:80", "http://127.0.0.1"),
            ("HTTPS://app.example:443", "https://app.example"),
            ("http://127.0.0.1:08126", "http://127.0.0.1:8126"),
            ("http://[::1]:3000", "http://[::1]:3000"),
        ] {
            assert_eq!(Cors::normalize(given).as_deref(), Ok(sent), "{given}");
        }
        for bad in [
            "app.example",
            "ftp://app.example",
            "https://app.example/",
            "https://user@app.example",
            "https://app.example:99999",
            "https://app.example:",
            "https://",
            "http://a.example:80:80",
            "https://a.example:0",
            "http://[zz]:1",
            "http://[::1]evil.example",
            "http://a..b",
        ] {
            assert!(Cors::normalize(bad).is_err(), "{bad}");
        }
        let from_env: Cors =
            serde_json::from_value(serde_json::json!({"origins": "https://a.example, http://b:1"}))
                .expect("a comma-separated string");
        assert_eq!(from_env.origins, ["https://a.example", "http://b:1"]);
    }
}
