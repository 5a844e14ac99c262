//! The account's webhook, its delivery log, and the change feed
//! (docs/webhooks.md).

use std::time::Duration;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::{FromQuery, JsonObject, Query, QueryParams, parse_fields};
use super::json::Json;
use super::views::{PageMeta, Status, page_count};
use crate::auth::Caller;
use crate::domain::{EventName, FieldError, Timestamp};
use crate::error::{ApiError, ApiResult};
use crate::store::{AttemptFilter, StoreError, WebhookRecord};
use crate::webhooks::sign::new_secret;

/// Most delivery attempts on one page of `GET /webhooks/events`.
pub const MAX_ATTEMPTS_PAGE: u32 = 100;
/// Most events in one answer of `GET /events`.
pub const MAX_FEED_LIMIT: u32 = 1000;
/// The longest `GET /events` waits for something new.
pub const MAX_FEED_WAIT_SECS: u64 = 60;
/// How often a waiting `GET /events` asks the database again (events
/// committed by another process wake nobody here).
const FEED_POLL: Duration = Duration::from_millis(250);

/// `POST /webhooks/subscribe`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SubscribeRequest {
    /// Where deliveries are posted: an `http(s)://` URL on a public address.
    #[schema(required = true, nullable = false)]
    pub url: Option<String>,
    /// The events to deliver, at least one.
    #[schema(required = true, nullable = false, min_items = 1, value_type = Vec<String>, example = json!(["contact_created", "contact_updated"]))]
    pub subscriptions: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    pub url: String,
    #[schema(value_type = Vec<String>)]
    pub subscriptions: Vec<EventName>,
    pub enabled: bool,
    pub created_at: Timestamp,
    /// The key deliveries are signed with (`X-Bellbook-Signature`). Shown
    /// only by the subscribe that made it; subscribing again makes a new one.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEnvelope {
    pub webhook: WebhookView,
}

#[utoipa::path(
    post,
    path = "/webhooks/subscribe",
    tag = "webhooks",
    request_body = SubscribeRequest,
    responses(
        (status = 200, description = "The account's webhook, created or replaced, with its new signing secret", body = WebhookEnvelope),
        (status = 422, description = "A missing or refused `url` (not http(s), or an internal address), or unknown events", body = crate::error::ErrorBody),
    )
)]
pub async fn subscribe(
    State(app): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<WebhookEnvelope>> {
    let (request, mut errors) = parse_fields::<SubscribeRequest>(body, &[]);
    let url = match request.url.map(|url| url.trim().to_owned()) {
        Some(url) => match app.webhook_policy.check_resolved(&url).await {
            Ok(_) => Some(url),
            Err(refused) => {
                errors.push(FieldError::new(
                    "url",
                    "invalid_url",
                    format!("'url' is refused: {refused}"),
                ));
                None
            }
        },
        None => errors.require("url", None),
    };
    let subscriptions = match request.subscriptions {
        Some(names) if names.is_empty() => {
            errors.push(FieldError::new(
                "subscriptions",
                "blank",
                "'subscriptions' must name at least one event",
            ));
            None
        }
        Some(names) => {
            let mut events = Vec::new();
            for (i, name) in names.iter().enumerate() {
                match name.parse::<EventName>() {
                    Ok(event) if !events.contains(&event) => events.push(event),
                    Ok(_) => {}
                    Err(()) => errors.push(FieldError::new(
                        format!("subscriptions[{i}]"),
                        "unknown_event",
                        format!("'{name}' is not an event; the events are {}", event_list()),
                    )),
                }
            }
            Some(events)
        }
        None => errors.require("subscriptions", None),
    };
    let (url, subscriptions) = errors
        .finish((url, subscriptions))
        .map_err(ApiError::validation)?;
    let (Some(url), Some(subscriptions)) = (url, subscriptions) else {
        return Err(ApiError::internal());
    };
    let webhook = WebhookRecord {
        url,
        subscriptions,
        secret: new_secret().map_err(|_| ApiError::internal())?,
        created_at: Timestamp::now(),
    };
    app.store.subscribe(caller.account, &webhook).await?;
    Ok(Json(WebhookEnvelope {
        webhook: WebhookView {
            url: webhook.url,
            subscriptions: webhook.subscriptions,
            enabled: true,
            created_at: webhook.created_at,
            secret: webhook.secret,
        },
    }))
}

fn event_list() -> String {
    EventName::ALL.map(EventName::as_str).join(", ")
}

#[utoipa::path(
    delete,
    path = "/webhooks/unsubscribe",
    tag = "webhooks",
    responses(
        (status = 200, description = "`{\"status\": \"webhook was destroyed\"}`; deliveries still pending are dropped", body = Status),
        (status = 404, description = "The account has no webhook", body = crate::error::ErrorBody),
    )
)]
pub async fn unsubscribe(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<Status>> {
    match app.store.unsubscribe(caller.account).await {
        Ok(()) => Ok(Json(Status {
            status: "webhook was destroyed",
        })),
        Err(StoreError::NotFound) => Err(ApiError::not_found("the account has no webhook")),
        Err(other) => Err(other.into()),
    }
}

/// `GET /webhooks/events`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttemptsQuery {
    /// `success` or `failed`: only attempts that succeeded, or failed.
    pub status: Option<String>,
    /// The page, from 1.
    #[param(minimum = 1)]
    pub page: Option<u32>,
    /// Attempts per page, 1 to 100 (default 100).
    #[param(minimum = 1, maximum = 100)]
    pub items: Option<u32>,
    /// Comma-separated event names: only attempts of these events.
    pub subscriptions: Option<String>,
    #[param(ignore)]
    filter: AttemptFilter,
}

