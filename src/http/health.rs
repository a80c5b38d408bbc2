//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the store answers too).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::HttpState;

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<HttpState>) -> (StatusCode, Json<Value>) {
    let store = state.rooms.store();
    match tokio::time::timeout(std::time::Duration::from_secs(2), store.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "store": store.backend() })),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "store": "unreachable" })),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "store": "timeout" })),
        ),
    }
}

/// `GET /metrics`: the Prometheus text format. Room gauges are read at scrape time.
pub async fn metrics(State(state): State<HttpState>) -> impl axum::response::IntoResponse {
    let (rooms, members) = state.rooms.counts();
    state.metrics.rooms_loaded.set(rooms as i64);
    state.metrics.room_members.set(members as i64);
    state
        .metrics
        .memory_budget_used_bytes
        .set(i64::try_from(state.budget.used()).unwrap_or(i64::MAX));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
