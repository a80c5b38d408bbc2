//! `odd token`: a token for trying the gateway and for scripts, signed as an app's backend would sign it.

use std::path::PathBuf;

use clap::Args;

use super::print::out;
use crate::auth::sign::{parse_ttl, sign_hs256, TokenClaims};

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user id (`sub`).
    #[arg(long)]
    pub user: String,
    /// The display name (`nick`).
    #[arg(long)]
    pub nick: Option<String>,
    /// Limit the token to these rooms (comma-separated ids); unset: any room its rights allow.
    #[arg(long, value_delimiter = ',')]
    pub rooms: Option<Vec<String>>,
    /// Lifetime: 90s, 15m, 2h, 7d.
    #[arg(long, default_value = "24h")]
    pub ttl: String,
    /// `iss`, when the gateway checks it (`auth.jwt_issuer`).
    #[arg(long)]
    pub issuer: Option<String>,
    /// `aud`, when the gateway checks it (`auth.jwt_audience`).
    #[arg(long)]
    pub audience: Option<String>,
    /// The gateway's data directory, where the dev profile keeps its secrets.
    #[arg(long, env = "ODD_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
}

/// The HS256 secret: `ODD_JWT_SECRET`, else the dev profile's.
fn secret(data_dir: &std::path::Path) -> anyhow::Result<String> {
    if let Ok(s) = std::env::var("ODD_JWT_SECRET") {
        if !s.is_empty() {
            return Ok(s);
        }
    }
    match crate::config::dev_secrets::read(data_dir).map_err(anyhow::Error::msg)? {
        Some(s) => Ok(s.jwt_secret),
        None => anyhow::bail!(
            "no signing secret: set ODD_JWT_SECRET to the gateway's auth.jwt_secret, or start the gateway in \
             the dev profile once (it writes {}) and run this where --data-dir points at its data directory",
            data_dir.join(crate::config::dev_secrets::FILE).display()
        ),
    }
}

pub fn run(args: &TokenArgs) -> anyhow::Result<()> {
    let claims = TokenClaims {
        user: args.user.clone(),
        nick: args.nick.clone(),
        // `--rooms "a, b"`: ids without the spaces around them; an empty list grants nothing, so refuse it.
        rooms: match &args.rooms {
            None => None,
            Some(list) => {
                let ids: Vec<String> = list
                    .iter()
                    .map(|r| r.trim().to_string())
                    .filter(|r| !r.is_empty())
                    .collect();
                if ids.is_empty() {
                    anyhow::bail!("--rooms names no room: leave it out for a token of any room");
                }
                Some(ids)
            }
        },
        ttl: parse_ttl(&args.ttl).map_err(anyhow::Error::msg)?,
        issuer: args.issuer.clone(),
        audience: args.audience.clone(),
    };
    let token = sign_hs256(
        &secret(&args.data_dir)?,
        &claims,
        u64::from(crate::clock::now_secs()),
    )
    .map_err(anyhow::Error::msg)?;
    out(token)?;
    Ok(())
}
