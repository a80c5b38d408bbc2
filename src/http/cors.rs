//! Cross-origin answers (`[cors] origins`) for the routes a web page calls with a member's bearer token or a
//! capability URL: the members' API, WHIP, WHEP and their resources (`routes::crosses_origins`). A page of
//! another origin may send `Authorization` and `Content-Type` and read `Location` and `x-odd-stream` (what a
//! WHIP client such as odd.js v2.5.08 needs). Never credentials: no cookie is ever involved. The server API
//! and the admin console get no CORS answers, so another site's page cannot use them from a browser.

use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The layer for `origins` (`*` for any); `None` when the list is empty.
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
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
