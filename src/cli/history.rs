//! `odd history --room R | --with U | --query Q [--limit N] [--before ID] [--json]`.

use serde_json::json;

use super::print::{clock, data_text, out, who};
use super::{open, Cli};

/// What to print: a thread's page, or a search (`query`), optionally in one thread.
pub struct Page<'a> {
    pub room: Option<&'a str>,
    pub with: Option<&'a str>,
    pub query: Option<&'a str>,
    pub limit: Option<u32>,
    pub before: Option<i64>,
}

pub async fn run(cli: &Cli, p: Page<'_>, as_json: bool) -> anyhow::Result<()> {
    let (client, pipe) = open(cli).await?;
    let mut query = match (p.room, p.with, p.query) {
        (Some(r), _, _) => json!({ "rid": r, "limit": p.limit }),
        (None, Some(u), _) => json!({ "uid": u, "limit": p.limit }),
        (None, None, Some(_)) => json!({ "limit": p.limit }),
        (None, None, None) => anyhow::bail!("give --room, --with or --query"),
    };
    if let Some(q) = p.query {
        query["query"] = json!(q);
    }
    if let Some(b) = p.before {
        query["before"] = json!(b);
    }
    // Said goodbye whatever the answer: a refused query must not leave a session parked behind.
    let page = client.history(pipe, query).await;
    let guest = client.user.id.starts_with(crate::auth::GUEST_PREFIX);
    client.close().await;
    let page = page?;
    let info = page.info();
    let nothing = info["messages"].as_array().is_none_or(|m| m.is_empty());
    if nothing && guest && p.query.is_some() && p.room.is_none() && p.with.is_none() {
        // A search without a room looks through the rooms the caller has stored rights in: a guest has none.
        eprintln!(
            "note: a guest has no stored rights, so a search without --room finds nothing: pass --room, or \
             connect with a token (--token)"
        );
    }
    if as_json {
        out(serde_json::to_string_pretty(info)?)?;
        return Ok(());
    }
    let messages = info["messages"].as_array().cloned().unwrap_or_default();
    out(format!(
        "{:>8}  {:<8}  {:<16}  {:<10}  data",
        "id", "time", "from", "type"
    ))?;
    for m in &messages {
        let size = m["size"].as_i64().unwrap_or(0);
        let mut text = if m["redacted"] == json!(true) {
            format!("[redacted by {}]", m["redacted_by"].as_str().unwrap_or("?"))
        } else {
            data_text(&m["data"])
        };
        if size > 0 {
            text.push_str(&format!("  [+{size} bytes]"));
        }
        out(format!(
            "{:>8}  {:<8}  {:<16}  {:<10}  {}",
            m["mid"].as_i64().unwrap_or(0),
            clock(m["timestamp"].as_i64().unwrap_or(0) / 1000),
            who(&m["user"]),
            m["type"].as_str().unwrap_or(""),
            text
        ))?;
    }
    if info["more"] == json!(true) {
        out(format!("(older messages: --before {})", info["before"]))?;
    }
    Ok(())
}
