//! The words search sees: of a message, the words of its string values; of a query, its terms. Both are
//! cut the same way (lower-cased, split at anything that is not a letter or a digit), so a query word matches
//! the indexed word whatever the punctuation or case around either, on both backends.

use serde_json::Value;

use crate::rooms::RoomError;
use crate::store::{SearchTerm, Thread};

/// Words longer than this are not indexed (base64 blobs, hashes: nothing a person types into a search box).
pub const MAX_WORD_CHARS: usize = 64;
/// Words indexed per message; a message's later words are not searchable.
pub const MAX_WORDS: usize = 4096;
/// A query's size limits.
pub const MAX_QUERY_BYTES: usize = 256;
pub const MAX_TERMS: usize = 16;
pub const MAX_TERM_WORDS: usize = 16;

/// Lower-cased words of `text`, in order.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.chars().count() <= MAX_WORD_CHARS)
        .map(str::to_lowercase)
}

/// The words of a stored message's `data` (its JSON text): every string value (arrays in order, objects in
/// key order); object keys, numbers and booleans are not text a user wrote. Unparsable data has no words.
pub fn message_words(data: &str) -> Vec<String> {
    let Ok(value) = serde_json::from_str::<Value>(data) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut stack = vec![&value];
    while let Some(v) = stack.pop() {
        if out.len() >= MAX_WORDS {
            break;
        }
        match v {
            Value::String(s) => out.extend(words(s).take(MAX_WORDS - out.len())),
            // Pushed in reverse so they come off the stack in order.
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Object(map) => stack.extend(map.values().rev()),
            _ => {}
        }
    }
    out
}

/// A word that stands for a message's thread, indexed with its words: a search within one room or
/// conversation adds it as a term, so the index intersects the two lists instead of reading every message
/// that has the words and dropping those of other threads. It starts with `_`, which no word of a message or a
/// query ever holds (they are cut at anything not a letter or digit), so no search can match it by accident
/// (`thre*` must not find `thre5...`); SQLite's index treats `_` as a word character for it. A hash collision
/// only costs the thread filter that follows in SQL.
pub fn thread_token(thread: &Thread) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(thread.read_key().as_bytes());
    format!("_thr{}", hex::encode(&hash[..8]))
}

/// A query's terms: words (`hello`), phrases (`"good morning"`: adjacent, in order) and prefixes (`mor*`, or
/// `"good mor"*`); every term must match. A word that punctuation splits (`e-mail`) becomes a phrase.
pub fn parse_query(q: &str) -> Result<Vec<SearchTerm>, RoomError> {
    let invalid = |reason: String| RoomError::Invalid {
        what: "query",
        reason,
    };
    if q.len() > MAX_QUERY_BYTES {
        return Err(invalid(format!("at most {MAX_QUERY_BYTES} bytes")));
    }
    let mut terms = Vec::new();
    let mut rest = q.trim_start();
    while !rest.is_empty() {
        let (text, after) = if let Some(quoted) = rest.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '"')
                .unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        let (text, after, prefix) = match (text.strip_suffix('*'), after.strip_prefix('*')) {
            (Some(t), _) => (t, after, true),
            (None, Some(a)) => (text, a, true),
            (None, None) => (text, after, false),
        };
        let words: Vec<String> = words(text).collect();
        if !words.is_empty() {
            if words.len() > MAX_TERM_WORDS {
                return Err(invalid(format!(
                    "a phrase has at most {MAX_TERM_WORDS} words"
                )));
            }
            terms.push(SearchTerm { words, prefix });
            if terms.len() > MAX_TERMS {
                return Err(invalid(format!("at most {MAX_TERMS} terms")));
            }
        }
        rest = after.trim_start();
    }
    if terms.is_empty() {
        return Err(invalid("it has no words to look for".into()));
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(words: &[&str], prefix: bool) -> SearchTerm {
        SearchTerm {
            words: words.iter().map(|w| w.to_string()).collect(),
            prefix,
        }
    }

    #[test]
    fn message_words_are_the_string_values_in_order() {
        let data =
            r#"{"text":"Hello, World!","n":42,"tags":["Café","x-ray"],"k":{"deep":"ÉTÉ 2026"}}"#;
        assert_eq!(
            message_words(data),
            ["été", "2026", "café", "x", "ray", "hello", "world"]
        );
        assert_eq!(message_words("\"just a string\""), ["just", "a", "string"]);
        assert!(message_words("not json").is_empty());
        let long = format!("\"{} ok\"", "a".repeat(MAX_WORD_CHARS + 1));
        assert_eq!(message_words(&long), ["ok"]);
    }

    #[test]
    fn queries_have_words_phrases_and_prefixes() {
        assert_eq!(
            parse_query(r#"Hello  "good Morning" mor* "big ca"* e-mail"#).ok(),
            Some(vec![
                term(&["hello"], false),
                term(&["good", "morning"], false),
                term(&["mor"], true),
                term(&["big", "ca"], true),
                term(&["e", "mail"], false),
            ])
        );
        // An unclosed quote runs to the end.
        assert_eq!(
            parse_query("\"open phrase").ok(),
            Some(vec![term(&["open", "phrase"], false)])
        );
    }

    #[test]
    fn thread_tokens_are_one_stable_word_per_thread() {
        let room = thread_token(&Thread::Room("club".into()));
        assert_eq!(room, thread_token(&Thread::Room("club".into())));
        assert_ne!(room, thread_token(&Thread::Room("club2".into())));
        assert_ne!(room, thread_token(&Thread::peers("a", "b")));
        assert!(room.starts_with("_thr") && room[1..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(
            !words(&room).any(|w| w == room),
            "no message or query word can be the token"
        );
        let typed = parse_query(&format!("{room} {}*", &room[..5])).unwrap_or_default();
        assert!(typed
            .iter()
            .all(|t| t.words.iter().all(|w| !w.starts_with('_'))));
    }

    #[test]
    fn empty_or_oversized_queries_are_refused() {
        for q in ["", "   ", "\"\"", "*", "!!! ---"] {
            assert!(parse_query(q).is_err(), "{q:?}");
        }
        assert!(parse_query(&"a ".repeat(MAX_TERMS + 1)).is_err());
        assert!(parse_query(&"x".repeat(MAX_QUERY_BYTES + 1)).is_err());
    }
}
