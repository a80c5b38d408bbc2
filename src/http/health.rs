//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the store answers too).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::HttpState;
use crate::metrics::Metrics;
use crate::store::Store;

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<HttpState>) -> (StatusCode, Json<Value>) {
    let store = state.rooms.store();
    match check_store(store, &state.metrics).await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "store": store.backend() })),
        ),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "store": why })),
        ),
    }
}

/// Can the store answer *and* commit? Sets `odd_gateway_store_up` and logs each change of state with the
/// reason, so a read-only disk or a lost database shows as a state, not only as failed sends.
pub async fn check_store(store: &Store, metrics: &Metrics) -> Result<(), String> {
    let wait = std::time::Duration::from_secs(2);
    let result = match tokio::time::timeout(wait, async {
        store.ping().await?;
        store.probe_write("readiness").await
    })
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    let was_up = metrics.store_up.get() == 1;
    match &result {
        Ok(()) if !was_up => tracing::info!("store available again"),
        Err(why) if was_up => {
            tracing::error!(error = %why, "store unavailable: sends and joins fail until it returns")
        }
        _ => {}
    }
    metrics.store_up.set(i64::from(result.is_ok()));
    result
}

/// Checks the store every `every` until `stop`, so the gauge and the log follow it even when nobody asks.
pub async fn watch_store(
    store: Store,
    metrics: std::sync::Arc<Metrics>,
    every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let _ = check_store(&store, &metrics).await;
    }
}

/// `GET /metrics`: the Prometheus text format. Room gauges are read at scrape time. Where a key is needed
/// (prod, unless configured otherwise) an unkeyed scrape gets `401`.
pub async fn metrics(
    State(state): State<HttpState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if state.metrics_need_key && !scrape_key_ok(&state, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({
                "error": "/metrics needs a metrics or server-API key (X-API-Key or Authorization: Bearer)",
                "code": "unauthorized"
            })),
        )
            .into_response();
    }
    metrics_text(&state).into_response()
}

/// A metrics-only or server-API key in `X-API-Key` or as a bearer token.
fn scrape_key_ok(state: &HttpState, headers: &axum::http::HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let presented = header(super::server_api::API_KEY_HEADER)
        .or_else(|| {
            // The scheme is case-insensitive (RFC 9110 11.1).
            header("authorization")
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, key)| key)
        })
        .map(str::trim)
        .unwrap_or("");
    !presented.is_empty() && state.server_api.scrape_key_name(presented).is_some()
}

/// Sets the gauges that are read rather than counted: rooms and members present, the bus, the memory budget.
pub fn refresh_gauges(
    rooms: &crate::rooms::Rooms,
    metrics: &crate::metrics::Metrics,
    budget: &crate::transport::MemoryBudget,
) {
    let (loaded, members) = rooms.counts();
    metrics.rooms_loaded.set(loaded as i64);
    metrics.room_members.set(members as i64);
    // Read at scrape time: the same check that routes posts (a node whose bus is down commits locally).
    let up = rooms.bus().cluster().is_none_or(|bus| bus.connected());
    metrics.bus_connected.set(i64::from(up));
    metrics
        .memory_budget_used_bytes
        .set(i64::try_from(budget.used()).unwrap_or(i64::MAX));
}

fn metrics_text(state: &HttpState) -> impl axum::response::IntoResponse {
    refresh_gauges(&state.rooms, &state.metrics, &state.budget);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
