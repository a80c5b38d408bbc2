//! `join`, `leave` and `typing` on a messaging pipe; the rule for room ids.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    pub rid: String,
    /// Catch up: replay the room's stored messages after this `mid` (as `send` pushes, oldest first) before
    /// any live message. The answer's `info.catchup` says how many and whether more remain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
/// control character, markup (`< > & " ' \`), a space other than U+0020 (and no space at either end), or a
/// character that renders as nothing or changes how others render (zero-width and formatting characters,
/// bidirectional overrides, tags, variation selectors, blank fillers, noncharacters), so an id can be neither
/// markup nor made to look like another. Nor `.` or `..`: as a URL path segment (`/api/rooms/{rid}/...`)
/// those are steps a browser or proxy resolves, so such a room could never be named over HTTP.
pub fn valid_room_id(rid: &str) -> bool {
    !rid.is_empty()
        && rid != "."
        && rid != ".."
        && rid.chars().count() <= 128
        && !rid.starts_with(' ')
        && !rid.ends_with(' ')
        && !rid.chars().any(forbidden_in_id)
}

/// What `valid_room_id` refuses, one character at a time: markup, and what `steers_text` names.
pub fn forbidden_in_id(c: char) -> bool {
    "<>&\"'\\".contains(c) || steers_text(c)
}

/// A character that can steer a terminal or a log, or hide or disguise text around it: control characters,
/// spaces other than U+0020, and invisible or bidirectional formatting characters.
pub fn steers_text(c: char) -> bool {
    c.is_control() || (c.is_whitespace() && c != ' ') || invisible(c)
}

/// Characters that render as nothing, or change how the text around them renders: Unicode's format characters
/// (general category Cf), variation selectors, blank Hangul fillers and the blank braille pattern, the
/// combining grapheme joiner, and noncharacters.
fn invisible(c: char) -> bool {
    let n = c as u32;
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}'
        | '\u{0890}'..='\u{0891}' | '\u{08E2}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{2800}' | '\u{3164}'
        | '\u{FDD0}'..='\u{FDEF}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}'
        | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
        || n & 0xFFFE == 0xFFFE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_plain_visible_text() {
        for ok in [
            "lobby",
            "café",
            "房间-1",
            "a/b",
            "team:42",
            "general chat",
            "...",
            ".a",
        ] {
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
            ".",
            "..",
            long.as_str(),
        ] {
            assert!(!valid_room_id(bad), "{bad:?}");
        }
    }
}
