//! The words search sees: of a message, the words of its string values; of a query, its terms. Both are
//! cut the same way, so a query word matches the indexed word whatever the punctuation or case around either,
//! on both backends:
//! - text is split into words by Unicode's word boundaries (UAX #29, the `unicode-segmentation` crate), then
//!   at the punctuation a word may hold inside (`it's`, `a.b`, `snake_case`), and lower-cased;
//! - runs of scripts written without spaces (Chinese, Japanese kana, Korean Hangul, Thai, Lao, Khmer, Myanmar)
//!   become overlapping bigrams of their characters (grapheme clusters), as Lucene's CJK analyzer does:
//!   `今天天气很好` is indexed as `今天 天天 天气 气很 很好`, so the query `天气` (one bigram) or `天气很好`
//!   (three, as a phrase) finds it. A single such character alone is kept as itself. No dictionary is involved:
//!   a bigram can match across a word boundary, which costs precision, never recall.

use serde_json::Value;
use unicode_segmentation::UnicodeSegmentation;

use crate::store::{SearchTerm, Thread};

/// Words longer than this are not indexed (base64 blobs, hashes: nothing a person types into a search box).
pub const MAX_WORD_CHARS: usize = 64;
/// Words indexed per message; a message's later words are not searchable.
pub const MAX_WORDS: usize = 4096;
/// A query's size limits.
pub const MAX_QUERY_BYTES: usize = 256;
pub const MAX_TERMS: usize = 16;
pub const MAX_TERM_WORDS: usize = 16;

/// Whether `c` belongs to a script written without spaces between words (bigrammed).
fn unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF     // Thai, Lao
        | 0x1000..=0x109F   // Myanmar
        | 0x1100..=0x11FF   // Hangul Jamo
        | 0x1780..=0x17FF   // Khmer
        | 0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3130..=0x318F   // Hangul compatibility Jamo
        | 0x31F0..=0x31FF   // Katakana phonetic extensions
        | 0x3400..=0x4DBF   // CJK extension A
        | 0x4E00..=0x9FFF   // CJK unified ideographs
        | 0xAC00..=0xD7AF   // Hangul syllables
        | 0xF900..=0xFAFF   // CJK compatibility ideographs
        | 0xFF66..=0xFF9F   // half-width Katakana
        | 0x20000..=0x3FFFF // CJK extensions B and later
    )
}

/// Punctuation that UAX #29 keeps inside a word (MidLetter, MidNum, ExtendNumLet): cut there as well, so
/// `it's`, `e.g`, `snake_case` are words apart (and no word can hold `_`, see `thread_token`).
fn inner_punctuation(c: char) -> bool {
    (c.is_ascii() && !c.is_ascii_alphanumeric())
        || matches!(
            c,
            '\u{00B7}'
                | '\u{0387}'
                | '\u{05F3}'
                | '\u{05F4}'
                | '\u{066B}'
                | '\u{066C}'
                | '\u{2018}'
                | '\u{2019}'
                | '\u{2024}'
                | '\u{2027}'
                | '\u{202F}'
                | '\u{203F}'
                | '\u{2040}'
                | '\u{2054}'
                | '\u{FE10}'
                | '\u{FE13}'
                | '\u{FE14}'
                | '\u{FE33}'
                | '\u{FE34}'
                | '\u{FE4D}'
                ..='\u{FE55}'
                    | '\u{FF07}'
                    | '\u{FF0C}'
                    | '\u{FF0E}'
                    | '\u{FF1A}'
                    | '\u{FF1B}'
                    | '\u{FF3F}'
        )
}

/// Collects words in text order; a run of unspaced graphemes waits until it ends.
#[derive(Default)]
struct Cutter<'a> {
    out: Vec<String>,
    run: Vec<&'a str>,
    /// Where the run's last grapheme ends in the text (a grapheme starting there continues the run).
    run_end: usize,
}

impl<'a> Cutter<'a> {
    fn end_run(&mut self) {
        match self.run.len() {
            0 => {}
            1 => self.out.push(self.run[0].to_string()),
            _ => self
                .out
                .extend(self.run.windows(2).map(|pair| pair.concat())),
        }
        self.run.clear();
    }

    fn word(&mut self, w: &str) {
        self.end_run();
        if w.chars().count() <= MAX_WORD_CHARS {
            self.out.push(w.to_lowercase());
        }
    }

    fn unspaced(&mut self, at: usize, g: &'a str) {
        if at != self.run_end {
            self.end_run();
        }
        self.run.push(g);
        self.run_end = at + g.len();
    }
}

/// Lower-cased words of `text`, in order (see the module's comment for how text is cut).
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut cut = Cutter::default();
    for (start, segment) in text.unicode_word_indices() {
        let mut part_start = start;
        for part in segment.split(inner_punctuation) {
            let mut plain: Option<usize> = None;
            for (offset, g) in part.grapheme_indices(true) {
                let at = part_start + offset;
                if g.chars().next().is_some_and(unspaced) {
                    if let Some(from) = plain.take() {
                        cut.word(&text[from..at]);
                    }
                    cut.unspaced(at, g);
                } else if plain.is_none() {
                    plain = Some(at);
                }
            }
            if let Some(from) = plain {
                cut.word(&text[from..part_start + part.len()]);
            }
            // The separator that ended this part is one byte (ASCII) or its own length.
            part_start += part.len();
            part_start += segment[part_start - start..]
                .chars()
                .next()
                .map_or(0, char::len_utf8);
        }
    }
    cut.end_run();
    cut.out.into_iter()
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

/// Why a query was refused (too long, no words, an unclosed quote...): told to the caller as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// A query's terms: words (`hello`), phrases (`"good morning"`: adjacent, in order) and prefixes (`mor*`, or
/// `"good mor"*`); every term must match. A word that punctuation splits (`e-mail`) becomes a phrase.
pub fn parse_query(q: &str) -> Result<Vec<SearchTerm>, QueryError> {
    let invalid = QueryError;
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
    fn scripts_without_spaces_become_bigrams_and_the_rest_words() {
        let w = |t: &str| words(t).collect::<Vec<_>>();
        assert_eq!(w("今天天气很好"), ["今天", "天天", "天气", "气很", "很好"]);
        assert_eq!(w("天气"), ["天气"]);
        assert_eq!(w("天"), ["天"]);
        // Japanese: kanji and kana in one run; Latin and digits around it are words of their own, in order.
        assert_eq!(
            w("東京タワーへ行く iPhone15"),
            ["東京", "京タ", "タワ", "ワー", "ーへ", "へ行", "行く", "iphone15"]
        );
        // A space ends a run: no bigram across it.
        assert_eq!(w("天 气"), ["天", "气"]);
        assert_eq!(w("ok天气ok"), ["ok", "天气", "ok"]);
        // Thai (no spaces, combining vowels kept with their consonant).
        // Grapheme clusters: ส วั ส ดี ค รั บ, so 6 bigrams.
        assert_eq!(w("สวัสดีครับ"), ["สวั", "วัส", "สดี", "ดีค", "ครั", "รับ"]);
        // Arabic and accented Latin: words, marks kept, case folded.
        assert_eq!(w("مرحبا بالعالم"), ["مرحبا", "بالعالم"]);
        assert_eq!(w("Ça VA, très-bien"), ["ça", "va", "très", "bien"]);
        assert_eq!(
            w("it's snake_case e.g."),
            ["it", "s", "snake", "case", "e", "g"]
        );
        // The query side cuts the same way.
        assert_eq!(
            parse_query("天气很好").ok(),
            Some(vec![term(&["天气", "气很", "很好"], false)])
        );
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
