//! WHIP and WHEP (RFC 9725 and its playback twin): `POST /whip/{app}` publishes an SDP offer to the SFU,
//! `POST /whep/{stream}` plays a publication from the player's offer, `DELETE` on the `Location` they answer
//! ends either. The same SFU and the same names as the signaling pipes, so a stream published one way plays
//! the other way. Bearer tokens as the rest of the API; rights as on the pipes (`w` to publish to an app that
//! names a room, `r` to play one). docs/rtc.md.

use super::error::segment;
use axum::extract::rejection::PathRejection;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::principal;
use super::error::ApiError;
use super::whip_origin::Origin;
use super::HttpState;
use crate::rooms::Act;
use crate::sfu::{Notify, PeerKey, SfuError, SfuEvent, StreamName};

/// Longest SDP accepted (a browser's offer is 3-8 KiB).
const MAX_SDP: usize = 64 * 1024;

/// WHEP playbacks one user may hold at once (a page showing a grid of streams).
const MAX_PLAYS_PER_USER: usize = 16;

/// The WHIP/WHEP resources alive now, each with who made it (a user, or for guests their address: each
/// guest request is a new guest, so the per-user limits bound guests per address) and whether it publishes.
/// Resource ids are random: the `Location` URL is the capability to `DELETE` it, the WHIP way.
pub struct Resources {
    owners: Mutex<HashMap<u64, (String, bool)>>,
    /// WHIP publications one user may hold at once (`rtc.max_publications_per_connection`).
    max_publications: usize,
}

impl Resources {
    pub fn new(max_publications: usize) -> Resources {
        Resources {
            owners: Mutex::new(HashMap::new()),
            max_publications: max_publications.max(1),
        }
    }

    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (String, bool)>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new resource of `user`'s, unless they hold as many of that kind as they may.
    fn claim(&self, user: &str, publishes: bool) -> Result<u64, ApiError> {
        let limit = if publishes {
            self.max_publications
        } else {
            MAX_PLAYS_PER_USER
        };
        let mut owners = self.owners();
        let held = owners
            .values()
            .filter(|(u, p)| u == user && *p == publishes)
            .count();
        if held >= limit {
            return Err(ApiError::Forbidden(format!(
                "at most {limit} {} per user",
                if publishes {
                    "WHIP publications"
                } else {
                    "WHEP playbacks"
                }
            )));
        }
        // 64 random bits: a resource's URL cannot be guessed (ids are never reused while alive).
        let id = loop {
            let id: u64 = rand::random();
            if !owners.contains_key(&id) {
                break id;
            }
        };
        owners.insert(id, (user.to_string(), publishes));
        Ok(id)
    }
}

fn sfu_error(e: SfuError) -> ApiError {
    match e {
        SfuError::NotFound(_) | SfuError::OtherNode(..) => ApiError::NotFound(e.to_string()),
        SfuError::Limit(_) => ApiError::Forbidden(e.to_string()),
        SfuError::Off => ApiError::NotFound(e.to_string()),
        _ => ApiError::BadRequest(e.to_string()),
    }
}

/// The offer in the body, after its content type; read once the caller is authenticated (`body.rs`).
async fn offer(
    state: &HttpState,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<String, ApiError> {
    let sdp = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // The media type, case-insensitively (RFC 9110 8.3.1); parameters after `;` are allowed.
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"))
        });
    if !sdp {
        return Err(ApiError::BadRequest(
            "Content-Type must be application/sdp".into(),
        ));
    }
    let body = super::body::read(state, headers, body, MAX_SDP).await?;
    String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::BadRequest("the offer is not UTF-8".into()))
}

/// A resource's end (failure, or its publication ended) forgets it.
fn forget_on_end(resources: &Arc<Resources>, id: u64) -> Notify {
    let resources = resources.clone();
    Arc::new(move |_: SfuEvent| {
        resources.owners().remove(&id);
    })
}

/// `201 Created` for resource `id` with the SFU's answer and the stream's name; if the SFU refused, the
/// resource is given back.
fn answered(
    state: &HttpState,
    id: u64,
    sfu: Result<(String, String), SfuError>,
    at: &Origin,
) -> Result<Response, ApiError> {
    let (answer, stream) = sfu.map_err(|e| {
        state.rtc_resources.owners().remove(&id);
        sfu_error(e)
    })?;
    Ok(created(id, answer, &stream, at))
}

