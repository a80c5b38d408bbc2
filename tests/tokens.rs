//! Production tokens over real sockets: ES256 and EdDSA public keys from PEM files, a JWKS file re-read for
//! key rotation, `nbf`, `iss`, `aud`, algorithm confusion, `exp` ending a live connection, and `refresh`.

mod common;

use std::time::Duration;

use common::{Raw, TestGateway};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// base64url without padding (for the JWKS coordinates).
fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

struct Signer {
    alg: Algorithm,
    key: EncodingKey,
    kid: Option<String>,
}

impl Signer {
    fn token(&self, claims: Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, &claims, &self.key).expect("sign")
    }
    fn for_user(&self, sub: &str, exp_in: u64) -> String {
        self.token(json!({"sub": sub, "exp": now() + exp_in}))
    }
}

/// A fresh key pair: the signer and the public key PEM.
fn ec_key() -> (Signer, rcgen::KeyPair) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ec key");
    let signer = Signer {
        alg: Algorithm::ES256,
        key: EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).expect("ec pem"),
        kid: None,
    };
    (signer, kp)
}

fn jwks(kid: &str, kp: &rcgen::KeyPair) -> String {
    let raw = kp.public_key_raw();
    // Uncompressed point: 0x04 || X (32) || Y (32).
    json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
        "x": b64url(&raw[1..33]), "y": b64url(&raw[33..65])}]})
    .to_string()
}

