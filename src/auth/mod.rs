//! Who is connecting: a token in `connect` (or an HTTP Bearer token) becomes a `Principal`, or is refused.
//!
//! Verifiers are pluggable behind `TokenVerifier`. The configured one accepts, in order: an empty token as a
//! fresh guest (when anonymous mode is on), static `token -> user` pairs from the config file, and JWTs
//! (`jwt.rs`: HS256 secrets, RS/PS/ES/EdDSA public keys, JWKS; `sub` = user id, optional `nick`, `avatar`,
//! `rooms`; `exp` required). Used by the session layer (`connect`, `refresh`) and the HTTP API. Whatever the
//! source, ids and nicks are validated, so a client that renders them as HTML is never handed markup from the
//! token path. Tokens are never logged or echoed.

mod jwt;
pub mod sign;

use std::collections::HashMap;

use std::sync::Arc;

use rand::Rng;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::config::Auth;
use crate::protocol::args::User;
use crate::rooms::RoomClaims;
use jwt::JwtVerifier;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("a token is required: anonymous connects are disabled")]
    TokenRequired,
    #[error("the token is not valid")]
    UnknownToken,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired,
    /// The `connect` hook could not be asked and fails closed.
    #[error("the authentication backend is unavailable: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// A fixed label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::TokenRequired => "token_required",
            AuthError::UnknownToken => "unknown_token",
            AuthError::Invalid(_) => "invalid_token",
            AuthError::Expired => "expired_token",
            AuthError::Unavailable(_) => "backend_unavailable",
        }
    }
}

/// An authenticated identity and what its token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: User,
    /// Rooms the token is limited to (`rooms` claim); `RoomClaims::any()`: no limit beyond room rights.
    pub rooms: RoomClaims,
    /// When the token expires (unix seconds; `None` for static tokens and guests): a live connection is
    /// closed then, unless the client sent a fresh token with `refresh`.
    pub expires: Option<u64>,
}

impl Principal {
    pub fn may_enter(&self, rid: &str) -> bool {
        self.rooms.allows(rid)
    }
}

pub trait TokenVerifier: Send + Sync {
    fn principal(&self, token: &str) -> Result<Principal, AuthError>;

    fn verify(&self, token: &str) -> Result<User, AuthError> {
        self.principal(token).map(|p| p.user)
    }
}

pub struct ConfigVerifier {
    anonymous: bool,
    tokens: HashMap<String, User>,
    jwt: Option<JwtVerifier>,
}

impl ConfigVerifier {
    /// Fails when a configured key file cannot be read or parsed (better at startup than at the first login).
    pub fn new(auth: &Auth, anonymous: bool) -> Result<ConfigVerifier, String> {
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
        Ok(ConfigVerifier {
            anonymous,
            tokens,
            jwt: JwtVerifier::new(auth)?,
        })
    }

    /// Re-reads the JWKS file every `every` until `stop` (no-op without a JWKS file).
    pub async fn refresh_keys(
        self: Arc<Self>,
        every: std::time::Duration,
        stop: CancellationToken,
    ) {
        let Some(jwt) = self.jwt.as_ref().filter(|j| j.has_jwks()) else {
            return;
        };
        let every = every.max(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match jwt.reload() {
                Ok(n) => tracing::debug!(keys = n, "JWKS re-read"),
                Err(e) => {
                    tracing::warn!(error = %e, "JWKS could not be re-read; keeping the previous keys")
                }
            }
        }
    }

    fn jwt(&self, token: &str) -> Result<Principal, AuthError> {
        let Some(jwt) = &self.jwt else {
            return Err(AuthError::UnknownToken);
        };
        let c = jwt.verify(token)?;
        let sub = c
            .sub
            .ok_or_else(|| AuthError::Invalid("missing claim `sub`".into()))?;
        let user = User {
            nick: c
                .nick
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| sub.clone()),
            id: sub,
            avatar: c.avatar.unwrap_or_default(),
        };
        Ok(Principal {
            user,
            rooms: c.rooms.map(RoomClaims::only).unwrap_or_default(),
            expires: c.exp,
        })
    }
}

impl TokenVerifier for ConfigVerifier {
    fn principal(&self, token: &str) -> Result<Principal, AuthError> {
        let principal = if token.is_empty() {
            if !self.anonymous {
                return Err(AuthError::TokenRequired);
            }
            Principal {
                user: guest(),
                rooms: RoomClaims::any(),
                expires: None,
            }
        } else if let Some(user) = self.tokens.get(token) {
            Principal {
                user: user.clone(),
                rooms: RoomClaims::any(),
                expires: None,
            }
        } else if token.matches('.').count() == 2 {
            self.jwt(token)?
        } else {
            return Err(AuthError::UnknownToken);
        };
        if token.is_empty() {
            validate_user(&principal.user)?;
        } else {
            validate_named_user(&principal.user)?;
        }
        Ok(principal)
    }
}

