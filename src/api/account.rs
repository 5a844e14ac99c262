//! `GET /auth/me`: whether the key works, and whose account it opens.

use crate::api::json::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

/// Callbell's shape, snake_case as documented.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub status: &'static str,
    pub user_email: String,
    pub user_name: String,
    /// The key's public prefix; the secret is never shown again.
    pub api_key: String,
}

#[utoipa::path(
    get,
    path = "/auth/me",
    tag = "account",
    responses((status = 200, description = "The key works: the account owner and the key's public prefix", body = Me))
)]
pub async fn me(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<Me>> {
    let settings = app.store.settings(caller.account).await?;
    let owner = settings
        .users
        .iter()
        .find(|u| u.owner)
        .ok_or_else(ApiError::internal)?;
    Ok(Json(Me {
        status: "ok",
        user_email: owner.email.clone(),
        user_name: owner.name.clone(),
        api_key: caller.key_prefix,
    }))
}
