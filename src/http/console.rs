//! The admin console's files at `/admin` (docs/admin.md): a few static pages that sign in with a server-API
//! key and call the server API like any backend, so the console has no powers of its own. The files
//! (`src/http/console/`) are compiled into release builds by rust-embed; debug builds read them from the
//! source folder, so a console change needs only a reload. Served only when `[admin] enabled`.
//!
//! Every answer under `/admin` carries a Content-Security-Policy without inline script or style and with
//! nothing but this origin to talk to (`headers.rs`), so a message that slipped past the console's escaping
//! still could not run or leak. The page itself is never stored (`no-store`: no back/forward-cache copy of
//! a signed-in console); its scripts and styles are revalidated (`no-cache`).

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::ApiError;

#[derive(rust_embed::RustEmbed)]
#[folder = "src/http/console/"]
struct Files;

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
    let cache = if kind.starts_with("text/html") {
        "no-store"
    } else {
        "no-cache"
    };
    (
        [(CONTENT_TYPE, kind), (CACHE_CONTROL, cache)],
        file.data.into_owned(),
    )
        .into_response()
}