impl FromQuery for AttemptsQuery {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        let mut filter = AttemptFilter::default();
        let status = query.get("status").map(|s| s.trim().to_owned());
        filter.success = match status.as_deref() {
            None | Some("") => None,
            Some("success") => Some(true),
            Some("failed") => Some(false),
            Some(other) => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("query parameter 'status' must be success or failed, not '{other}'"),
                ));
            }
        };
        let subscriptions = query
            .get("subscriptions")
            .or_else(|| query.get("subscriptions[]"))
            .map(str::to_owned);
        for name in subscriptions.iter().flat_map(|s| s.split(',')) {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            let event = name.parse::<EventName>().map_err(|()| {
                ApiError::bad_request(
                    "invalid_query",
                    format!(
                        "query parameter 'subscriptions' names '{name}', which is not an event; \
                         the events are {}",
                        event_list()
                    ),
                )
            })?;
            filter.events.push(event);
        }
        let items = query
            .parse::<u32>("items", "a whole number from 1 to 100")?
            .unwrap_or(MAX_ATTEMPTS_PAGE);
        if !(1..=MAX_ATTEMPTS_PAGE).contains(&items) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "query parameter 'items' must be a whole number from 1 to 100, not '{items}'"
                ),
            ));
        }
        Ok(AttemptsQuery {
            status,
            page: Some(query.list_page()?),
            items: Some(items),
            subscriptions,
            filter,
        })
    }
}

/// A delivery attempt's answer. `code` is null when none came (refused,
/// timed out, or the address was not allowed); `body` then says why.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptResponse {
    pub body: String,
    #[schema(required = true)]
    pub code: Option<i64>,
    #[schema(value_type = Object)]
    pub headers: sonic_rs::Value,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEventView {
    #[schema(value_type = String)]
    pub event: EventName,
    #[schema(value_type = Object)]
    pub payload: sonic_rs::Value,
    pub response: AttemptResponse,
    pub success: bool,
    pub created_at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEventList {
    pub webhook_events: Vec<WebhookEventView>,
    pub meta: PageMeta,
}

/// Stored JSON text back as a value (sonic's, which [`Json`] writes).
fn stored_json(text: &str) -> ApiResult<sonic_rs::Value> {
    sonic_rs::from_str(text).map_err(|error| {
        tracing::error!(%error, "a stored event holds malformed JSON");
        ApiError::internal()
    })
}

#[utoipa::path(
    get,
    path = "/webhooks/events",
    tag = "webhooks",
    params(AttemptsQuery),
    responses((status = 200, description = "Delivery attempts, newest first", body = WebhookEventList))
)]
pub async fn events(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<AttemptsQuery>,
) -> ApiResult<Json<WebhookEventList>> {
    let page = query.page.unwrap_or(1);
    let items = query.items.unwrap_or(MAX_ATTEMPTS_PAGE);
    let found = app
        .store
        .webhook_attempts(caller.account, &query.filter, page, items)
        .await?;
    let webhook_events = found
        .attempts
        .into_iter()
        .map(|attempt| {
            Ok(WebhookEventView {
                event: attempt.event,
                payload: stored_json(&attempt.payload)?,
                response: AttemptResponse {
                    body: attempt.body,
                    code: attempt.code,
                    headers: stored_json(&attempt.headers)?,
                },
                success: attempt.success,
                created_at: attempt.created_at,
            })
        })
        .collect::<ApiResult<_>>()?;
    Ok(Json(WebhookEventList {
        webhook_events,
        meta: PageMeta {
            page,
            pages: page_count(found.total, items),
        },
    }))
}

