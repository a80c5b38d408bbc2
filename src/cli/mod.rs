//! The `odd` command: try the gateway from a terminal, script it, and measure it.

mod admin;
mod bench;
mod chat;
mod history;
mod marks;
pub mod print;
mod token;

use print::out;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::client::{Client, ClientOptions, Endpoint};
use crate::transport::TransportKind;

#[derive(Debug, Parser)]
#[command(
    name = "odd",
    version,
    about = "Odd IM client: chat, send, history, chmod, bench"
)]
pub struct Cli {
    /// Gateway URL: tcp://, tls://, quic://, ws:// or wss://host:port[/im].
    #[arg(
        long,
        short,
        global = true,
        env = "ODD_URL",
        default_value = "tcp://127.0.0.1:7100"
    )]
    pub url: String,
    /// Token for `connect` (empty: a guest, where the gateway allows it).
    #[arg(
        long,
        short,
        global = true,
        env = "ODD_TOKEN",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub token: String,
    /// PEM certificate to trust for tls://, quic:// and wss:// (default: the dev certificate,
    /// $ODD_DATA_DIR/certs/dev-cert.pem or data/certs/dev-cert.pem, if present).
    #[arg(long, global = true, env = "ODD_CA")]
    pub ca: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Join a room and chat: each line on stdin is a message; incoming messages are printed.
    Chat {
        #[arg(long, short)]
        room: String,
    },
    /// Send one message to a room (--room) or a user (--to).
    Send {
        #[arg(long, short, conflicts_with = "to", required_unless_present = "to")]
        room: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// The text (words are joined with spaces).
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Print a room's history (--room) or a conversation (--with); with --query, search them (or, with neither,
    /// everything you may read), newest first.
    History {
        #[arg(long, short, conflicts_with = "with", required_unless_present_any = ["with", "query"])]
        room: Option<String>,
        #[arg(long)]
        with: Option<String>,
        /// Messages per page (default: the gateway's `rooms.history_default`).
        #[arg(long, short)]
        limit: Option<u32>,
        /// Only messages older than this id (the `before` cursor of a previous page).
        #[arg(long)]
        before: Option<i64>,
        /// Full-text search: words, "phrases", prefix* (docs/protocol.md, "Search").
        #[arg(long, short)]
        query: Option<String>,
        /// Print the page as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Redact a message (yours, or any in a room where you hold x): its text and payload are erased.
    Redact { mid: i64 },
    /// Change a user's rights in a room: MODE is like +w, -r, =rw.
    Chmod {
        #[arg(long, short)]
        room: String,
        #[arg(long)]
        user: String,
        #[arg(allow_hyphen_values = true)]
        mode: String,
    },
    /// Mark a room (--room) or a conversation (--with) read up to --mid, or without --mid say where you are.
    Read {
        #[arg(long, short, conflicts_with = "with", required_unless_present = "with")]
        room: Option<String>,
        #[arg(long)]
        with: Option<String>,
        #[arg(long)]
        mid: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Every room and conversation you have a read position in, with its unread count (over HTTP).
    Unread {
        /// The gateway's HTTP base URL.
        #[arg(long, env = "ODD_HTTP_URL", default_value = "http://127.0.0.1:7180")]
        http: String,
        #[arg(long)]
        json: bool,
    },
    /// Read or set properties (`temporary`, `private`, `room:<rid>:offline_notify`, ...; docs/protocol.md).
    Prop {
        #[command(subcommand)]
        call: marks::PropCall,
    },
    /// Measure the gateway: see benches/README.md.
    Bench(bench::BenchArgs),
    /// Call the server API (publish, kick, ban, unban, presence, rooms) with an API key.
    Admin(admin::AdminArgs),
    /// Print a token (an HS256 JWT) the gateway accepts: `export ODD_TOKEN=$(odd token --user alice)`. Signs
    /// with `ODD_JWT_SECRET`, else with the dev profile's secret in <data-dir>/dev-secrets.toml.
    Token(token::TokenArgs),
}

pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Chat { ref room } => chat::run(&cli, room).await,
        Command::Token(ref args) => token::run(args),
        Command::Send {
            ref room,
            ref to,
            ref text,
        } => {
            let (client, pipe) = open(&cli).await?;
            // Whatever happens, the client says goodbye before the program ends: an error must not leave a
            // session parked (and its user present) for the grace period.
            let sent = async {
                let (cast, id) = match (room, to) {
                    (Some(r), _) => {
                        client.join(pipe, r).await?;
                        ("multi", r.as_str())
                    }
                    (None, Some(u)) => ("uni", u.as_str()),
                    (None, None) => anyhow::bail!("give --room or --to"),
                };
                Ok(client
                    .send(pipe, cast, id, "text", json!(text.join(" ")))
                    .await?)
            }
            .await;
            client.close().await;
            out(format!("sent, id {}", sent?.info()["mid"]))?;
            Ok(())
        }
        Command::History {
            ref room,
            ref with,
            limit,
            before,
            ref query,
            json,
        } => {
            let page = history::Page {
                room: room.as_deref(),
                with: with.as_deref(),
                query: query.as_deref(),
                limit,
                before,
            };
            history::run(&cli, page, json).await
        }
        Command::Redact { mid } => {
            let (client, pipe) = open(&cli).await?;
            let answer = client.redact(pipe, mid).await.map_err(anyhow::Error::from);
            client.close().await;
            out(format!("redacted {}", answer?.info()["mid"]))?;
            Ok(())
        }
        Command::Chmod {
            ref room,
            ref user,
            ref mode,
        } => {
            let (operator, mask) = parse_mode(mode)?;
            let (client, pipe) = open(&cli).await?;
            let r = client.chmod(pipe, room, user, operator, mask).await;
            client.close().await;
            let r = r?;
            out(format!(
                "{user} in {room}: {}",
                r.info()["mask"].as_str().unwrap_or("?")
            ))?;
            Ok(())
        }
        Command::Read {
            ref room,
            ref with,
            mid,
            json,
        } => marks::read(&cli, room.as_deref(), with.as_deref(), mid, json).await,
        Command::Unread { ref http, json } => marks::unread(&cli, http, json).await,
        Command::Prop { ref call } => marks::prop(&cli, call).await,
        Command::Bench(ref args) => bench::run(&cli, args).await,
        Command::Admin(ref args) => admin::run(args).await,
    }
}

