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
/// never markup, a path, or a log line.
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= 128
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || "_-.@:".contains(c))
}
