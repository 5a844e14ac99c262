//! Funnels: the sales stages a conversation moves through.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{destroyed, text_field};
use crate::api::AppState;
use crate::api::extract::{JsonObject, PathParam, nullable, parse_fields, path_id};
use crate::api::views::{FunnelView, Status};
use crate::auth::Caller;
use crate::domain::{FieldError, FieldErrors, FunnelId};
use crate::error::{ApiError, ApiResult, NotFoundAs};
use crate::store::{FunnelChanges, NewFunnel};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FunnelRequest {
    pub name: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub emoji: Option<Option<String>>,
    pub position: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct FunnelList {
    pub funnels: Vec<FunnelView>,
}

#[derive(Debug, Serialize)]
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

pub async fn list(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<FunnelList>> {
    let settings = app.store.settings(caller.account).await?;
    Ok(Json(FunnelList {
        funnels: settings.funnels.iter().map(FunnelView::from).collect(),
    }))
}

pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<FunnelEnvelope>> {
    let (request, mut errors) = parse_fields::<FunnelRequest>(body, &[]);
    let name = text_field(&mut errors, "name", request.name, true);
    let emoji = emoji_field(&mut errors, request.emoji);
    let Some(name) = name else {
        return Err(ApiError::validation(errors.into_vec()));
    };
    errors.finish(()).map_err(ApiError::validation)?;
    let funnel = NewFunnel {
        uuid: FunnelId::random(),
        name,
        emoji: emoji.flatten(),
        position: request.position,
    };
    let created = app.store.create_funnel(caller.account, &funnel).await?;
    Ok(Json(FunnelEnvelope {
        funnel: FunnelView::from(&created),
    }))
}

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

pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<FunnelEnvelope>> {
    let id: FunnelId = path_id(&uuid, "funnel")?;
    let (request, mut errors) = parse_fields::<FunnelRequest>(body, &[]);
    let changes = FunnelChanges {
        name: text_field(&mut errors, "name", request.name, false),
        emoji: emoji_field(&mut errors, request.emoji),
        position: request.position,
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
