//! `odd history --room R | --with U [--limit N] [--before ID] [--json]`.

use serde_json::json;

use super::print::{clock, data_text, out, who};
use super::{open, Cli};

pub async fn run(
    cli: &Cli,
    room: Option<&str>,
    with: Option<&str>,
    limit: u32,
    before: Option<i64>,
    as_json: bool,
) -> anyhow::Result<()> {
    let (client, pipe) = open(cli).await?;
    let mut query = match (room, with) {
        (Some(r), _) => json!({ "rid": r, "limit": limit }),
        (None, Some(u)) => json!({ "uid": u, "limit": limit }),
        (None, None) => anyhow::bail!("give --room or --with"),
    };
    if let Some(b) = before {
        query["before"] = json!(b);
    }
    let page = client.history(pipe, query).await?;
    client.close().await;
    let info = page.info();
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
        let mut text = data_text(&m["data"]);
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
