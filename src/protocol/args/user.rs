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

#[cfg(test)]
mod tests {
    use super::*;

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
}
