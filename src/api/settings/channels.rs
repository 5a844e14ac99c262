//! Channels: where conversations happen. At most one main channel per
//! type; a channel contacts use is discarded rather than deleted.

use crate::api::json::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{destroyed, text_field};
use crate::api::AppState;
use crate::api::extract::{
    FromQuery, JsonObject, PathParam, Query, QueryParams, parse_fields, path_id,
};
use crate::api::views::{ChannelView, PageMeta, Status, page_of};
use crate::auth::Caller;
use crate::domain::{FieldError, PublicId, Source, Timestamp};
use crate::error::{ApiError, ApiResult, ErrorBody, NotFoundAs};
use crate::store::{ChannelChanges, NewChannel};

/// Channels per page of `GET /channels`.
pub const PAGE_SIZE: u32 = 100;

/// `POST /channels`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateChannelRequest {
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = r"\S"
    )]
    pub title: Option<String>,
    #[serde(rename = "type")]
    #[schema(required = true, nullable = false)]
    pub kind: Option<Source>,
    /// Make it the main channel of its type; when omitted, it is main if
    /// its type has none yet.
    pub main: Option<bool>,
}

/// `PATCH /channels/:uuid`. Callbell documents `title`; `main: true` makes
/// it the main channel of its type, `discarded` retires it or brings it back.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct UpdateChannelRequest {
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub title: Option<String>,
    /// A channel's type cannot change (any value is refused).
    #[serde(rename = "type")]
    #[schema(value_type = Option<Source>)]
    pub kind: Option<serde_json::Value>,
    /// Only `true`: to change the main channel, make another one main.
    pub main: Option<bool>,
    pub discarded: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelList {
    pub channels: Vec<ChannelView>,
    pub meta: PageMeta,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelEnvelope {
    pub channel: ChannelView,
}

/// The query of `GET /channels`.
#[derive(Debug, Clone, Copy, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChannelListQuery {
    #[param(minimum = 1, maximum = 100_000)]
    pub page: Option<u32>,
    /// Only channels of this type.
    pub r#type: Option<Source>,
    /// Only active (`true`) or only discarded (`false`) channels; `1`/`0`
    /// are accepted too, as some of Callbell's examples send them.
    pub active: Option<bool>,
}

impl FromQuery for ChannelListQuery {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        let active = match query.get("active").map(str::trim) {
            None => None,
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(other) => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("query parameter 'active' must be true or false, not '{other}'"),
                ));
            }
        };
        Ok(ChannelListQuery {
            page: Some(query.list_page()?),
            r#type: query.parse::<Source>("type", Source::EXPECTED)?,
            active,
        })
    }
}

#[utoipa::path(
    get,
    path = "/channels",
    tag = "channels",
    params(ChannelListQuery),
    responses((status = 200, description = "Every channel of the account", body = ChannelList))
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<ChannelListQuery>,
) -> ApiResult<Json<ChannelList>> {
    let page = query.page.unwrap_or(1);
    let (kind, active) = (query.r#type, query.active);
    let settings = app.store.settings(caller.account).await?;
    let matching: Vec<_> = settings
        .channels
        .iter()
        .filter(|c| kind.is_none_or(|k| c.kind == k))
        .filter(|c| active.is_none_or(|a| c.is_active() == a))
        .collect();
    let (channels, meta) = page_of(&matching, page, PAGE_SIZE);
    Ok(Json(ChannelList {
        channels: channels.iter().map(|c| ChannelView::from(*c)).collect(),
        meta,
    }))
}

#[utoipa::path(
    post,
    path = "/channels",
    tag = "channels",
    request_body = CreateChannelRequest,
    responses(
        (status = 200, description = "The created channel", body = ChannelEnvelope),
        (status = 409, description = "It conflicts with an existing one", body = ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<ChannelEnvelope>> {
    let (request, mut errors) = parse_fields::<CreateChannelRequest>(body, &[]);
    let title = text_field(&mut errors, "title", request.title, true);
    let kind = errors.require("type", request.kind);
    let (Some(title), Some(kind)) = (title, kind) else {
        return Err(ApiError::validation(errors.into_vec()));
    };
    errors.finish(()).map_err(ApiError::validation)?;
    let channel = NewChannel {
        uuid: PublicId::random(),
        title,
        kind,
        main: request.main,
    };
    let created = app.store.create_channel(caller.account, &channel).await?;
    Ok(Json(ChannelEnvelope {
        channel: ChannelView::from(&created),
    }))
}

#[utoipa::path(
    get,
    path = "/channels/{uuid}",
    tag = "channels",
    params(("uuid" = PublicId, Path, description = "The channel")),
    responses((status = 200, description = "The channel", body = ChannelEnvelope))
)]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
) -> ApiResult<Json<ChannelEnvelope>> {
    let id: PublicId = path_id(&uuid, "channel")?;
    let settings = app.store.settings(caller.account).await?;
    let channel = settings.channel(id).ok_or_else(|| {
        ApiError::not_found(format!("channel '{uuid}' does not exist in this account"))
    })?;
    Ok(Json(ChannelEnvelope {
        channel: ChannelView::from(channel),
    }))
}

/// Callbell documents `title`; bellbook also takes `main: true` (make it
/// the main channel of its type) and `discarded` (retire it, or bring it
/// back).
#[utoipa::path(
    patch,
    path = "/channels/{uuid}",
    tag = "channels",
    params(("uuid" = PublicId, Path, description = "The channel")),
    request_body = UpdateChannelRequest,
    responses(
        (status = 200, description = "The updated channel", body = ChannelEnvelope),
        (status = 409, description = "It conflicts with an existing one", body = ErrorBody),
    )
)]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<ChannelEnvelope>> {
    let id: PublicId = path_id(&uuid, "channel")?;
    let (request, mut errors) = parse_fields::<UpdateChannelRequest>(body, &[]);
    let title = text_field(&mut errors, "title", request.title, false);
    let settings = app.store.settings(caller.account).await?;
    let is_main = settings
        .channel(id)
        .ok_or_else(|| {
            ApiError::not_found(format!("channel '{uuid}' does not exist in this account"))
        })?
        .main;
    // `main: false` on the main channel would leave its type without one.
    if request.main == Some(false) && is_main {
        errors.push(FieldError::new(
            "main",
            "main_channel_required",
            "to change the main channel, set main: true on the channel that should be main",
        ));
    }
    if request.kind.is_some() {
        errors.push(FieldError::new(
            "type",
            "type_immutable",
            "the type of a channel cannot change",
        ));
    }
    errors.finish(()).map_err(ApiError::validation)?;
    let changes = ChannelChanges {
        title,
        make_main: request.main == Some(true),
        discard: request
            .discarded
            .map(|discard| discard.then(Timestamp::now)),
    };
    let channel = app
        .store
        .update_channel(caller.account, id, &changes)
        .await
        .not_found_as("channel", &uuid)?;
    Ok(Json(ChannelEnvelope {
        channel: ChannelView::from(&channel),
    }))
}

#[utoipa::path(
    delete,
    path = "/channels/{uuid}",
    tag = "channels",
    params(("uuid" = PublicId, Path, description = "The channel")),
    responses(
        (status = 200, description = "`{\"status\": \"channel was destroyed\"}`", body = Status),
        (status = 409, description = "Contacts use the channel (`channel_in_use`); discard it instead", body = ErrorBody),
    )
)]
pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
) -> ApiResult<Json<Status>> {
    let id: PublicId = path_id(&uuid, "channel")?;
    app.store
        .delete_channel(caller.account, id)
        .await
        .not_found_as("channel", &uuid)?;
    Ok(destroyed("channel was destroyed"))
}
