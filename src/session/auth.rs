//! Who is connecting: a token in `connect` becomes a `User`, or the connect is rejected.
//!
//! Verifiers are pluggable behind `TokenVerifier`. The configured one serves static `token -> user` pairs from
//! the config file and, when anonymous mode is on, gives an empty token a fresh guest identity.

use std::collections::HashMap;

use rand::Rng;
use thiserror::Error;

use crate::config::Auth;
use crate::protocol::args::User;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("a token is required: anonymous connects are disabled")]
    TokenRequired,
    #[error("the token is not valid")]
    UnknownToken,
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

impl AuthError {
    /// A fixed label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::TokenRequired => "token_required",
            AuthError::UnknownToken => "unknown_token",
            AuthError::Invalid(_) => "invalid_token",
        }
    }
}

pub trait TokenVerifier: Send + Sync {
    /// Never logs or echoes the token.
    fn verify(&self, token: &str) -> Result<User, AuthError>;
}

pub struct ConfigVerifier {
    anonymous: bool,
    tokens: HashMap<String, User>,
}

impl ConfigVerifier {
    pub fn new(auth: &Auth, anonymous: bool) -> ConfigVerifier {
        let tokens = auth
            .tokens
            .iter()
            .map(|t| {
                let user = User {
                    id: t.id.clone(),
                    nick: if t.nick.is_empty() {
                        t.id.clone()
                    } else {
                        t.nick.clone()
                    },
                    avatar: t.avatar.clone(),
                };
                (t.token.clone(), user)
            })
            .collect();
        ConfigVerifier { anonymous, tokens }
    }
}

impl TokenVerifier for ConfigVerifier {
    fn verify(&self, token: &str) -> Result<User, AuthError> {
        if token.is_empty() {
            return if self.anonymous {
                Ok(guest())
            } else {
                Err(AuthError::TokenRequired)
            };
        }
        self.tokens
            .get(token)
            .cloned()
            .ok_or(AuthError::UnknownToken)
    }
}

/// Every guest id starts with this.
pub const GUEST_PREFIX: &str = "guest-";

/// A fresh guest: `guest-` and 12 random hex digits, so guests never collide with each other in rooms.
fn guest() -> User {
    let n: u64 = rand::thread_rng().gen::<u64>() & 0xFFFF_FFFF_FFFF;
    let id = format!("{GUEST_PREFIX}{n:012x}");
    User {
        nick: id[..10].to_string(),
        id,
        avatar: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StaticToken;

    #[test]
    fn static_tokens_and_guests() {
        let auth = Auth {
            anonymous: None,
            tokens: vec![StaticToken {
                token: "t1".into(),
                id: "1001".into(),
                nick: "".into(),
                avatar: "".into(),
            }],
        };
        let open = ConfigVerifier::new(&auth, true);
        assert_eq!(open.verify("t1").map(|u| u.nick), Ok("1001".to_string()));
        assert_eq!(open.verify("nope"), Err(AuthError::UnknownToken));
        let g1 = open.verify("").map(|u| u.id).unwrap_or_default();
        let g2 = open.verify("").map(|u| u.id).unwrap_or_default();
        assert!(g1.starts_with("guest-") && g1 != g2);
        let closed = ConfigVerifier::new(&auth, false);
        assert_eq!(closed.verify(""), Err(AuthError::TokenRequired));
    }
}
