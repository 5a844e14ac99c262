//! Liveness and readiness probes, outside `/v1` and without a key, for
//! load balancers and orchestrators.

use axum::extract::State;
use serde::Serialize;

use super::AppState;
use super::json::Json;
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Serialize)]
pub struct ProbeStatus {
    pub status: &'static str,
}

/// `GET /healthz`: the process is up and answering.
pub async fn healthz() -> Json<ProbeStatus> {
    Json(ProbeStatus { status: "ok" })
}

/// `GET /readyz`: the database answers reads and writes and has every
/// migration this build needs; 503 `storage_unavailable` otherwise.
pub async fn readyz(State(app): State<AppState>) -> ApiResult<Json<ProbeStatus>> {
    match app.store.check_ready().await {
        Ok(()) => Ok(Json(ProbeStatus { status: "ready" })),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            Err(ApiError::unavailable())
        }
    }
}