/// Ids: 1-128 characters of letters, digits and `_ - . @ :`. Nicks: 1-64 characters, no control characters and
/// none of `< > & " '`. Avatars: at most 512 characters, no control characters, quotes or angle brackets.
pub fn validate_user(u: &User) -> Result<(), AuthError> {
    if !valid_user_id(&u.id) {
        return Err(AuthError::Invalid(
            "user id must be 1-128 letters, digits or _ - . @ : (not . or ..)".into(),
        ));
    }
    let markup = |c: char| {
        c.is_control() || "<>&\"'".contains(c) || crate::protocol::args::user::steers_display(c)
    };
    if u.nick.is_empty() || u.nick.chars().count() > 64 || u.nick.chars().any(markup) {
        return Err(AuthError::Invalid(
            "nick must be 1-64 characters without < > & \" ', control, bidirectional-override or line-separator characters".into(),
        ));
    }
    if u.avatar.chars().count() > 512 || u.avatar.chars().any(markup) {
        return Err(AuthError::Invalid(
            "avatar must be at most 512 characters without quotes or angle brackets".into(),
        ));
    }
    Ok(())
}

pub use crate::protocol::args::user::valid_user_id;

/// Every guest id starts with this.
pub const GUEST_PREFIX: &str = "guest-";

/// A user that a token, a hook or the backend names: valid, and not posing as a guest. Guest ids are the
/// gateway's own (an empty token's), and knowing a guest session's uuid is what lets a guest resume it, so a
/// named user with a `guest-` id could be taken over by anyone holding that uuid with an empty token.
pub fn validate_named_user(u: &User) -> Result<(), AuthError> {
    validate_user(u)?;
    if u.id.starts_with(GUEST_PREFIX) {
        return Err(AuthError::Invalid(format!(
            "user ids starting with `{GUEST_PREFIX}` are reserved for guests"
        )));
    }
    Ok(())
}

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

    fn auth(tokens: Vec<StaticToken>, secret: Option<&str>) -> Auth {
        Auth {
            tokens,
            jwt_secret: secret.map(String::from),
            ..Auth::default()
        }
    }

    fn jwt(secret: &str, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap_or_default()
    }

    fn now() -> u64 {
        crate::clock::now_secs() as u64
    }

    #[test]
    fn static_tokens_and_guests() {
        let a = auth(
            vec![StaticToken {
                token: "t1".into(),
                id: "1001".into(),
                nick: "".into(),
                avatar: "".into(),
            }],
            None,
        );
        let open = ConfigVerifier::new(&a, true).expect("verifier");
        assert_eq!(open.verify("t1").map(|u| u.nick), Ok("1001".to_string()));
        assert_eq!(open.verify("nope"), Err(AuthError::UnknownToken));
        let g1 = open.verify("").map(|u| u.id).unwrap_or_default();
        let g2 = open.verify("").map(|u| u.id).unwrap_or_default();
        assert!(g1.starts_with("guest-") && g1 != g2);
        let closed = ConfigVerifier::new(&a, false).expect("verifier");
        assert_eq!(closed.verify(""), Err(AuthError::TokenRequired));
    }

    #[test]
    fn jwt_valid_expired_wrong_signature_missing_sub() {
        let v = ConfigVerifier::new(&auth(vec![], Some("s3cret")), false).expect("verifier");
        let ok = jwt(
            "s3cret",
            serde_json::json!({"sub": "u42", "nick": "Zed", "exp": now() + 60, "rooms": ["a"]}),
        );
        let p = v.principal(&ok).expect("valid");
        assert_eq!((p.user.id.as_str(), p.user.nick.as_str()), ("u42", "Zed"));
        assert!(p.may_enter("a") && !p.may_enter("b"));
        let expired = jwt(
            "s3cret",
            serde_json::json!({"sub": "u42", "exp": now() - 3600}),
        );
        assert_eq!(v.verify(&expired), Err(AuthError::Expired));
        let forged = jwt(
            "other",
            serde_json::json!({"sub": "u42", "exp": now() + 60}),
        );
        assert_eq!(
            v.verify(&forged),
            Err(AuthError::Invalid("bad signature".into()))
        );
        let no_sub = jwt("s3cret", serde_json::json!({"exp": now() + 60}));
        assert!(matches!(v.verify(&no_sub), Err(AuthError::Invalid(m)) if m.contains("sub")));
        let no_exp = jwt("s3cret", serde_json::json!({"sub": "u42"}));
        assert!(matches!(v.verify(&no_exp), Err(AuthError::Invalid(m)) if m.contains("exp")));
        let markup = jwt(
            "s3cret",
            serde_json::json!({"sub": "u42", "nick": "<script>", "exp": now() + 60}),
        );
        assert!(matches!(v.verify(&markup), Err(AuthError::Invalid(m)) if m.contains("nick")));
        let bad_id = jwt(
            "s3cret",
            serde_json::json!({"sub": "a b", "exp": now() + 60}),
        );
        assert!(v.verify(&bad_id).is_err());
        // Without a secret, JWTs are unknown tokens.
        let none = ConfigVerifier::new(&auth(vec![], None), false).expect("verifier");
        assert_eq!(none.verify(&ok), Err(AuthError::UnknownToken));
    }
}
