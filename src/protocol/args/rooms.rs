//! `join`, `leave` and `typing` on a messaging pipe; the rule for room ids.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Join {
    pub rid: String,
    /// Catch up: replay the room's stored messages after this `mid` (as `send` pushes, oldest first) before
    /// any live message. The answer's `info.catchup` says how many and whether more remain.
    #[serde(default)]
    pub after: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Leave {
    pub rid: String,
    #[serde(default)]
    pub reason: String,
}

/// `typing {rid}`: the sender is typing in room `rid` (joined on this pipe). Not stored; the room's other
/// members get `NetGroup.Typing.Notify {room: {id}, user}` (docs/protocol.md, "Typing").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typing {
    pub rid: String,
}

/// The one rule for room ids (and names like them, such as a stream's `app`): 1-128 characters, none of them a
/// control character, markup (`< > & " ' \`) or an invisible formatting character (zero-width spaces and
/// joiners, bidirectional overrides, the byte-order mark), so an id can be neither markup nor made to look
/// like another.
pub fn valid_room_id(rid: &str) -> bool {
    !rid.is_empty() && rid.chars().count() <= 128 && !rid.chars().any(forbidden_in_id)
}

/// What `valid_room_id` refuses, one character at a time.
pub fn forbidden_in_id(c: char) -> bool {
    c.is_control() || "<>&\"'\\".contains(c) || invisible(c)
}

/// Unicode formatting characters that render as nothing (general category Cf, the ones text carries).
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_plain_visible_text() {
        for ok in ["lobby", "café", "房间-1", "a/b", "team:42"] {
            assert!(valid_room_id(ok), "{ok}");
        }
        let long = "x".repeat(129);
        for bad in [
            "",
            "<b>",
            "a\u{202E}b",
            "a\u{200B}b",
            "\u{FEFF}x",
            "a\nb",
            "a\\b",
            long.as_str(),
        ] {
            assert!(!valid_room_id(bad), "{bad:?}");
        }
    }
}
