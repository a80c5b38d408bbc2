//! `connect`: the first command on pipe 0, carrying the client's description and its token.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct Connect {
    pub device: String,
    pub os: String,
    pub kernel: String,
    pub browser: String,
    pub client: String,
    /// Empty, or the uuid of an earlier session to resume (fast reconnect).
    pub uuid: String,
    pub parameters: ConnectParameters,
    /// With `uuid`: the last message id the client received per room (`{"<rid>": <mid>}`). A resumed session
    /// first gets every stored message after it in the rooms it is still in (what the lost transport may
    /// have swallowed), then what queued while it was away; a client that sends this drops pushes whose `mid`
    /// it already has.
    pub after: std::collections::BTreeMap<String, i64>,
    /// With `uuid`: the client's name for this attempt (at most 64 characters; longer is ignored). A session
    /// it takes over tells its old transport who took it (`info: {by: <attempt>}`), so a client that races
    /// several attempts knows a takeover by its own late attempt from one by somebody else.
    pub attempt: String,
}

impl Connect {
    /// `attempt`, if it is one the gateway repeats back: at most 64 characters, none of them a control
    /// character, markup or one that reorders text (a name is an id, not a message).
    pub fn attempt(&self) -> &str {
        let plain =
            |c: char| !c.is_control() && !"<>&\"'\\".contains(c) && !super::user::steers_display(c);
        if self.attempt.chars().count() <= 64 && self.attempt.chars().all(plain) {
            &self.attempt
        } else {
            ""
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct ConnectParameters {
    pub token: String,
}

/// `refresh {token}` on pipe 0: a fresh token for a live connection, before the old one expires. The user must
/// stay the same; the new token's claims (rooms, expiry) replace the old ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refresh {
    pub token: String,
}

/// `ping` on pipe 0 (an extension of this gateway): answered at once with `NetConnection.Call.Success`. A
/// client's liveness probe: no answer within its deadline means the path is dead (docs/resilience.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Ping {}

/// `close {reason}` on pipe 0 (an extension of this gateway): the client leaves for good. Answered with
/// `NetConnection.Connect.Closed` (level `status`); the session ends at once, is not kept for a reconnect,
/// and its rooms see it leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Close {
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_short_attempt_names_are_repeated_back() {
        let named = |a: &str| {
            Connect {
                attempt: a.to_string(),
                ..Connect::default()
            }
            .attempt()
            .to_string()
        };
        assert_eq!(named("a-1f2e"), "a-1f2e");
        assert_eq!(named("é😀"), "é😀");
        for bad in [
            "x\u{0}",
            "\u{1b}[31m",
            "a\nb",
            "\u{202E}x",
            "<script>",
            &"x".repeat(65),
        ] {
            assert_eq!(named(bad), "", "{bad:?}");
        }
    }
}
