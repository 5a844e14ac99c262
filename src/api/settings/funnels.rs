//! Funnels: the sales stages a conversation moves through.

use crate::api::json::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{destroyed, text_field};
use crate::api::AppState;
use crate::api::extract::{JsonObject, PathParam, nullable, parse_fields, path_id, whole_number};
use crate::api::views::{FunnelView, Status};
use crate::auth::Caller;
use crate::domain::{FieldError, FieldErrors, FunnelId};
use crate::error::{ApiError, ApiResult, ErrorBody, NotFoundAs};
use crate::store::{FunnelChanges, NewFunnel};

/// `POST /funnels`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateFunnelRequest {
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = r"\S"
    )]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 16)]
    pub emoji: Option<Option<String>>,
    /// Where it sorts; after the last funnel when omitted.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub position: Option<i64>,
}

/// `PATCH /funnels/:uuid`: what is given changes (`emoji: null` clears it).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct UpdateFunnelRequest {
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 16)]
    pub emoji: Option<Option<String>>,
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub position: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FunnelList {
    pub funnels: Vec<FunnelView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FunnelEnvelope {
    pub funnel: FunnelView,
}

fn emoji_field(errors: &mut FieldErrors, emoji: Option<Option<String>>) -> Option<Option<String>> {
    match emoji {
        Some(Some(e)) if e.chars().count() > 16 => {
            errors.push(FieldError::new(
                "emoji",
                "too_long",
                "'emoji' may be at most 16 characters long",
            ));
            None
        }
        Some(Some(e)) if e.trim().is_empty() => Some(None),
        other => other,
    }
}

/// Positions order funnels; they stay within a range any client can show.
const MAX_POSITION: i64 = 1_000_000;

fn position_field(errors: &mut FieldErrors, position: Option<i64>) -> Option<i64> {
    match position {
        Some(p) if !(0..=MAX_POSITION).contains(&p) => {
            errors.push(FieldError::new(
                "position",
                "invalid_position",
                format!("'position' must be between 0 and {MAX_POSITION}"),
            ));
            None
        }
        other => other,
    }
}

#[utoipa::path(
    get,
    path = "/funnels",
    tag = "funnels",
    responses((status = 200, description = "Every funnel of the account", body = FunnelList))
)]
pub async fn list(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<FunnelList>> {
    let settings = app.store.settings(caller.account).await?;
    Ok(Json(FunnelList {
        funnels: settings.funnels.iter().map(FunnelView::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/funnels",
    tag = "funnels",
    request_body = CreateFunnelRequest,
    responses(
        (status = 200, description = "The created funnel", body = FunnelEnvelope),
        (status = 409, description = "It conflicts with an existing one", body = ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<FunnelEnvelope>> {
    let (request, mut errors) = parse_fields::<CreateFunnelRequest>(body, &[]);
    let name = text_field(&mut errors, "name", request.name, true);
    let emoji = emoji_field(&mut errors, request.emoji);
    let position = position_field(&mut errors, request.position);
    let Some(name) = name else {
        return Err(ApiError::validation(errors.into_vec()));
    };
    errors.finish(()).map_err(ApiError::validation)?;
    let funnel = NewFunnel {
        uuid: FunnelId::random(),
        name,
        emoji: emoji.flatten(),
        position,
    };
    let created = app.store.create_funnel(caller.account, &funnel).await?;
    Ok(Json(FunnelEnvelope {
        funnel: FunnelView::from(&created),
    }))
}

#[utoipa::path(
    get,
    path = "/funnels/{uuid}",
    tag = "funnels",
    params(("uuid" = FunnelId, Path, description = "The funnel")),
    responses((status = 200, description = "The funnel", body = FunnelEnvelope))
)]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
) -> ApiResult<Json<FunnelEnvelope>> {
    let id: FunnelId = path_id(&uuid, "funnel")?;
    let settings = app.store.settings(caller.account).await?;
    let funnel = settings.funnel(id).ok_or_else(|| {
        ApiError::not_found(format!("funnel '{uuid}' does not exist in this account"))
    })?;
    Ok(Json(FunnelEnvelope {
        funnel: FunnelView::from(funnel),
    }))
}

#[utoipa::path(
    patch,
    path = "/funnels/{uuid}",
    tag = "funnels",
    params(("uuid" = FunnelId, Path, description = "The funnel")),
    request_body = UpdateFunnelRequest,
    responses(
        (status = 200, description = "The updated funnel", body = FunnelEnvelope),
        (status = 409, description = "It conflicts with an existing one", body = ErrorBody),
    )
)]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<FunnelEnvelope>> {
    let id: FunnelId = path_id(&uuid, "funnel")?;
    let (request, mut errors) = parse_fields::<UpdateFunnelRequest>(body, &[]);
    let changes = FunnelChanges {
        name: text_field(&mut errors, "name", request.name, false),
        emoji: emoji_field(&mut errors, request.emoji),
        position: position_field(&mut errors, request.position),
    };
    errors.finish(()).map_err(ApiError::validation)?;
    let funnel = app
        .store
        .update_funnel(caller.account, id, &changes)
        .await
        .not_found_as("funnel", &uuid)?;
    Ok(Json(FunnelEnvelope {
        funnel: FunnelView::from(&funnel),
    }))
}

#[utoipa::path(
    delete,
    path = "/funnels/{uuid}",
    tag = "funnels",
    params(("uuid" = FunnelId, Path, description = "The funnel")),
    responses(
        (status = 200, description = "`{\"status\": \"funnel was destroyed\"}`", body = Status),
    )
)]
pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
) -> ApiResult<Json<Status>> {
    let id: FunnelId = path_id(&uuid, "funnel")?;
    app.store
        .delete_funnel(caller.account, id)
        .await
        .not_found_as("funnel", &uuid)?;
    Ok(destroyed("funnel was destroyed"))
}
