//! Bots. A contact's `bot_status` needs an enabled one.

use crate::api::json::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{destroyed, text_field};
use crate::api::AppState;
use crate::api::extract::{JsonObject, PathParam, parse_fields, path_id, whole_number};
use crate::api::views::{BotView, Status};
use crate::auth::Caller;
use crate::domain::{FieldError, FieldErrors, PublicId};
use crate::error::{ApiError, ApiResult, ErrorBody, NotFoundAs};
use crate::store::{BotChanges, NewBot};

/// `POST /bots`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateBotRequest {
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = r"\S"
    )]
    pub name: Option<String>,
    /// Whether it answers conversations; true when omitted.
    pub enabled: Option<bool>,
    /// 1 when omitted.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub version: Option<i64>,
}

/// `PATCH /bots/:uuid`: what is given changes, the rest stays.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct UpdateBotRequest {
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub name: Option<String>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub version: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BotList {
    pub bots: Vec<BotView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BotEnvelope {
    pub bot: BotView,
}

/// Bot versions count up from 1; a bound keeps them plain integers everywhere.
const MAX_VERSION: i64 = 1_000_000;

fn version_field(errors: &mut FieldErrors, version: Option<i64>) -> Option<i64> {
    match version {
        Some(v) if !(1..=MAX_VERSION).contains(&v) => {
            errors.push(FieldError::new(
                "version",
                "invalid_version",
                format!("'version' must be between 1 and {MAX_VERSION}"),
            ));
            None
        }
        other => other,
    }
}

#[utoipa::path(
    get,
    path = "/bots",
    tag = "bots",
    responses((status = 200, description = "Every bot of the account", body = BotList))
)]
pub async fn list(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<BotList>> {
    let settings = app.store.settings(caller.account).await?;
    Ok(Json(BotList {
        bots: settings.bots.iter().map(BotView::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/bots",
    tag = "bots",
    request_body = CreateBotRequest,
    responses(
        (status = 200, description = "The created bot", body = BotEnvelope),
        (status = 409, description = "It conflicts with an existing one", body = ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<BotEnvelope>> {
    let (request, mut errors) = parse_fields::<CreateBotRequest>(body, &[]);
    let name = text_field(&mut errors, "name", request.name, true);
    let version = version_field(&mut errors, request.version);
    let Some(name) = name else {
        return Err(ApiError::validation(errors.into_vec()));
    };
    errors.finish(()).map_err(ApiError::validation)?;
    let bot = NewBot {
        uuid: PublicId::random(),
        name,
        enabled: request.enabled.unwrap_or(true),
        version: version.unwrap_or(1),
    };
    let created = app.store.create_bot(caller.account, &bot).await?;
    Ok(Json(BotEnvelope {
        bot: BotView::from(&created),
    }))
}

#[utoipa::path(
    get,
    path = "/bots/{uuid}",
    tag = "bots",
    params(("uuid" = PublicId, Path, description = "The bot")),
    responses((status = 200, description = "The bot", body = BotEnvelope))
)]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
) -> ApiResult<Json<BotEnvelope>> {
    let id: PublicId = path_id(&uuid, "bot")?;
    let settings = app.store.settings(caller.account).await?;
    let bot = settings.bots.iter().find(|b| b.uuid == id).ok_or_else(|| {
        ApiError::not_found(format!("bot '{uuid}' does not exist in this account"))
    })?;
    Ok(Json(BotEnvelope {
        bot: BotView::from(bot),
    }))
}

#[utoipa::path(
    patch,
    path = "/bots/{uuid}",
    tag = "bots",
    params(("uuid" = PublicId, Path, description = "The bot")),
    request_body = UpdateBotRequest,
    responses(
        (status = 200, description = "The updated bot", body = BotEnvelope),
        (status = 409, description = "It conflicts with an existing one", body = ErrorBody),
    )
)]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<BotEnvelope>> {
    let id: PublicId = path_id(&uuid, "bot")?;
    let (request, mut errors) = parse_fields::<UpdateBotRequest>(body, &[]);
    let changes = BotChanges {
        name: text_field(&mut errors, "name", request.name, false),
        enabled: request.enabled,
        version: version_field(&mut errors, request.version),
    };
    errors.finish(()).map_err(ApiError::validation)?;
    let bot = app
        .store
        .update_bot(caller.account, id, &changes)
        .await
        .not_found_as("bot", &uuid)?;
    Ok(Json(BotEnvelope {
        bot: BotView::from(&bot),
    }))
}

#[utoipa::path(
    delete,
    path = "/bots/{uuid}",
    tag = "bots",
    params(("uuid" = PublicId, Path, description = "The bot")),
    responses(
        (status = 200, description = "`{\"status\": \"bot was destroyed\"}`", body = Status),
    )
)]
pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
) -> ApiResult<Json<Status>> {
    let id: PublicId = path_id(&uuid, "bot")?;
    app.store
        .delete_bot(caller.account, id)
        .await
        .not_found_as("bot", &uuid)?;
    Ok(destroyed("bot was destroyed"))
}
