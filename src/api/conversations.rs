//! A contact's conversation: open, close, notes, funnel, messages, bot.

use crate::api::json::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::extract::{JsonObject, PageQuery, PathParam, Query, nullable, parse_fields, path_id};
use super::views::{
    ContactBotEnvelope, ContactBotView, ContactInArray, MessageList, MessageView, PageMeta,
    SingleContact, Success, page_count,
};
use crate::auth::Caller;
use crate::domain::contact::{
    BotAssignment, BotCommand, BotStatus, ContactBot, ContactChanges, MAX_MESSAGE_CHARS,
};
use crate::domain::{FieldError, FunnelId, PublicId, Timestamp, non_blank};
use crate::error::{ApiError, ApiResult, NotFoundAs};

/// Messages per page of `GET /contacts/:uuid/messages`.
pub const MESSAGES_PAGE_SIZE: u32 = 20;

fn contact_id(uuid: &str) -> ApiResult<PublicId> {
    path_id(uuid, "contact")
}

#[utoipa::path(
    post,
    path = "/contacts/{uuid}/conversation/open",
    tag = "conversations",
    params(("uuid" = PublicId, Path, description = "The contact")),
    responses((status = 200, description = "The contact, its conversation open (`closedAt` null)", body = ContactInArray))
)]
pub async fn open(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
) -> ApiResult<Json<ContactInArray>> {
    let id = contact_id(&uuid)?;
    let record = app
        .store
        .open_conversation(caller.account, id, Timestamp::now())
        .await
        .not_found_as("contact", &uuid)?;
    Ok(Json(ContactInArray {
        contact: vec![app.links.contact(record, false)],
    }))
}

#[utoipa::path(
    post,
    path = "/contacts/{uuid}/conversation/close",
    tag = "conversations",
    params(("uuid" = PublicId, Path, description = "The contact")),
    responses((status = 200, description = "The contact, its conversation closed (`closedAt` keeps the first closing time)", body = SingleContact))
)]
pub async fn close(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
) -> ApiResult<Json<SingleContact>> {
    let id = contact_id(&uuid)?;
    let record = app
        .store
        .close_conversation(caller.account, id, Timestamp::now())
        .await
        .not_found_as("contact", &uuid)?;
    Ok(Json(SingleContact {
        contact: app.links.contact(record, false),
    }))
}

/// `POST /contacts/:uuid/conversation/note`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct NoteRequest {
    /// The note, at most 4096 characters.
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 4096,
        pattern = r"\S"
    )]
    pub text: Option<String>,
}

#[utoipa::path(
    post,
    path = "/contacts/{uuid}/conversation/note",
    tag = "conversations",
    params(("uuid" = PublicId, Path, description = "The contact")),
    request_body = NoteRequest,
    responses((status = 200, description = "`{\"success\": true}`", body = Success))
)]
pub async fn note(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Success>> {
    let id = contact_id(&uuid)?;
    let (request, mut errors) = parse_fields::<NoteRequest>(body, &[]);
    let text = match request.text {
        Some(text) if non_blank(&text).is_none() => {
            errors.push(FieldError::new("text", "blank", "'text' must not be empty"));
            None
        }
        Some(text) if text.chars().count() > MAX_MESSAGE_CHARS => {
            errors.push(FieldError::new(
                "text",
                "too_long",
                format!(
                    "'text' is {} characters long; at most {MAX_MESSAGE_CHARS} are allowed",
                    text.chars().count()
                ),
            ));
            None
        }
        Some(text) => Some(text),
        None => errors.require("text", None),
    };
    let text = errors
        .finish(text)
        .map_err(ApiError::validation)?
        .unwrap_or_default();
    app.store
        .add_note(caller.account, id, &text, Timestamp::now())
        .await
        .not_found_as("contact", &uuid)?;
    Ok(Json(Success { success: true }))
}

/// `update_funnel`: `funnel_id` is required; `null` takes the contact out
/// of its funnel.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SetFunnelRequest {
    /// A funnel uuid, or `null` to take the contact out of its funnel.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(required = true, value_type = Option<FunnelId>)]
    pub funnel_id: Option<Option<String>>,
}

/// The route the update_funnel page documents.
#[utoipa::path(
    put,
    path = "/contacts/{uuid}/conversation/update_funnel",
    tag = "conversations",
    params(("uuid" = PublicId, Path, description = "The contact")),
    request_body = SetFunnelRequest,
    responses((status = 200, description = "The contact with its new `funnelId`", body = ContactInArray))
)]
pub async fn update_funnel_put(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<ContactInArray>> {
    update_funnel(app, caller, uuid, body).await
}

/// The route every update_funnel example calls.
#[utoipa::path(
    post,
    path = "/contacts/{uuid}/messages/update_funnel",
    tag = "conversations",
    params(("uuid" = PublicId, Path, description = "The contact")),
    request_body = SetFunnelRequest,
    responses((status = 200, description = "The contact with its new `funnelId`", body = ContactInArray))
)]
pub async fn update_funnel_post(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<ContactInArray>> {
    update_funnel(app, caller, uuid, body).await
}

async fn update_funnel(
    app: AppState,
    caller: Caller,
    uuid: String,
    body: serde_json::Map<String, serde_json::Value>,
) -> ApiResult<Json<ContactInArray>> {
    let id = contact_id(&uuid)?;
    let (request, mut errors) = parse_fields::<SetFunnelRequest>(body, &[]);
    let requested = match request.funnel_id {
        Some(funnel) => funnel,
        None => errors.require("funnel_id", None),
    };
    errors.finish(()).map_err(ApiError::validation)?;
    let funnel_id = match requested {
        None => None,
        Some(text) => {
            let settings = app.store.settings(caller.account).await?;
            let funnel = text
                .parse::<FunnelId>()
                .ok()
                .and_then(|f| settings.funnel(f))
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "funnel_id",
                        "unknown_funnel",
                        format!("funnel '{text}' does not exist in this account"),
                    )
                })?;
            Some(funnel.id)
        }
    };
    let record = app
        .store
        .set_funnel(caller.account, id, funnel_id, Timestamp::now())
        .await
        .not_found_as("contact", &uuid)?;
    Ok(Json(ContactInArray {
        contact: vec![app.links.contact(record, false)],
    }))
}