/// `+w` -> ("+", "w").
fn parse_mode(mode: &str) -> anyhow::Result<(&str, &str)> {
    let (op, mask) = mode.split_at(mode.chars().next().map_or(0, char::len_utf8));
    if !matches!(op, "+" | "-" | "=") || !mask.chars().all(|c| "rwx".contains(c)) {
        anyhow::bail!(
            "mode {mode:?} must be +, - or = followed by letters from r, w, x (e.g. -w, =rw)"
        );
    }
    Ok((op, mask))
}

/// Client options: the CA given, or the dev certificate when talking TLS/QUIC to a local dev gateway.
pub(crate) fn options(cli: &Cli) -> anyhow::Result<ClientOptions> {
    options_for(cli, &cli.url)
}

/// Client options for `url` (one of several, for a bench spread over cluster nodes).
pub(crate) fn options_for(cli: &Cli, url: &str) -> anyhow::Result<ClientOptions> {
    let endpoint: Endpoint = url.parse()?;
    let needs_tls =
        matches!(endpoint.kind, TransportKind::Tls | TransportKind::Quic) || endpoint.secure;
    let ca = match &cli.ca {
        Some(p) => Some(p.clone()),
        None if needs_tls => {
            let data = std::env::var_os("ODD_DATA_DIR")
                .map_or_else(|| PathBuf::from("data"), PathBuf::from);
            Some(data.join("certs").join("dev-cert.pem")).filter(|p| p.exists())
        }
        None => None,
    };
    match ca {
        Some(p) => ClientOptions::trusting(&p)
            .map_err(|e| anyhow::anyhow!("trusting {}: {e}", p.display())),
        None if needs_tls => {
            anyhow::bail!(
                "{url} needs a certificate to trust: pass --ca <pem> (no dev certificate under $ODD_DATA_DIR or data/)"
            )
        }
        None => Ok(ClientOptions::default()),
    }
}

/// Connects and creates a messaging pipe.
async fn open(cli: &Cli) -> anyhow::Result<(Client, u16)> {
    let options = options(cli)?;
    let client = Client::connect_with(&cli.url, &cli.token, &options).await?;
    match client.create("messaging").await {
        Ok(pipe) => Ok((client, pipe)),
        Err(e) => {
            client.close().await;
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(parse_mode("-w").ok(), Some(("-", "w")));
        assert_eq!(parse_mode("=").ok(), Some(("=", "")));
        assert!(parse_mode("w").is_err());
        assert!(parse_mode("+q").is_err());
    }
}