fn created(id: u64, answer: String, stream: &str, at: &Origin) -> Response {
    (
        StatusCode::CREATED,
        [
            (CONTENT_TYPE, "application/sdp".to_string()),
            (LOCATION, at.location(id, stream)),
            (
                axum::http::HeaderName::from_static("x-odd-stream"),
                stream.to_string(),
            ),
        ],
        answer,
    )
        .into_response()
}

/// `POST /whip/{app}`: publish.
pub async fn publish(
    State(state): State<HttpState>,
    path: Result<Path<String>, PathRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    at: Origin,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let app = segment(path)?;
    let p = principal(&state, &headers).await?;
    if !StreamName::valid_app(&app) {
        return Err(ApiError::BadRequest(
            "app: 1 to 128 characters, no `@`, markup (< > & \" ' \\) or control characters".into(),
        ));
    }
    let sdp = offer(&state, &headers, body).await?;
    state
        .rooms
        .authorize_stream(&app, &p.user.id, &p.rooms, Act::Publish)
        .await
        .map_err(ApiError::Room)?;
    let id = state.rtc_resources.claim(&owner(&p.user.id, peer), true)?;
    let published = state
        .sfu
        .publish(
            PeerKey::Http(id),
            sdp,
            &app,
            forget_on_end(&state.rtc_resources, id),
        )
        .await;
    answered(&state, id, published.map(|p| (p.answer, p.stream)), &at)
}

/// `POST /whep/{stream}`: play. The stream as its whole name (percent-encoded or as is), or as
/// `{app}/{id}`: the id a WHIP publication's `Location` ends with, on this node's SFU (what odd.js v2.5.08
/// plays: its `Publish.Start` names the stream by that last segment, and it plays at `{whep}/{id}`).
pub async fn play(
    State(state): State<HttpState>,
    path: Result<Path<String>, PathRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    at: Origin,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let asked = segment(path)?;
    let p = principal(&state, &headers).await?;
    let sdp = offer(&state, &headers, body).await?;
    let (stream, name) = match StreamName::parse(&asked) {
        Some(name) => (asked, name),
        None => {
            let name = asked
                .rsplit_once('/')
                .and_then(|(app, id)| state.sfu.name_on_this_node(app, id))
                .ok_or_else(|| {
                    ApiError::NotFound(format!(
                        "{asked} is not a stream of an SFU: name it <id>@<ip:port>/<app> or <app>/<id>"
                    ))
                })?;
            (name.to_string(), name)
        }
    };
    state
        .rooms
        .authorize_stream(&name.app, &p.user.id, &p.rooms, Act::Play)
        .await
        .map_err(ApiError::Room)?;
    let id = state.rtc_resources.claim(&owner(&p.user.id, peer), false)?;
    let played = state
        .sfu
        .play_offered(
            PeerKey::Http(id),
            &stream,
            sdp,
            forget_on_end(&state.rtc_resources, id),
        )
        .await;
    answered(&state, id, played.map(|answer| (answer, stream)), &at)
}

/// `DELETE /rtc/resources/{id}`: ends a WHIP publication or WHEP playback. Whoever holds its `Location` URL
/// may (its id is random: the URL is the capability, as WHIP has it), a guest included; no token needed.
pub async fn delete(
    State(state): State<HttpState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    end(&state, segment(path)?).await
}

/// `DELETE /rtc/resources/{id}/{name}`: the same, at the URL a publication's `Location` gave (the name is
/// what clients that take the last segment for the stream's id read; the number is the capability).
pub async fn delete_named(
    State(state): State<HttpState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    end(&state, segment(path)?.0).await
}

/// `200 {"ended": true}`; `404` in the same words whether the resource ended already or never was (the
/// number, a capability, is not repeated back).
async fn end(state: &HttpState, id: String) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let gone = || ApiError::NotFound("no such resource: it has ended, or never was".into());
    let id: u64 = id.parse().map_err(|_| gone())?;
    if state.rtc_resources.owners().remove(&id).is_none() {
        return Err(gone());
    }
    state.sfu.close(PeerKey::Http(id)).await;
    Ok(axum::Json(serde_json::json!({ "ended": true })))
}

/// Whose a new resource counts as: the user's, or for a guest (a new one per request) its address's.
fn owner(user: &str, peer: SocketAddr) -> String {
    if user.starts_with(crate::auth::GUEST_PREFIX) {
        format!("guests from {}", peer.ip())
    } else {
        user.to_string()
    }
}
