//! `POST /contacts/batch` (a bellbook extension, README "Batches"): up to
//! 100 `POST /contacts` bodies in one request, each validated and applied
//! on its own, in input order.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::AppState;
use super::contacts::{CreateContactRequest, FRENCH_ALIASES, UpdateContactRequest};
use super::extract::{JsonObject, parse_fields};
use super::json::Json;
use super::views::ContactView;
use crate::auth::Caller;
use crate::domain::settings::AccountSettings;
use crate::domain::{FieldError, PublicId, Timestamp};
use crate::error::{ApiError, ApiResult, ErrorObject};
use crate::ratelimit::RateKey;
use crate::store::StoreError;

/// Most contacts one batch may carry.
pub const MAX_BATCH: usize = 100;

/// What a batch does with a contact whose identifier its channel has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BatchMode {
    /// Refuse it (409 `contact_exists`), as `POST /contacts` does.
    #[default]
    Create,
    /// Update the existing contact with the item's fields, as
    /// `PATCH /contacts/{uuid}` would (identifier, source and channel stay).
    Upsert,
}

/// `POST /contacts/batch`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct BatchRequest {
    /// 1 to 100 bodies of `POST /contacts` (`CreateContactRequest`). Each
    /// is checked on its own, so the document does not hold the batch to
    /// that schema: a bad item gets its own error in `results`.
    #[schema(required = true, min_items = 1, max_items = 100, value_type = Vec<Object>)]
    pub contacts: Option<Vec<Value>>,
    /// `create` when omitted.
    pub mode: Option<BatchMode>,
}

/// What became of one item.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    /// The item's place in `contacts`, from 0.
    pub index: usize,
    /// 201: created; 200: an existing contact updated (upsert); else the
    /// status `POST /contacts` would have answered.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<ContactView>,
    /// The error body's `error` object (SPEC §1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResults {
    /// One per item, in input order.
    pub results: Vec<BatchResult>,
}

#[utoipa::path(
    post,
    path = "/contacts/batch",
    tag = "contacts",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "Each item's outcome, in input order: a failed item fails alone (bellbook extension)", body = BatchResults),
    )
)]
pub async fn upsert(
    State(app): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<BatchResults>> {
    let (request, mut errors) = parse_fields::<BatchRequest>(body, &[]);
    let items = match request.contacts {
        None => errors.require("contacts", None),
        Some(items) if items.is_empty() || items.len() > MAX_BATCH => {
            errors.push(FieldError::new(
                "contacts",
                "invalid_batch_size",
                format!(
                    "'contacts' holds {} items; a batch holds 1 to {MAX_BATCH}",
                    items.len()
                ),
            ));
            None
        }
        Some(items) => Some(items),
    };
    let items = errors
        .finish(items)
        .map_err(ApiError::validation)?
        .unwrap_or_default();
    let mode = request.mode.unwrap_or_default();
    // The guard counted this request as one; each further item counts too.
    let extra = u32::try_from(items.len() - 1).unwrap_or(u32::MAX);
    if extra > 0
        && let Some(decision) = app
            .limiter
            .check_many(RateKey::Account(caller.account), extra)
            .await
        && !decision.allowed
    {
        app.metrics.rate_limited.inc();
        return Err(ApiError::rate_limited(decision.retry_after_secs));
    }
    let settings = app.store.settings(caller.account).await?;
    let mut results = Vec::with_capacity(items.len());
    // One after another, so that two items for one identifier meet in
    // input order: the second finds the first's contact.
    for (index, item) in items.into_iter().enumerate() {
        let result = match item {
            Value::Object(body) => apply(&app, &caller, &settings, body, mode).await,
            _ => Err(ApiError::invalid_field(
                "contacts",
                "invalid_type",
                format!("contacts[{index}] must be an object: a body of POST /contacts"),
            )),
        };
        results.push(match result {
            Ok((status, contact)) => BatchResult {
                index,
                status: status.as_u16(),
                contact: Some(app.links.contact(contact, false)),
                error: None,
            },
            Err(error) => BatchResult {
                index,
                status: error.status().as_u16(),
                contact: None,
                error: Some(error.into_body().error),
            },
        });
    }
    Ok(Json(BatchResults { results }))
}

/// Creates the item's contact, or in upsert mode updates the one that has
/// its identifier.
async fn apply(
    app: &AppState,
    caller: &Caller,
    settings: &AccountSettings,
    body: Map<String, Value>,
    mode: BatchMode,
) -> ApiResult<(StatusCode, crate::domain::contact::ContactRecord)> {
    let (request, errors) = parse_fields::<CreateContactRequest>(body.clone(), &FRENCH_ALIASES);
    let contact = request
        .validate(settings, errors)
        .map_err(ApiError::validation)?;
    let existing = match app.store.insert_contact(caller.account, &contact).await {
        Ok(created) => return Ok((StatusCode::CREATED, created)),
        Err(StoreError::Conflict(conflict))
            if mode == BatchMode::Upsert && conflict.code == "contact_exists" =>
        {
            conflict
                .details
                .iter()
                .find_map(|d| d.uuid.as_deref()?.parse::<PublicId>().ok())
                .ok_or_else(ApiError::internal)?
        }
        Err(error) => return Err(error.into()),
    };
    // The same body as a PATCH: what it gives is set; identifier, source
    // and channel are the existing contact's already.
    let (request, errors) = parse_fields::<UpdateContactRequest>(body, &FRENCH_ALIASES);
    let changes = request
        .validate(settings, errors)
        .map_err(ApiError::validation)?;
    let updated = app
        .store
        .update_contact(caller.account, existing, &changes, Timestamp::now())
        .await?;
    Ok((StatusCode::OK, updated))
}
