//! `odd admin ...`: the server API from a terminal (docs/http-api.md, "Server API"). The key comes from
//! `ODD_API_KEY` (or `--key`), else from the dev profile's `<data-dir>/dev-secrets.toml`; the gateway's HTTP
//! address from `--http` (default the dev profile's).
//! Plain HTTP: for a gateway behind TLS, run it where the HTTP port is reachable or use curl.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::print::out;

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The gateway's HTTP base URL.
    #[arg(long, env = "ODD_HTTP_URL", default_value = "http://127.0.0.1:7180")]
    pub http: String,
    /// A server-API key (`[server_api] keys` / `ODD_API_KEYS` on the gateway). Unset: the dev profile's key
    /// from <data-dir>/dev-secrets.toml.
    #[arg(long, env = "ODD_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The gateway's data directory (for the dev profile's key).
    #[arg(long, env = "ODD_DATA_DIR", default_value = "data")]
    pub data_dir: std::path::PathBuf,
    /// Print the gateway's JSON answer as it is.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub call: AdminCall,
}

#[derive(Debug, Subcommand)]
pub enum AdminCall {
    /// Publish a text (or JSON with --raw) into a room (--room) or to a user (--user).
    Publish {
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        room: Option<String>,
        #[arg(long)]
        user: Option<String>,
        /// Treat the words as one JSON value instead of text.
        #[arg(long)]
        raw: bool,
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// End every session of a user, telling them why.
    Kick {
        user: String,
        #[arg(long, default_value = "disconnected by the server")]
        reason: String,
    },
    /// Take a user's rights in a room (no joining, reading or sending).
    Ban { room: String, user: String },
    /// Give a banned user `rw` back in a room.
    Unban { room: String, user: String },
    /// Who is present in a room (first page).
    Presence {
        room: String,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Redact a message (its text and payload are erased; history keeps a tombstone).
    Redact { mid: i64 },
    /// Redact every message a user sent in a room (the right to erasure).
    Erase { room: String, user: String },
    /// One message into several rooms at once (--rooms a,b,c).
    Broadcast {
        #[arg(long, value_delimiter = ',', required = true)]
        rooms: Vec<String>,
        /// Treat the words as one JSON value instead of text.
        #[arg(long)]
        raw: bool,
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Change a user's rights in a room: MODE is like +w, -r, =rw.
    Chmod {
        room: String,
        user: String,
        #[arg(allow_hyphen_values = true)]
        mode: String,
    },
    /// Where a user is: their sessions on this node and their rooms.
    User { user: String },
    /// A room: owner, creation, members present, properties.
    Room { room: String },
    /// A room's properties; with KEY=VALUE pairs, set those (values are JSON: true, 3600, "rw").
    Props {
        room: String,
        #[arg(value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Rooms, ascending by id (first page).
    Rooms {
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        after: Option<String>,
    },
}

pub async fn run(args: &AdminArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let base = args.http.trim_end_matches('/');
    let (method_post, path, body) = match &args.call {
        AdminCall::Publish {
            room,
            user,
            raw,
            text,
        } => {
            let data = words_data(text, *raw)?;
            let target = match (room, user) {
                (Some(r), _) => json!({"room": r, "data": data}),
                (None, Some(u)) => json!({"user": u, "data": data}),
                (None, None) => anyhow::bail!("give --room or --user"),
            };
            (true, "/api/server/publish".to_string(), target)
        }
        AdminCall::Kick { user, reason } => (
            true,
            "/api/server/disconnect".to_string(),
            json!({"user": user, "reason": reason}),
        ),
        AdminCall::Ban { room, user } => (
            true,
            "/api/server/ban".to_string(),
            json!({"room": room, "user": user}),
        ),
        AdminCall::Unban { room, user } => (
            true,
            "/api/server/unban".to_string(),
            json!({"room": room, "user": user}),
        ),
        AdminCall::Broadcast { rooms, raw, text } => (
            true,
            "/api/server/broadcast".to_string(),
            json!({"rooms": rooms, "data": words_data(text, *raw)?}),
        ),
        AdminCall::Chmod { room, user, mode } => {
            let (operator, mask) = super::parse_mode(mode)?;
            (
                true,
                "/api/server/chmod".to_string(),
                json!({"room": room, "user": user, "operator": operator, "mask": mask}),
            )
        }
        AdminCall::User { user } => (
            false,
            format!("/api/server/users/{}", seg(user)),
            Value::Null,
        ),
        AdminCall::Room { room } => (
            false,
            format!("/api/server/rooms/{}", seg(room)),
            Value::Null,
        ),
        AdminCall::Props { room, set } => {
            let path = format!("/api/server/rooms/{}/properties", seg(room));
            if set.is_empty() {
                (false, path, Value::Null)
            } else {
                let mut props = serde_json::Map::new();
                for pair in set {
                    let Some((k, v)) = pair.split_once('=') else {
                        anyhow::bail!("{pair:?}: give KEY=VALUE, like offline_notify=true");
                    };
                    // JSON when it parses (true, 3600), else the text as a string (rw).
                    let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.into()));
                    props.insert(k.to_string(), value);
                }
                (true, path, Value::Object(props))
            }
        }
        AdminCall::Redact { mid } => (
            true,
            "/api/server/redact".to_string(),
            json!({ "mid": mid }),
        ),
        AdminCall::Erase { room, user } => (
            true,
            "/api/server/erase".to_string(),
            json!({"room": room, "user": user}),
        ),
        AdminCall::Presence { room, limit } => (
            false,
            format!("/api/server/rooms/{}/presence?limit={limit}", seg(room)),
            Value::Null,
        ),
        AdminCall::Rooms { limit, after } => {
            let after = after
                .as_deref()
                .map(|a| format!("&after={}", seg(a)))
                .unwrap_or_default();
            (
                false,
                format!("/api/server/rooms?limit={limit}{after}"),
                Value::Null,
            )
        }
    };
    let url = format!("{base}{path}");
    let req = if method_post {
        http.post(url).json(&body)
    } else {
        http.get(url)
    };
    let answer = json_answer(req.header("X-API-Key", key(args)?)).await?;
    if args.json {
        out(answer)?;
        return Ok(());
    }
    out(summary(&args.call, &answer))?;
    // A broadcast whose every room failed is a failure, for scripts.
    if let AdminCall::Broadcast { .. } = args.call {
        let results = answer["results"].as_array().cloned().unwrap_or_default();
        if results.iter().all(|r| r["mid"].is_null()) {
            anyhow::bail!("no room took the message");
        }
    }
    Ok(())
}

/// Sends `req` and reads the gateway's JSON answer; a non-2xx fails with the status and the gateway's
/// `error` text.
pub(super) async fn json_answer(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let resp = req.send().await?;
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        anyhow::bail!(
            "{status}: {}",
            answer["error"].as_str().unwrap_or("no error text")
        );
    }
    Ok(answer)
}

/// The message of `publish` and `broadcast`: the words as text, or (with --raw) as one JSON value.
fn words_data(words: &[String], raw: bool) -> anyhow::Result<Value> {
    let joined = words.join(" ");
    Ok(if raw {
        serde_json::from_str(&joined)?
    } else {
        Value::String(joined)
    })
}

/// A path segment: ids are letters, digits and `_-.@:`, but percent-encode anything else anyway.
pub(super) fn seg(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"_-.@:".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One line a person reads.
fn summary(call: &AdminCall, a: &Value) -> String {
    match call {
        AdminCall::Broadcast { .. } => a["results"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|r| match r["mid"].as_i64() {
                        Some(mid) => format!("{}: id {mid}", r["room"].as_str().unwrap_or("?")),
                        None => format!(
                            "{}: failed, {}",
                            r["room"].as_str().unwrap_or("?"),
                            r["error"].as_str().unwrap_or("?")
                        ),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
        AdminCall::Chmod { room, user, .. } => format!(
            "{user} in {room}: rights now {:?}",
            a["mask"].as_str().unwrap_or("?")
        ),
        AdminCall::User { .. } | AdminCall::Room { .. } | AdminCall::Props { .. } => {
            serde_json::to_string_pretty(a).unwrap_or_default()
        }
        AdminCall::Publish { .. } => format!("published, id {}", a["mid"]),
        AdminCall::Kick { user, .. } => {
            format!("{user}: {} session(s) ended here", a["disconnected"])
        }
        AdminCall::Ban { room, user } | AdminCall::Unban { room, user } => format!(
            "{user} in {room}: rights now {:?}",
            a["mask"].as_str().unwrap_or("?")
        ),
        AdminCall::Redact { mid } => format!("message {mid} redacted"),
        AdminCall::Erase { room, user } => {
            format!("{user} in {room}: {} message(s) redacted", a["redacted"])
        }
        AdminCall::Presence { room, .. } => {
            let ids: Vec<&str> = a["users"]
                .as_array()
                .map(|u| u.iter().filter_map(|u| u["id"].as_str()).collect())
                .unwrap_or_default();
            format!("{room}: {} present: {}", a["count"], ids.join(", "))
        }
        AdminCall::Rooms { .. } => a["rooms"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|r| {
                        format!(
                            "{} ({} present)",
                            r["id"].as_str().unwrap_or("?"),
                            r["present"]
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
    }
}

/// `--key` / `ODD_API_KEY`, else the dev profile's.
fn key(args: &AdminArgs) -> anyhow::Result<String> {
    if let Some(k) = args.key.as_ref().filter(|k| !k.is_empty()) {
        return Ok(k.clone());
    }
    match crate::config::dev_secrets::read(&args.data_dir).map_err(anyhow::Error::msg)? {
        Some(s) => Ok(s.api_key),
        None => anyhow::bail!(
            "no API key: pass --key or set ODD_API_KEY (a key of the gateway's [server_api] keys); a dev-profile \
             gateway writes one to {}",
            args.data_dir
                .join(crate::config::dev_secrets::FILE)
                .display()
        ),
    }
}
