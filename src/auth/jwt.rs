//! JWT verification: HS256 with a shared secret, and RS256/RS384/RS512/PS256, ES256/ES384 and EdDSA with
//! public keys from PEM files or a JWKS file (re-read periodically, so keys can be rotated without a restart).
//!
//! Every token needs `exp`; `nbf` is honoured when present; `iss` and `aud` are required to match when
//! configured. Keys are chosen by the token's algorithm family (and `kid`, when both the token and the JWKS
//! key have one), so an RSA public key can never be used as an HMAC secret (the classic algorithm confusion).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::AuthError;
use crate::config::Auth;

/// Which keys can verify which algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

fn family(alg: Algorithm) -> Family {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Family::Hmac,
        Algorithm::ES256 | Algorithm::ES384 => Family::Ec,
        Algorithm::EdDSA => Family::Ed,
        _ => Family::Rsa,
    }
}

struct Key {
    family: Family,
    kid: Option<String>,
    key: DecodingKey,
}

/// The claims the gateway reads.
#[derive(Debug, Deserialize)]
pub(super) struct Claims {
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub nick: Option<String>,
    #[serde(default)]
    pub avatar: Option<String>,
    #[serde(default)]
    pub rooms: Option<Vec<String>>,
    #[serde(default)]
    pub exp: Option<u64>,
}

pub(super) struct JwtVerifier {
    /// Secret and PEM keys (fixed) followed by the JWKS keys (replaced on every reload).
    fixed: Vec<Key>,
    jwks: Arc<RwLock<Vec<Key>>>,
    jwks_file: Option<PathBuf>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl JwtVerifier {
    /// `None` when no JWT key of any kind is configured. A key file that cannot be read is a startup error.
    pub fn new(auth: &Auth) -> Result<Option<JwtVerifier>, String> {
        let mut fixed = Vec::new();
        if let Some(secret) = auth.jwt_secret.as_deref().filter(|s| !s.is_empty()) {
            fixed.push(Key {
                family: Family::Hmac,
                kid: None,
                key: DecodingKey::from_secret(secret.as_bytes()),
            });
        }
        for path in &auth.jwt_public_keys {
            fixed.push(pem_key(path)?);
        }
        let jwks = match &auth.jwks_file {
            Some(path) => read_jwks(path)?,
            None => Vec::new(),
        };
        if fixed.is_empty() && jwks.is_empty() && auth.jwks_file.is_none() {
            return Ok(None);
        }
        Ok(Some(JwtVerifier {
            fixed,
            jwks: Arc::new(RwLock::new(jwks)),
            jwks_file: auth.jwks_file.clone(),
            issuer: auth.jwt_issuer.clone(),
            audience: auth.jwt_audience.clone(),
        }))
    }

    /// Re-reads the JWKS file; on failure the previous keys stay (and the failure is returned for the log).
    pub fn reload(&self) -> Result<usize, String> {
        let Some(path) = &self.jwks_file else {
            return Ok(0);
        };
        let keys = read_jwks(path)?;
        let n = keys.len();
        *self.jwks.write().unwrap_or_else(|e| e.into_inner()) = keys;
        Ok(n)
    }

    pub fn has_jwks(&self) -> bool {
        self.jwks_file.is_some()
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("not a valid JWT".into()))?;
        let fam = family(header.alg);
        let mut validation = Validation::new(header.alg);
        validation.set_required_spec_claims(&["exp"]);
        validation.leeway = 5;
        validation.validate_nbf = true;
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        let jwks = self.jwks.read().unwrap_or_else(|e| e.into_inner());
        let candidates = self
            .fixed
            .iter()
            .chain(jwks.iter())
            .filter(|k| k.family == fam)
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            });
        let mut last = AuthError::Invalid(match fam {
            Family::Hmac => "no HMAC secret is configured".into(),
            _ => format!("no key for {:?} is configured", header.alg),
        });
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => {
                    last = match e.kind() {
                        ErrorKind::ExpiredSignature => return Err(AuthError::Expired),
                        ErrorKind::ImmatureSignature => {
                            return Err(AuthError::Invalid(
                                "the token is not valid yet (nbf)".into(),
                            ))
                        }
                        ErrorKind::InvalidIssuer => {
                            return Err(AuthError::Invalid("wrong issuer (iss)".into()))
                        }
                        ErrorKind::InvalidAudience => {
                            return Err(AuthError::Invalid("wrong audience (aud)".into()))
                        }
                        ErrorKind::MissingRequiredClaim(c) => {
                            return Err(AuthError::Invalid(format!("missing claim `{c}`")))
                        }
                        ErrorKind::Json(_) => {
                            return Err(AuthError::Invalid("claims of the wrong type".into()))
                        }
                        ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".into()),
                        _ => AuthError::Invalid("not a valid JWT".into()),
                    }
                }
            }
        }
        Err(last)
    }
}

/// A public key from a PEM file: RSA, EC (P-256/P-384) or Ed25519, whichever it is.
fn pem_key(path: &Path) -> Result<Key, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (family, key) = if let Ok(k) = DecodingKey::from_rsa_pem(&pem) {
        (Family::Rsa, k)
    } else if let Ok(k) = DecodingKey::from_ec_pem(&pem) {
        (Family::Ec, k)
    } else if let Ok(k) = DecodingKey::from_ed_pem(&pem) {
        (Family::Ed, k)
    } else {
        return Err(format!(
            "{} is not an RSA, EC or Ed25519 public key in PEM",
            path.display()
        ));
    };
    Ok(Key {
        family,
        kid: None,
        key,
    })
}

fn read_jwks(path: &Path) -> Result<Vec<Key>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let set: JwkSet = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a JWKS: {e}", path.display()))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let family = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Family::Rsa,
            AlgorithmParameters::EllipticCurve(_) => Family::Ec,
            AlgorithmParameters::OctetKeyPair(_) => Family::Ed,
            // Shared secrets do not belong in a key set fetched from elsewhere.
            AlgorithmParameters::OctetKey(_) => continue,
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => keys.push(Key {
                family,
                kid: jwk.common.key_id.clone(),
                key,
            }),
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "skipping a JWKS key"),
        }
    }
    Ok(keys)
}