/// `GET /events`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The `cursor` of an earlier answer: only events after it. Without
    /// it, from the oldest event kept.
    pub after: Option<String>,
    /// Most events to return, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Seconds to wait, up to 60, when there is nothing after the cursor yet.
    #[param(minimum = 0, maximum = 60)]
    pub wait: Option<u64>,
    #[param(ignore)]
    after_seq: i64,
}

impl FromQuery for FeedQuery {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        let after = query.get("after").map(|s| s.trim().to_owned());
        let after_seq = match after.as_deref() {
            None | Some("") => 0,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|seq| *seq >= 0)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_cursor",
                        format!("'{text}' is not a cursor this feed gave out"),
                    )
                })?,
        };
        let limit = query
            .parse::<u32>("limit", "a whole number from 1 to 1000")?
            .unwrap_or(100);
        if !(1..=MAX_FEED_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "query parameter 'limit' must be a whole number from 1 to 1000, not '{limit}'"
                ),
            ));
        }
        let wait = query
            .parse::<u64>("wait", "a whole number of seconds from 0 to 60")?
            .unwrap_or(0);
        if wait > MAX_FEED_WAIT_SECS {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "query parameter 'wait' must be at most {MAX_FEED_WAIT_SECS} seconds, not '{wait}'"
                ),
            ));
        }
        Ok(FeedQuery {
            after,
            limit: Some(limit),
            wait: Some(wait),
            after_seq,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedEvent {
    /// The event's place in the feed: resume `after` it to see what came
    /// next. Also the `X-Bellbook-Event-Id` of its deliveries, after the
    /// account's uuid.
    pub id: String,
    #[schema(value_type = String)]
    pub event: EventName,
    #[schema(value_type = Object)]
    pub payload: sonic_rs::Value,
    pub created_at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedPage {
    /// In commit order.
    pub events: Vec<FeedEvent>,
    /// Where to resume: the last event's id, or the `after` given when
    /// nothing is new.
    pub cursor: String,
}

#[utoipa::path(
    get,
    path = "/events",
    tag = "webhooks",
    params(FeedQuery),
    responses(
        (status = 200, description = "The account's events after the cursor, in commit order", body = FeedPage),
        (status = 400, description = "A bad cursor, limit or wait (`invalid_cursor`, `invalid_query`)", body = crate::error::ErrorBody),
    )
)]
pub async fn feed(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<FeedQuery>,
) -> ApiResult<Json<FeedPage>> {
    let limit = query.limit.unwrap_or(100);
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(query.wait.unwrap_or_default());
    let found = loop {
        let found = app
            .store
            .events_after(caller.account, query.after_seq, limit)
            .await?;
        let now = tokio::time::Instant::now();
        if !found.is_empty() || now >= deadline {
            break found;
        }
        app.store
            .wait_for_events(FEED_POLL.min(deadline - now))
            .await;
    };
    let cursor = found
        .last()
        .map_or(query.after_seq, |event| event.seq)
        .to_string();
    let events = found
        .into_iter()
        .map(|event| {
            Ok(FeedEvent {
                id: event.seq.to_string(),
                event: event.name,
                payload: stored_json(&event.payload)?,
                created_at: event.created_at,
            })
        })
        .collect::<ApiResult<_>>()?;
    Ok(Json(FeedPage { events, cursor }))
}
