//! `odd chat --room R`: stdin lines become messages, pushes are printed. Ends at end of input (or Ctrl-C).

use tokio::io::{AsyncBufReadExt, BufReader};

use super::print::{clock, data_text, out, who};
use super::{options, Cli};
use crate::client::{Client, RECONNECTED};

/// A chat holds on to its gateway for as long as it runs: a lost transport is never a reason to exit.
const HOLD_ON: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

pub async fn run(cli: &Cli, room: &str) -> anyhow::Result<()> {
    let mut options = options(cli)?;
    options.reconnect_for = HOLD_ON;
    let mut client = Client::connect_with(&cli.url, &cli.token, &options).await?;
    let pipe = client.create("messaging").await?;
    let joined = client.join(pipe, room).await?;
    let coverage = client.wait_for("NetGroup.LocalCoverage.Notify").await;
    let present = coverage
        .as_ref()
        .and_then(|c| c.info()["list"].as_object().map(|l| l.len()))
        .unwrap_or(1);
    out(format!(
        "joined {room} as {} ({present} present, rights {})",
        who(&joined.info()["user"]),
        joined.info()["room"]["mask"].as_str().unwrap_or("?")
    ))?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(text) if text.trim().is_empty() => continue,
                Some(text) => {
                    if let Err(e) = client.say(pipe, room, &text).await {
                        eprintln!("not sent: {e}");
                    }
                }
                None => break,
            },
            push = client.next_push_within(std::time::Duration::from_secs(3600)) => {
                let Some(p) = push else {
                    if client.is_closed() {
                        anyhow::bail!("the gateway closed the connection");
                    }
                    continue;
                };
                let line = match (p.name(), p.code()) {
                    ("send", _) => format!(
                        "{} {}: {}",
                        clock(i64::from(p.timestamp)),
                        who(&p.args["user"]),
                        data_text(&p.args["data"])
                    ),
                    (_, "NetGroup.Neighbor.Connect") => format!("* {} joined", who(&p.info()["user"])),
                    (_, "NetGroup.Neighbor.Disconnect") => format!("* {} left", who(&p.info()["user"])),
                    (_, "NetGroup.Redact.Notify") => format!(
                        "* message(s) {} redacted by {}",
                        p.info()["mids"],
                        who(&p.info()["by"])
                    ),
                    (_, "NetGroup.Typing.Notify") => format!("* {} is typing", who(&p.info()["user"])),
                    (_, RECONNECTED) if p.info()["resumed"] == true => "* reconnected (session resumed)".to_string(),
                    (_, RECONNECTED) if p.info()["restored"] == true => {
                        "* reconnected (new session, room joined again)".to_string()
                    }
                    (_, RECONNECTED) => format!("! reconnected, but the room could not be joined again: {}", p.info()),
                    (_, code) if p.is_error() || code.ends_with("AppShutdown") => {
                        format!("! {code}: {}", p.description())
                    }
                    _ => continue,
                };
                out(line)?;
            }
        }
    }
    client.leave(pipe, room).await.ok();
    client.close().await;
    Ok(())
}
