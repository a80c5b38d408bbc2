//! Hooks: the gateway asks or tells the app's backend over HTTP (docs/hooks.md). Every request is a JSON POST
//! signed with HMAC-SHA256 over its body (`X-Odd-Signature: sha256=<hex>`, key `[hooks] secret`), so the
//! backend can tell the gateway from anyone else.

mod auth;
mod connect;
mod events;
pub mod http;
mod message;
mod pace;
mod publish;

pub use auth::Authenticator;
pub use connect::{ConnectHook, ConnectOutcome};
pub use events::{events_hook, EventLog, EventTasks};
pub use message::{Kind, MessageHook};
pub use publish::{Asked, PublishHook, Verdict};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "x-odd-signature";

/// POSTs `body` (JSON) to `url`, signed with `secret`: how every hook calls the backend.
pub async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    secret: &[u8],
    body: String,
) -> Result<reqwest::Response, reqwest::Error> {
    http.post(url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, signature(secret, body.as_bytes()))
        .body(body)
        .send()
        .await
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    /// RFC 4231 test case 2.
    #[test]
    fn signature_is_hmac_sha256() {
        assert_eq!(
            super::signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
