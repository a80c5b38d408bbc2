//! Typed decoding errors. The session layer turns each into exactly one `status` (see `session::reply`).

use thiserror::Error;

/// A frame (or a reassembled message) that cannot be understood.
///
/// Variants carry the pipe where it is known, so the error can be answered on the pipe that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("frame of {len} bytes is shorter than the 5-byte header")]
    Truncated { len: usize },
    #[error("reserved bits are set in the frame header (0x{byte:02x})")]
    Reserved { pipe: u16, byte: u8 },
    #[error("unknown message type 0x{kind:x}")]
    UnknownType { pipe: u16, kind: u8 },
    #[error("{kind} payload must be {expected} bytes, got {got}")]
    BadControlLength {
        pipe: u16,
        kind: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("control message {kind} may not be fragmented")]
    FragmentedControl { pipe: u16, kind: &'static str },
    #[error("command payload of {len} bytes is shorter than its 8-byte head")]
    ShortCommand { pipe: u16, len: usize },
    #[error(
        "command argument offset {offset} runs past the {available} bytes that follow the head"
    )]
    BadOffset {
        pipe: u16,
        offset: usize,
        available: usize,
    },
    #[error("message on pipe {pipe} grew past the {limit}-byte limit")]
    MessageTooLarge { pipe: u16, limit: usize },
    #[error("abort names unknown message type 0x{kind:x}")]
    BadAbort { pipe: u16, kind: u8 },
    #[error("command arguments of {len} bytes exceed the 65535 a command can carry")]
    ArgsTooLong { len: usize },
}

impl FrameError {
    /// The pipe the offending frame was addressed to, when the header was readable.
    pub fn pipe(&self) -> Option<u16> {
        match self {
            FrameError::Truncated { .. } | FrameError::ArgsTooLong { .. } => None,
            FrameError::Reserved { pipe, .. }
            | FrameError::UnknownType { pipe, .. }
            | FrameError::BadControlLength { pipe, .. }
            | FrameError::FragmentedControl { pipe, .. }
            | FrameError::ShortCommand { pipe, .. }
            | FrameError::BadOffset { pipe, .. }
            | FrameError::MessageTooLarge { pipe, .. }
            | FrameError::BadAbort { pipe, .. } => Some(*pipe),
        }
    }

    /// A short, stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            FrameError::Truncated { .. } => "truncated",
            FrameError::Reserved { .. } => "reserved_bits",
            FrameError::UnknownType { .. } => "unknown_type",
            FrameError::BadControlLength { .. } => "bad_control_length",
            FrameError::FragmentedControl { .. } => "fragmented_control",
            FrameError::ShortCommand { .. } => "short_command",
            FrameError::BadOffset { .. } => "bad_offset",
            FrameError::MessageTooLarge { .. } => "message_too_large",
            FrameError::BadAbort { .. } => "bad_abort",
            FrameError::ArgsTooLong { .. } => "args_too_long",
        }
    }
}

/// Command arguments that are not the JSON the command needs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ArgsError {
    #[error("arguments are not valid UTF-8 JSON: {0}")]
    Json(String),
    #[error(
        "arguments nest deeper than {} levels of arrays and objects",
        super::json_check::MAX_DEPTH
    )]
    TooDeep,
    #[error("arguments must be a JSON object")]
    NotObject,
    #[error("arguments have no string field `name`")]
    NoName,
    #[error("bad arguments for `{name}`: {reason}")]
    Invalid { name: String, reason: String },
}

/// A JSON decoding error in our words: serde names the Rust types it wanted (`struct PublishBody with 5
/// elements`, `untagged enum Raw`, `i64`); a client should read what JSON was expected instead.
pub fn plain_json_error(serde_message: &str) -> String {
    let m = serde_message;
    if m.contains("expected struct ") || m.contains(" elements") || m.contains("expected a map") {
        return match m.find(" at line ") {
            Some(at) => format!("expected a JSON object{}", &m[at..]),
            None => "expected a JSON object".to_string(),
        };
    }
    if m.contains("untagged enum") {
        return "not one of the accepted forms".to_string();
    }
    let mut out = String::with_capacity(m.len());
    for (i, word) in m.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let bare = word.trim_matches(|c: char| "`,.;".contains(c));
        let plain = match bare {
            "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" | "isize" => {
                "an integer"
            }
            "f32" | "f64" => "a number",
            _ => {
                out.push_str(word);
                continue;
            }
        };
        out.push_str(&word.replace(bare, plain));
    }
    out
}

#[cfg(test)]
mod plain_tests {
    use super::plain_json_error;

    #[test]
    fn rust_type_names_become_json_words() {
        assert_eq!(
            plain_json_error(
                "invalid type: string \"x\", expected struct PublishBody at line 1 column 3"
            ),
            "expected a JSON object at line 1 column 3"
        );
        assert_eq!(
            plain_json_error("invalid length 2, expected struct X with 5 elements"),
            "expected a JSON object"
        );
        assert_eq!(
            plain_json_error("data did not match any variant of untagged enum Raw"),
            "not one of the accepted forms"
        );
        assert_eq!(
            plain_json_error("invalid type: string \"a\", expected i64 at line 1 column 9"),
            "invalid type: string \"a\", expected an integer at line 1 column 9"
        );
        assert_eq!(
            plain_json_error("missing field `rid`"),
            "missing field `rid`"
        );
    }
}
