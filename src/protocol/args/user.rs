//! The user object clients display: `{"id","nick","avatar"}`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(default)]
pub struct User {
    pub id: String,
    pub nick: String,
    pub avatar: String,
}

/// The one rule for user ids, wherever one enters (tokens, the connect hook, in-band targets of `send`,
/// `chmod` and `read`, the server API): 1-128 letters (any script), digits, or `_ - . @ :`. So an id is
/// never markup, a path, or a log line; nor `.` or `..`, which a URL path would resolve as steps.
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id.chars().count() <= 128
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || "_-.@:".contains(c))
}

/// What an id looks like: its UTS #39 confusable skeleton once lower-cased (`ѕystem` with a Cyrillic `ѕ`,
/// `SYSTEM` and `systern` all look like `system`). Two ids with the same skeleton look alike.
pub fn skeleton(id: &str) -> String {
    unicode_security::confusable_detection::skeleton(&id.to_lowercase()).collect()
}

/// What a nick or an avatar may not hold besides control characters and markup: characters that reorder the
/// text around them (bidirectional marks, embeddings, overrides and isolates) or break a line, so a nick
/// cannot display as another (`\u{202E}NIMDA` shown as "ADMIN") or draw a line of its own. Emoji sequences
/// (zero-width joiners, variation selectors) stay allowed.
pub fn steers_display(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        | '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_of_an_id_are_caught_and_others_are_not() {
        for alike in [
            "system",
            "System",
            "SYSTEM",
            "\u{455}ystem",
            "syst\u{435}m",
            "systern",
        ] {
            assert_eq!(skeleton(alike), skeleton("system"), "{alike}");
        }
        for other in ["systems", "sys", "alice", "bob", "system2"] {
            assert_ne!(skeleton(other), skeleton("system"), "{other}");
        }
    }

    #[test]
    fn user_ids_are_plain_and_never_path_steps() {
        for ok in [
            "alice",
            "bob.smith",
            "u@example.com",
            "team:7",
            "李雷",
            "...",
        ] {
            assert!(valid_user_id(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "<b>", &"x".repeat(129)] {
            assert!(!valid_user_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn display_steering_characters_are_named_and_emoji_joiners_are_not() {
        for c in ['\u{202E}', '\u{2066}', '\u{200F}', '\u{2028}', '\u{061C}'] {
            assert!(steers_display(c), "{:04X}", c as u32);
        }
        for c in ['a', ' ', '\u{200D}', '\u{FE0F}', '李'] {
            assert!(!steers_display(c), "{:04X}", c as u32);
        }
    }
}