async fn connect(gw: &TestGateway, token: &str) -> (Raw, common::RawCommand) {
    let mut raw = Raw::open(gw).await;
    raw.command(
        0,
        1,
        &format!(r#"{{"name":"connect","uuid":"","parameters":{{"token":"{token}"}}}}"#),
    )
    .await;
    let answer = raw.answer_to(1).await.expect("connect answer");
    (raw, answer)
}

async fn accepted(gw: &TestGateway, token: &str) -> bool {
    connect(gw, token).await.1.code() == "NetConnection.Connect.Success"
}

async fn refused_because(gw: &TestGateway, token: &str) -> String {
    let (_, a) = connect(gw, token).await;
    assert_eq!(a.code(), "NetConnection.Connect.Rejected", "{:?}", a.args);
    a.description().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_key_tokens_nbf_iss_aud_and_rotation() {
    let dir = tempfile::tempdir().expect("dir");
    let (es, es_kp) = ec_key();
    let ed_kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed key");
    let ed = Signer {
        alg: Algorithm::EdDSA,
        key: EncodingKey::from_ed_pem(ed_kp.serialize_pem().as_bytes()).expect("ed pem"),
        kid: None,
    };
    let (mut rot1, rot1_kp) = ec_key();
    rot1.kid = Some("k1".into());
    let (mut rot2, rot2_kp) = ec_key();
    rot2.kid = Some("k2".into());
    let es_pem = dir.path().join("es.pem");
    let ed_pem = dir.path().join("ed.pem");
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&es_pem, es_kp.public_key_pem()).expect("write");
    std::fs::write(&ed_pem, ed_kp.public_key_pem()).expect("write");
    std::fs::write(&jwks_path, jwks("k1", &rot1_kp)).expect("write");
    let (p1, p2, p3) = (es_pem.clone(), ed_pem.clone(), jwks_path.clone());
    let gw = TestGateway::start_with(move |c| {
        c.auth.anonymous = Some(false);
        c.auth.jwt_public_keys = vec![p1, p2];
        c.auth.jwks_file = Some(p3);
        c.auth.jwks_refresh_secs = 1;
        c.auth.jwt_issuer = Some("https://auth.example".into());
        c.auth.jwt_audience = Some("odd".into());
    })
    .await;
    let claims = |sub: &str| json!({"sub": sub, "exp": now() + 600, "iss": "https://auth.example", "aud": "odd"});

    assert!(
        accepted(&gw, &es.token(claims("alice"))).await,
        "ES256 from PEM"
    );
    assert!(
        accepted(&gw, &ed.token(claims("bob"))).await,
        "EdDSA from PEM"
    );
    assert!(
        accepted(&gw, &rot1.token(claims("carol"))).await,
        "ES256 from JWKS by kid"
    );
    // The HTTP API takes the same tokens.
    let r = reqwest::Client::new()
        .get(format!(
            "{}/api/users/alice/conversations/bob/messages",
            gw.http_url()
        ))
        .bearer_auth(es.token(claims("alice")))
        .send()
        .await
        .expect("http");
    assert_eq!(r.status(), 200);

    let mut wrong_iss = claims("alice");
    wrong_iss["iss"] = json!("https://evil.example");
    assert!(refused_because(&gw, &es.token(wrong_iss))
        .await
        .contains("iss"));
    let mut wrong_aud = claims("alice");
    wrong_aud["aud"] = json!("other");
    assert!(refused_because(&gw, &es.token(wrong_aud))
        .await
        .contains("aud"));
    let mut early = claims("alice");
    early["nbf"] = json!(now() + 600);
    assert!(refused_because(&gw, &es.token(early)).await.contains("nbf"));
    // Algorithm confusion: an HS256 token "signed" with the public key as the HMAC secret.
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("mallory"),
        &EncodingKey::from_secret(es_kp.public_key_pem().as_bytes()),
    )
    .expect("sign");
    assert!(!accepted(&gw, &confused).await);

    // Rotation: the JWKS file now holds k2 only; within a refresh period k1 stops working and k2 works.
    std::fs::write(&jwks_path, jwks("k2", &rot2_kp)).expect("rotate");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while accepted(&gw, &rot1.token(claims("carol"))).await {
        assert!(tokio::time::Instant::now() < deadline, "k1 still accepted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        accepted(&gw, &rot2.token(claims("carol"))).await,
        "k2 after rotation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exp_ends_a_live_connection_unless_refreshed() {
    let dir = tempfile::tempdir().expect("dir");
    let (es, kp) = ec_key();
    let pem = dir.path().join("es.pem");
    std::fs::write(&pem, kp.public_key_pem()).expect("write");
    let gw = TestGateway::start_with(move |c| {
        c.auth.anonymous = Some(false);
        c.auth.jwt_public_keys = vec![pem];
    })
    .await;
    // Both expire in 1 s (plus the 5 s leeway); only the second sends a fresh token in time.
    let (mut stale, a) = connect(&gw, &es.for_user("alice", 1)).await;
    assert_eq!(a.code(), "NetConnection.Connect.Success");
    let (mut fresh, b) = connect(&gw, &es.for_user("bob", 1)).await;
    assert_eq!(b.code(), "NetConnection.Connect.Success");

    // A token for someone else is refused, and the connection stays.
    fresh
        .command(
            0,
            2,
            &format!(
                r#"{{"name":"refresh","token":"{}"}}"#,
                es.for_user("alice", 3600)
            ),
        )
        .await;
    let other = fresh.answer_to(2).await.expect("answer");
    assert_eq!(other.code(), "NetConnection.Call.Failed");
    assert!(
        other.description().contains("refresh refused"),
        "{:?}",
        other.args
    );
    let new_exp = now() + 3600;
    fresh
        .command(
            0,
            3,
            &format!(
                r#"{{"name":"refresh","token":"{}"}}"#,
                es.token(json!({"sub": "bob", "exp": new_exp}))
            ),
        )
        .await;
    let ok = fresh.answer_to(3).await.expect("answer");
    assert_eq!(ok.code(), "NetConnection.Call.Success", "{:?}", ok.args);
    assert_eq!(ok.args["info"]["expires"], json!(new_exp));

    let closed = stale.answer_to(0).await;
    let closed = match closed {
        Some(c) => c,
        // answer_to waits 5 s per frame; the expiry is ~6 s away.
        None => stale.answer_to(0).await.expect("the expiry status"),
    };
    assert_eq!(closed.code(), "NetConnection.Connect.Closed");
    assert!(closed.description().contains("token expired"));
    assert!(stale.closed().await);
    // The refreshed connection is still served after the old expiry.
    fresh
        .command(0, 4, r#"{"name":"getProperty","keys":["x"]}"#)
        .await;
    assert_eq!(
        fresh.answer_to(4).await.expect("still served").code(),
        "NetConnection.Call.Success"
    );
}
