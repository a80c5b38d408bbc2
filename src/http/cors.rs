//! Cross-origin answers (`[cors] origins`) for the routes a web page calls with a member's bearer token or a
//! capability URL: the members' API, WHIP, WHEP and their resources (`routes::crosses_origins`). A page of
//! another origin may send `Authorization` and `Content-Type` and read `Location` and `x-odd-stream` (what a
//! WHIP client such as odd.js v2.5.08 needs). Never credentials: no cookie is ever involved. The server API
//! and the admin console get no CORS answers, so another site's page cannot use them from a browser.
//!
//! Origins are compared as browsers send them (`Cors::normalize`: lower case, no default port). A list of
//! origins (not `*`) also decides which pages may open the WebSocket (`ws.rs`): a WebSocket is not subject
//! to CORS, so without this any page could open one (harmless with tokens, but not what a list says).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Cors;

/// The configured origins, normalized.
#[derive(Clone, Debug)]
pub struct Origins {
    any: bool,
    listed: Arc<[String]>,
}

impl Origins {
    pub fn new(configured: &[String]) -> Origins {
        Origins {
            any: configured.iter().any(|o| o == "*"),
            listed: configured
                .iter()
                .filter_map(|o| Cors::normalize(o).ok())
                .collect(),
        }
    }

    /// What the start-up log says.
    pub fn describe(&self) -> String {
        match (self.any, self.listed.is_empty()) {
            (true, _) => "any origin".into(),
            (false, true) => "none (no cross-origin answers)".into(),
            (false, false) => self.listed.join(", "),
        }
    }

    /// Whether a page of `origin` (its `Origin` header) may call the cross-origin routes.
    pub fn allows(&self, origin: &HeaderValue) -> bool {
        self.any
            || origin
                .to_str()
                .ok()
                .and_then(|o| Cors::normalize(o).ok())
                .is_some_and(|o| self.listed.contains(&o))
    }

    /// Whether a browser's WebSocket from `origin` may open: always, unless origins are listed one by one.
    pub fn allows_websocket(&self, origin: Option<&HeaderValue>) -> bool {
        self.any || self.listed.is_empty() || origin.is_none_or(|o| self.allows(o))
    }

    /// The layer; `None` when no origin may call (an empty list).
    pub fn layer(&self) -> Option<CorsLayer> {
        if !self.any && self.listed.is_empty() {
            return None;
        }
        let allow = if self.any {
            AllowOrigin::any()
        } else {
            let me = self.clone();
            AllowOrigin::predicate(move |origin, _| me.allows(origin))
        };
        Some(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .expose_headers([header::LOCATION, HeaderName::from_static("x-odd-stream")])
                .max_age(Duration::from_secs(600)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_matches_as_browsers_send_origins_and_bounds_websockets() {
        let o = Origins::new(&[
            "https://App.Example:443".into(),
            "http://127.0.0.1:8126".into(),
        ]);
        let h = HeaderValue::from_static;
        assert!(o.allows(&h("https://app.example")));
        assert!(o.allows(&h("http://127.0.0.1:8126")));
        assert!(!o.allows(&h("http://127.0.0.1:8127")));
        assert!(!o.allows(&h("null")));
        assert!(o.allows_websocket(None), "no Origin: not a browser");
        assert!(!o.allows_websocket(Some(&h("https://evil.example"))));
        let any = Origins::new(&["*".into()]);
        assert!(any.allows(&h("null")) && any.allows_websocket(Some(&h("https://evil.example"))));
        let none = Origins::new(&[]);
        assert!(none.layer().is_none());
        assert!(
            none.allows_websocket(Some(&h("https://x.example"))),
            "[] leaves the WebSocket alone"
        );
    }
}
