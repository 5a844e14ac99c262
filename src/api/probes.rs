//! Liveness and readiness probes and the metrics, outside `/v1` and
//! without an API key, for load balancers, orchestrators and Prometheus.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use subtle::ConstantTimeEq;

use super::AppState;
use super::json::Json;
use crate::error::{ApiError, ApiResult};
use crate::store::StoreError;

#[derive(Debug, Serialize)]
pub struct ProbeStatus {
    pub status: &'static str,
}

/// `GET /healthz`: the process is up and answering.
pub async fn healthz() -> Json<ProbeStatus> {
    Json(ProbeStatus { status: "ok" })
}

/// `GET /readyz`: the database answers reads and writes and has every
/// migration this build needs; 503 `storage_full` when its disk is full,
/// `storage_unavailable` otherwise.
pub async fn readyz(State(app): State<AppState>) -> ApiResult<Json<ProbeStatus>> {
    match app.store.check_ready().await {
        Ok(()) => Ok(Json(ProbeStatus { status: "ready" })),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            match error {
                StoreError::Full(_) => Err(ApiError::storage_full()),
                _ => Err(ApiError::unavailable()),
            }
        }
    }
}

/// `GET /metrics`: Prometheus' text format; behind `--metrics-token` when
/// one is set.
pub async fn metrics(State(app): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(expected) = &app.metrics_token {
        let presented = crate::auth::bearer_token(
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        )
        .unwrap_or_default();
        let equal: bool = presented.as_bytes().ct_eq(expected.as_bytes()).into();
        if !equal {
            return ApiError::unauthorized(
                Some("invalid_token"),
                "the metrics need 'Authorization: Bearer <metrics token>'",
            )
            .into_response();
        }
    }
    let text = app.metrics.render(&app.sql_store).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
