//! `odd read`, `odd unread` and `odd prop`: read positions and properties from a terminal, with the caller's
//! token, as any client would set them (in-band `read`, `getProperty`, `setProperty`; the unread list over HTTP).

use clap::Subcommand;
use serde_json::{json, Value};

use super::print::out;
use super::{open, Cli};

#[derive(Debug, Subcommand)]
pub enum PropCall {
    /// Print properties: pipe keys (`temporary`, `private`) or room keys (`room:<rid>:offline_notify`).
    Get {
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Set a property; VALUE is JSON (`true`, `3600`, `"rw"`) or else taken as text.
    Set {
        key: String,
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
}

/// `odd read --room R | --with U [--mid M]`: marks the thread read up to `mid`, or (without) says where you are.
pub async fn read(
    cli: &Cli,
    room: Option<&str>,
    with: Option<&str>,
    mid: Option<i64>,
    json_out: bool,
) -> anyhow::Result<()> {
    let mut args = match (room, with) {
        (Some(r), _) => json!({"name": "read", "rid": r}),
        (None, Some(u)) => json!({"name": "read", "uid": u}),
        (None, None) => anyhow::bail!("give --room or --with"),
    };
    if let Some(m) = mid {
        args["mid"] = json!(m);
    }
    let (client, pipe) = open(cli).await?;
    let answer = client.call(pipe, args).await.and_then(|r| r.ok());
    client.close().await;
    let info = answer?.info().clone();
    if json_out {
        return Ok(out(info)?);
    }
    let more = if info["more"] == true { "+" } else { "" };
    out(format!(
        "read up to {}, {}{more} unread",
        info["mid"], info["unread"]
    ))?;
    Ok(())
}

/// `odd unread`: every thread with its unread count (`GET /api/users/{uid}/unread`, with the same token).
pub async fn unread(cli: &Cli, http: &str, json_out: bool) -> anyhow::Result<()> {
    // A guest is a new user on every connection and every request: it has no read positions to list.
    if cli.token.is_empty() {
        anyhow::bail!(
            "a guest has no read positions (each connection is a new guest): give a token, \
             e.g. ODD_TOKEN=$(odd token --user alice)"
        );
    }
    // Who the token is: the connect answer says.
    let options = super::options(cli)?;
    let client = crate::client::Client::connect_with(&cli.url, &cli.token, &options).await?;
    let uid = client.user.id.clone();
    client.close().await;
    let url = format!(
        "{}/api/users/{}/unread",
        http.trim_end_matches('/'),
        super::admin::seg(&uid)
    );
    let mut req = reqwest::Client::new().get(url);
    if !cli.token.is_empty() {
        req = req.bearer_auth(&cli.token);
    }
    let answer = super::admin::json_answer(req).await?;
    if json_out {
        return Ok(out(answer)?);
    }
    let threads = answer["threads"].as_array().cloned().unwrap_or_default();
    if threads.is_empty() {
        out(format!("{uid}: nothing unread"))?;
    }
    for t in threads {
        let name = t["room"]
            .as_str()
            .map(str::to_string)
            .or_else(|| t["user"].as_str().map(|u| format!("@{u}")))
            .unwrap_or_default();
        let more = if t["more"] == true { "+" } else { "" };
        out(format!(
            "{}: {}{more} unread (read up to {})",
            super::print::safe(&name),
            t["unread"],
            t["mid"]
        ))?;
    }
    Ok(())
}

/// `odd prop get|set` on the connection's messaging pipe (room keys work from any pipe).
pub async fn prop(cli: &Cli, call: &PropCall) -> anyhow::Result<()> {
    let (client, pipe) = open(cli).await?;
    let args = match call {
        PropCall::Get { keys } => json!({"name": "getProperty", "keys": keys}),
        PropCall::Set { key, value } => {
            let v = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.clone()));
            json!({"name": "setProperty", "info": {key.as_str(): v}})
        }
    };
    let answer = client.call(pipe, args).await.and_then(|r| r.ok());
    client.close().await;
    out(serde_json::to_string_pretty(answer?.info())?)?;
    Ok(())
}
