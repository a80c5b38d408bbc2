//! The admin console's files at `/admin` (docs/admin.md): a few static pages that sign in with a server-API
//! key and call the server API like any backend, so the console has no powers of its own. The files
//! (`src/http/console/`) are compiled into release builds by rust-embed; debug builds read them from the
//! source folder, so a console change needs only a reload. Served only when `[admin] enabled`.
//!
//! Every answer carries a Content-Security-Policy without inline script or style and with nothing but this
//! origin to talk to, so a message that slipped past the console's escaping still could not run or leak.

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::ApiError;

#[derive(rust_embed::RustEmbed)]
#[folder = "src/http/console/"]
struct Files;

/// Scripts, styles and requests from this origin only; no inline code, no plugins, no framing, no forms
/// posting elsewhere.
pub const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `/admin`, `/admin/` and `/admin/{file}`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/admin", get(index))
        .route("/admin/", get(index))
        .route("/admin/{file}", get(file))
}

async fn index() -> Response {
    serve("index.html")
}

async fn file(path: Result<Path<String>, axum::extract::rejection::PathRejection>) -> Response {
    match path {
        Ok(Path(name)) => serve(&name),
        Err(_) => ApiError::NotFound("no such console file".into()).into_response(),
    }
}

fn content_type(name: &str) -> Option<&'static str> {
    Some(match name.rsplit_once('.')?.1 {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => return None,
    })
}

fn serve(name: &str) -> Response {
    // One flat folder: a name with a slash, a backslash or a leading dot is no file of ours.
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && name.len() <= 64;
    let found = plain
        .then(|| Some((Files::get(name)?, content_type(name)?)))
        .flatten();
    let Some((file, kind)) = found else {
        return ApiError::NotFound("no such console file".into()).into_response();
    };
    (
        [
            (CONTENT_TYPE, kind),
            (CONTENT_SECURITY_POLICY, CSP),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (REFERRER_POLICY, "no-referrer"),
            (X_FRAME_OPTIONS, "DENY"),
            (CACHE_CONTROL, "no-cache"),
        ],
        file.data.into_owned(),
    )
        .into_response()
}
