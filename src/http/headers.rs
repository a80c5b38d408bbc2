//! Headers every HTTP answer carries unless its handler set them: `nosniff` (no answer is ever run or rendered
//! as something other than its type) and `Cache-Control: no-store` (API answers are per caller: a cache in
//! front must not keep a room's history or a user's data and hand it to the next request). Everything under
//! `/admin`, error answers included, also carries the console's policy (docs/admin.md).

use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

/// Scripts, styles and requests from this origin only; no inline code, no plugins, no framing, no forms
/// posting elsewhere.
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const COOP: HeaderName = HeaderName::from_static("cross-origin-opener-policy");

pub async fn defaults(req: Request, next: Next) -> Response {
    let console = req.uri().path() == "/admin" || req.uri().path().starts_with("/admin/");
    let mut res = next.run(req).await;
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        return res;
    }
    let h = res.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(CACHE_CONTROL, "no-store");
    if console {
        set(CONTENT_SECURITY_POLICY, CONSOLE_CSP);
        set(X_FRAME_OPTIONS, "DENY");
        set(REFERRER_POLICY, "no-referrer");
        set(COOP, "same-origin");
    }
    res
}
