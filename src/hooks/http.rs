//! The hooks' HTTP client, careful with a backend that misbehaves or was taken over:
//! - `https://` with rustls, trusting the system's roots and an optional `[hooks] ca_file`;
//! - **no redirects**: a 3xx is a failed call, logged with its target (a redirect would re-send the client's
//!   token and a valid signature to whatever host the answer names);
//! - answers read to a cap: the connect hook's JSON up to `CONNECT_ANSWER_MAX`, the other hooks' bodies (which
//!   mean nothing) read and dropped up to `IGNORED_ANSWER_MAX`, so a backend answering 100 MiB costs nothing.

use std::path::Path;
use std::time::Duration;

/// The most bytes of a connect hook's answer the gateway reads; a longer answer is a failed call.
pub const CONNECT_ANSWER_MAX: usize = 64 * 1024;
/// The most bytes of a message or offline hook's answer read (and dropped) before the connection is let go.
pub const IGNORED_ANSWER_MAX: usize = 64 * 1024;

/// A client for one hook: `timeout` for the whole call, no redirects, TLS with the system roots (plus
/// `ca_file`'s certificates).
pub fn client(timeout: Duration, ca_file: Option<&Path>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .use_rustls_tls();
    if let Some(path) = ca_file {
        for cert in crate::config::hook_ca_certificates(path)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| format!("hook HTTP client: {e}"))
}

/// Why a non-2xx answer failed the call; a redirect names where it pointed.
pub fn refusal(resp: &reqwest::Response) -> String {
    let status = resp.status();
    if status.is_redirection() {
        let to = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or("nowhere");
        let to = crate::transport::link::truncate_reason(to, 200);
        return format!("answered {status}, a redirect to {to:?}: hooks never follow redirects");
    }
    format!("answered {status}")
}

/// The answer's body, at most `max` bytes; longer is an error (and the rest is not read).
pub async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let too_long = || format!("answer longer than {max} bytes");
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX))
    {
        return Err(too_long());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_long());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads and drops an answer whose body means nothing, up to `IGNORED_ANSWER_MAX` (past it the connection is
/// dropped rather than read on).
pub async fn discard(mut resp: reqwest::Response) {
    let mut seen = 0;
    while let Ok(Some(chunk)) = resp.chunk().await {
        seen += chunk.len();
        if seen > IGNORED_ANSWER_MAX {
            return;
        }
    }
}