#[utoipa::path(
    get,
    path = "/contacts/{uuid}/messages",
    tag = "conversations",
    params(("uuid" = PublicId, Path, description = "The contact"), PageQuery),
    responses((status = 200, description = "A page of the conversation's notes and recorded events, newest first", body = MessageList))
)]
pub async fn messages(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<MessageList>> {
    let id = contact_id(&uuid)?;
    let page = query.number();
    let listing = app
        .store
        .list_messages(caller.account, id, page, MESSAGES_PAGE_SIZE)
        .await
        .not_found_as("contact", &uuid)?;
    Ok(Json(MessageList {
        messages: listing
            .messages
            .iter()
            .map(|m| MessageView::new(m, &listing.contact))
            .collect(),
        meta: PageMeta {
            page,
            pages: page_count(listing.total, MESSAGES_PAGE_SIZE),
        },
    }))
}

fn no_bot() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "no_bot",
        "this account has no enabled bot",
    )
}

#[utoipa::path(
    get,
    path = "/contacts/{uuid}/bot",
    tag = "conversations",
    params(("uuid" = PublicId, Path, description = "The contact")),
    responses((status = 200, description = "The contact's bot (404 `no_bot` without an enabled bot)", body = ContactBotEnvelope))
)]
pub async fn bot(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
) -> ApiResult<Json<ContactBotEnvelope>> {
    let id = contact_id(&uuid)?;
    let record = app
        .store
        .contact(caller.account, id)
        .await
        .not_found_as("contact", &uuid)?;
    let conversation_open = record.closed_at.is_none();
    let bot = match record.bot {
        Some(bot) if bot.bot.enabled => bot,
        // A contact that never had a bot state runs the account's bot from
        // its default, started (as Callbell documents).
        _ => {
            let settings = app.store.settings(caller.account).await?;
            let enabled = settings.enabled_bot().ok_or_else(no_bot)?;
            ContactBot {
                bot: enabled.clone(),
                status: BotStatus::Started,
                version: enabled.version,
                conversation_started_at: None,
            }
        }
    };
    Ok(Json(ContactBotEnvelope {
        bot: ContactBotView::new(&bot, conversation_open),
    }))
}

/// `POST /contacts/:uuid/bot`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SetBotRequest {
    #[schema(required = true, nullable = false)]
    pub status: Option<BotCommand>,
}

#[utoipa::path(
    post,
    path = "/contacts/{uuid}/bot",
    tag = "conversations",
    params(("uuid" = PublicId, Path, description = "The contact")),
    request_body = SetBotRequest,
    responses((status = 200, description = "The contact's bot, `started` or `ended` (404 `no_bot` without an enabled bot)", body = ContactBotEnvelope))
)]
pub async fn set_bot(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<ContactBotEnvelope>> {
    let id = contact_id(&uuid)?;
    let (request, mut errors) = parse_fields::<SetBotRequest>(body, &[]);
    let status = errors.require("status", request.status);
    // `require` recorded a missing status, so `finish` has refused it.
    let command = errors
        .finish(status)
        .map_err(ApiError::validation)?
        .ok_or_else(|| ApiError::invalid_field("status", "required", "'status' is required"))?;
    let settings = app.store.settings(caller.account).await?;
    let Some(bot) = settings.enabled_bot() else {
        // A contact that does not exist is not found, as GET says too;
        // only an existing contact has no bot.
        app.store
            .contact(caller.account, id)
            .await
            .not_found_as("contact", &uuid)?;
        return Err(no_bot());
    };
    let changes = ContactChanges {
        bot: Some(BotAssignment {
            bot_id: bot.id,
            status: command.resulting_status(),
            version: bot.version,
        }),
        ..ContactChanges::default()
    };
    let record = app
        .store
        .update_contact(caller.account, id, &changes, Timestamp::now())
        .await
        .not_found_as("contact", &uuid)?;
    let bot = record.bot.as_ref().ok_or_else(no_bot)?;
    // Right after a command the status says what was asked, started or
    // ended; GET reports in_progress while the conversation is open.
    Ok(Json(ContactBotEnvelope {
        bot: ContactBotView::new(bot, false),
    }))
}
