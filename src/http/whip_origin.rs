//! Where a WHIP/WHEP resource lives, as the `Location` of its `201`: an absolute URL on the host the client
//! asked (`Host`, or HTTP/2's authority) with the scheme it came in by (`X-Forwarded-Proto` from a proxy
//! that ends TLS, else whether the listener was HTTPS). Absolute because a web page on another origin
//! resolves a relative `Location` against its own origin (odd.js v2.5.08 sends its `DELETE` there). A host
//! that is not plainly one (odd characters, user info) gets the path alone.
//!
//! The path ends with the stream's id (the part of its name before `@`): clients that take the last segment
//! for the stream's name (odd.js v2.5.08's `Publish.Start`) play it at `/whep/{app}/{id}`. The number before
//! it is the capability to end the resource.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::header::HOST;
use axum::http::request::Parts;

use super::Secure;

/// The scheme and host a resource's `Location` starts with; `None`: a path alone.
pub struct Origin {
    base: Option<String>,
}

impl Origin {
    /// The `Location` of resource `id` serving `stream`.
    pub fn location(&self, id: u64, stream: &str) -> String {
        let name = stream.split('@').next().unwrap_or_default();
        format!(
            "{}/rtc/resources/{id}/{name}",
            self.base.as_deref().unwrap_or("")
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Origin, Infallible> {
        // A proxy appends its own value: the last one is the proxy's (the first is whatever the client sent).
        let forwarded = parts
            .headers
            .get_all("x-forwarded-proto")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .map(|v| v.trim().to_ascii_lowercase());
        let scheme = match (forwarded.as_deref(), parts.uri.scheme_str()) {
            (Some("https"), _) | (None, Some("https")) => "https",
            (Some("http"), _) | (None, Some("http")) => "http",
            _ if parts.extensions.get::<Secure>().is_some_and(|s| s.0) => "https",
            _ => "http",
        };
        let host = match parts.uri.authority() {
            Some(a) => Some(a.as_str().to_string()),
            None => parts
                .headers
                .get(HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        };
        Ok(Origin {
            base: host
                .filter(|h| plain_host(h))
                .map(|h| format!("{scheme}://{h}")),
        })
    }
}

/// A host name or address with an optional port (`Cors::authority`): nothing that could make the URL point
/// elsewhere or fail to parse.
fn plain_host(h: &str) -> bool {
    crate::config::Cors::authority(h).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_hosts_make_absolute_urls() {
        for good in [
            "gw.example",
            "127.0.0.1:7180",
            "[::1]:7443",
            "[::1]",
            "localhost",
        ] {
            assert!(plain_host(good), "{good}");
        }
        for bad in [
            "",
            "evil.example/x?",
            "user@gw.example",
            "gw.example#",
            "a b",
            "gw\u{202e}",
            "a:b:c:[]",
            "]",
            "[::1",
            "...",
            "-",
            ":",
            "gw.example:99999",
            "gw.example:0",
            "gw.example:",
            "[zz]:1",
            "[::1]@evil.example",
            "[::1]#x",
            "[::1]?x",
            "[::1]/evil.example",
            "[::1]\\evil.example",
            "[::1]:",
            "[::1]:80:80",
        ] {
            assert!(!plain_host(bad), "{bad}");
        }
        let at = Origin {
            base: Some("https://gw.example".into()),
        };
        assert_eq!(
            at.location(42, "abc-2@203.0.113.5:7103/live"),
            "https://gw.example/rtc/resources/42/abc-2"
        );
        assert_eq!(
            Origin { base: None }.location(7, "x@1.2.3.4:5/im"),
            "/rtc/resources/7/x"
        );
    }
}
