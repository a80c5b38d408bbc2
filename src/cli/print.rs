//! How messages look in a terminal: `12:34:56 nick: text`, times in UTC.

use std::io::Write;

use serde_json::Value;

/// Prints a line to stdout, returning the error (e.g. a closed pipe) instead of panicking like `println!`.
/// What others wrote (messages, nicks, a gateway's or a hook's reasons) cannot steer the terminal: see `safe`.
pub fn out(line: impl std::fmt::Display) -> std::io::Result<()> {
    writeln!(std::io::stdout().lock(), "{}", safe(&line.to_string()))
}

/// `text` with every character that could steer a terminal or hide what it shows (escape sequences, carriage
/// returns, other control characters but newline and tab, bidirectional overrides and invisible formatting
/// characters) replaced by U+FFFD.
pub fn safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            let steers = c != '\n' && c != '\t' && crate::protocol::args::rooms::steers_text(c);
            if steers {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// `HH:MM:SS` (UTC) of a Unix time in seconds.
pub fn clock(secs: i64) -> String {
    let s = secs.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// The text of a message's `data`: the string itself, or its JSON.
pub fn data_text(data: &Value) -> String {
    match data {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The sender's nick, falling back to the id.
pub fn who(user: &Value) -> String {
    match user["nick"].as_str() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => user["id"].as_str().unwrap_or("?").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_others_wrote_cannot_steer_the_terminal() {
        assert_eq!(
            safe("evil \x1b[2J\x1b]0;t\x07\r\nFAKE \u{202E}x <b>"),
            "evil \u{FFFD}[2J\u{FFFD}]0;t\u{FFFD}\u{FFFD}\nFAKE \u{FFFD}x <b>"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(clock(3_661), "01:01:01");
        assert_eq!(data_text(&serde_json::json!("hi")), "hi");
        assert_eq!(data_text(&serde_json::json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(who(&serde_json::json!({"id": "7", "nick": ""})), "7");
    }
}
