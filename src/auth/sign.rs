//! Making tokens the gateway accepts: HS256 JWTs with the claims `jwt.rs` reads (`sub`, `nick`, `rooms`,
//! `exp`, and `iss` / `aud` when the gateway checks them). For `odd token`, for trying the gateway and for
//! scripts; an app's own backend signs its tokens with any JWT library the same way (docs/auth.md).

use std::time::Duration;

use jsonwebtoken::{encode, EncodingKey, Header};
use serde::Serialize;

/// What the token says.
#[derive(Debug, Clone, Default)]
pub struct TokenClaims {
    pub user: String,
    pub nick: Option<String>,
    /// The rooms the token limits its holder to (`None`: any room its rights allow).
    pub rooms: Option<Vec<String>>,
    pub ttl: Duration,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    nick: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rooms: Option<&'a [String]>,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Signs `claims` with `secret` (HS256), issued at `now_unix`.
pub fn sign_hs256(secret: &str, claims: &TokenClaims, now_unix: u64) -> Result<String, String> {
    let user = crate::protocol::args::User {
        id: claims.user.clone(),
        // Checked as the gateway will see it: without a nick, the id stands in for it.
        nick: claims.nick.clone().unwrap_or_else(|| claims.user.clone()),
        avatar: String::new(),
    };
    if !super::valid_user_id(&user.id) {
        return Err(format!(
            "{:?} is not a user id: 1-128 letters, digits or _ - . @ : (not . or ..)",
            user.id
        ));
    }
    super::validate_named_user(&user).map_err(|e| e.to_string())?;
    if claims.ttl.is_zero() {
        return Err("the lifetime must be longer than 0 s".into());
    }
    if secret.len() < crate::config::MIN_JWT_SECRET_BYTES {
        return Err(format!(
            "the signing secret is shorter than {} bytes: the gateway would not accept it",
            crate::config::MIN_JWT_SECRET_BYTES
        ));
    }
    let body = Claims {
        sub: &claims.user,
        nick: claims.nick.as_deref(),
        rooms: claims.rooms.as_deref(),
        iat: now_unix,
        exp: now_unix.saturating_add(claims.ttl.as_secs().max(1)),
        iss: claims.issuer.as_deref(),
        aud: claims.audience.as_deref(),
    };
    encode(
        &Header::default(),
        &body,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| format!("cannot sign: {e}"))
}

/// The longest lifetime `odd token` signs (10 years).
pub const MAX_TTL_SECS: u64 = 3_650 * 86_400;

/// `90`, `90s`, `15m`, `2h`, `7d`: a lifetime, at most `MAX_TTL_SECS`.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?}: expected a number with s, m, h or d, like 2h"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit is s, m, h or d")),
    };
    n.checked_mul(scale)
        .filter(|secs| *secs <= MAX_TTL_SECS)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long: at most {}d", MAX_TTL_SECS / 86_400))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Auth;

    #[test]
    fn a_signed_token_is_one_the_gateway_accepts_with_its_claims() {
        let secret = "s".repeat(32);
        let auth = Auth {
            jwt_secret: Some(secret.clone()),
            ..Auth::default()
        };
        let verifier = super::super::jwt::JwtVerifier::new(&auth)
            .expect("keys")
            .expect("a verifier");
        let now = crate::clock::now_secs() as u64;
        let claims = TokenClaims {
            user: "alice".into(),
            nick: Some("Alice".into()),
            rooms: Some(vec!["lobby".into()]),
            ttl: Duration::from_secs(3_600),
            ..TokenClaims::default()
        };
        let token = sign_hs256(&secret, &claims, now).expect("signed");
        let c = verifier.verify(&token).expect("accepted");
        assert_eq!(c.sub.as_deref(), Some("alice"));
        assert_eq!(c.nick.as_deref(), Some("Alice"));
        assert_eq!(c.rooms, Some(vec!["lobby".to_string()]));
        assert_eq!(c.exp, Some(now + 3_600));
        assert!(verifier
            .verify(&sign_hs256(&"t".repeat(32), &claims, now).expect("signed"))
            .is_err());
        let bad = |user: &str| TokenClaims {
            user: user.into(),
            ..claims.clone()
        };
        assert!(sign_hs256(&secret, &bad("bad id\n"), now).is_err());
        assert!(
            sign_hs256(&secret, &bad("guest-0123"), now).is_err(),
            "guest ids are the gateway's"
        );
    }

    #[test]
    fn lifetimes() {
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("2h"), Ok(Duration::from_secs(7_200)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("99999999999999999999d").is_err());
        assert!(parse_ttl("213503982334601d").is_err());
        assert!(parse_ttl("3650d").is_ok() && parse_ttl("3651d").is_err());
    }
}
