//! The OpenAPI 3.1 document of the API, generated from the handlers'
//! `#[utoipa::path]` annotations and the request and response types.
//! `GET /v1/openapi.json` serves it; a test checks it covers [`ROUTES`].
//!
//! [`ROUTES`]: super::ROUTES

use std::borrow::Cow;

use crate::api::json::SerdeJson;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ArrayBuilder, ContentBuilder, KnownFormat, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::contacts::{IdentifierText, TagNames};
use super::{account, batch, contacts, conversations, export, settings, webhooks};
use crate::domain::contact::BotCommand;
use crate::domain::{CustomFieldType, FunnelId, PublicId, Source, Timestamp};
use crate::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bellbook",
        description = "A self-hosted server that speaks the Callbell contacts REST API. \
            Every path is under `/v1` and needs `Authorization: Bearer <API key>` \
            (except this document). Errors share one body: `ErrorBody`.",
    ),
    servers((url = "/v1")),
    paths(
        openapi_json,
        account::me,
        contacts::list,
        contacts::create,
        batch::upsert,
        export::export,
        contacts::by_phone,
        contacts::by_bsuid,
        contacts::get,
        contacts::update,
        contacts::delete,
        conversations::open,
        conversations::close,
        conversations::note,
        conversations::update_funnel_put,
        conversations::update_funnel_post,
        conversations::messages,
        conversations::bot,
        conversations::set_bot,
        settings::tags::list,
        settings::tags::create,
        settings::tags::get,
        settings::tags::update,
        settings::tags::delete,
        settings::custom_fields::list,
        settings::custom_fields::create,
        settings::custom_fields::get,
        settings::custom_fields::update,
        settings::custom_fields::delete,
        settings::users::list,
        settings::users::create,
        settings::users::get,
        settings::users::update,
        settings::users::delete,
        settings::teams::list,
        settings::teams::create,
        settings::teams::get,
        settings::teams::update,
        settings::teams::delete,
        settings::channels::list,
        settings::channels::create,
        settings::channels::get,
        settings::channels::update,
        settings::channels::delete,
        settings::bots::list,
        settings::bots::create,
        settings::bots::get,
        settings::bots::update,
        settings::bots::delete,
        settings::funnels::list,
        settings::funnels::create,
        settings::funnels::get,
        settings::funnels::update,
        settings::funnels::delete,
        webhooks::subscribe,
        webhooks::unsubscribe,
        webhooks::events,
        webhooks::feed,
    ),
    components(schemas(
        ErrorBody,
        crate::store::TagsMode,
        crate::webhooks::payloads::ConversationPayload,
        crate::webhooks::payloads::DeletedPayload,
    )),
    modifiers(&Conventions),
)]
pub struct ApiDoc;

/// The document, as served.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// This document (no API key needed).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json"))
)]
pub async fn openapi_json() -> SerdeJson<utoipa::openapi::OpenApi> {
    SerdeJson(document())
}

/// Statuses any operation may answer with the error body, besides its own
/// success: bad query or body, no key, not found, too large, wrong media
/// type, invalid fields, rate limited, server failure, storage unavailable.
const ERROR_STATUSES: [(&str, &str); 10] = [
    (
        "400",
        "Malformed request: bad query parameter, invalid JSON, or a body that is not an object",
    ),
    ("401", "Missing, malformed, unknown or revoked API key"),
    ("404", "No such route, or no such object in this account"),
    (
        "408",
        "The request body did not arrive within the body timeout; nothing was done",
    ),
    ("413", "Request body over the size limit"),
    ("415", "Request body that is not JSON"),
    (
        "422",
        "Fields missing, of the wrong type, or invalid; `details` lists every one",
    ),
    ("429", "Over the account's rate limit; see Retry-After"),
    ("500", "Server failure; the request changed nothing"),
    (
        "503",
        "Storage unavailable or busy (`storage_unavailable`), or its disk full (`storage_full`): \
         the request changed nothing and may be retried, see Retry-After; or the request past its \
         time limit (`request_timeout`): a write may have been applied, retry it with the same \
         Idempotency-Key",
    ),
];

/// Adds what every operation shares: bearer authentication and the error
/// responses of SPEC §1.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                add_error_responses(operation);
            }
            for operation in [
                item.post.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                add_idempotency_key(operation);
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.put.as_mut(),
        item.patch.as_mut(),
        item.delete.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn add_error_responses(operation: &mut Operation) {
    for (status, description) in ERROR_STATUSES {
        if operation.responses.responses.contains_key(status) {
            continue;
        }
        operation
            .responses
            .responses
            .insert(status.to_owned(), error_response(description));
    }
}

/// A response with SPEC §1's error body.
fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build(),
            )
            .build(),
    )
}

/// Every write takes an `Idempotency-Key` (README, "Retry-safe writes"),
/// and may answer 409 `idempotency_in_progress` because of it.
fn add_idempotency_key(operation: &mut Operation) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    let parameter = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(utoipa::openapi::Required::False)
        .description(Some(
            "Makes the request safe to retry: for 24 hours, the same key with the same method, \
             path and body gets the first answer again (marked `Idempotent-Replayed: true`) and \
             does nothing; with another request it is a 422 `idempotency_key_reused`; while the \
             first still runs, a 409 `idempotency_in_progress`. Per account; 1 to 255 visible \
             ASCII characters (a UUID, say), else a 400 `invalid_idempotency_key`.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(super::idempotency::MAX_KEY_CHARS))
                .pattern(Some("^[!-~]+$")),
        ))
        .build();
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .push(RefOr::T(parameter));
    if !operation.responses.responses.contains_key("409") {
        operation.responses.responses.insert(
            "409".to_owned(),
            error_response("A request with this Idempotency-Key is still running; see Retry-After"),
        );
    }
}

fn string_schema(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

impl PartialSchema for PublicId {
    fn schema() -> RefOr<Schema> {
        string_schema("An id: 32 lowercase hex characters")
            .pattern(Some("^[0-9a-f]{32}$"))
            .examples(["414a6d692bd645ed803f2e7ce360d4c8"])
            .into()
    }
}
impl ToSchema for PublicId {}

impl PartialSchema for FunnelId {
    fn schema() -> RefOr<Schema> {
        string_schema("A funnel id: a dashed lowercase UUID")
            .format(Some(SchemaFormat::Custom("uuid".to_owned())))
            .pattern(Some(
                "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
            ))
            .into()
    }
}
impl ToSchema for FunnelId {}

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        string_schema("UTC, seconds precision")
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .pattern(Some(
                "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
            ))
            .examples(["2020-11-13T21:08:53Z"])
            .into()
    }
}
impl ToSchema for Timestamp {}

fn enum_schema(description: &str, values: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    string_schema(description).enum_values(Some(values)).into()
}

impl PartialSchema for Source {
    fn schema() -> RefOr<Schema> {
        enum_schema(
            "Where a conversation happens (also a channel's type)",
            Source::ALL.map(Source::as_str),
        )
    }
}
impl ToSchema for Source {}

impl PartialSchema for CustomFieldType {
    fn schema() -> RefOr<Schema> {
        enum_schema(
            "The type of a custom field",
            CustomFieldType::ALL.map(CustomFieldType::as_str),
        )
    }
}
impl ToSchema for CustomFieldType {}

impl PartialSchema for BotCommand {
    fn schema() -> RefOr<Schema> {
        enum_schema(
            "Start or stop a contact's bot",
            [BotCommand::Start, BotCommand::End].map(BotCommand::as_str),
        )
    }
}
impl ToSchema for BotCommand {}

/// `custom_fields` of a contact request: an object of at most 100 fields.
pub fn custom_fields_object() -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(100))
        .build()
}

impl PartialSchema for TagNames {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "Tag names: an array, or one string of comma-separated names",
            ))
            .item(
                ArrayBuilder::new()
                    .items(ObjectBuilder::new().schema_type(Type::String))
                    .max_items(Some(100)),
            )
            .item(ObjectBuilder::new().schema_type(Type::String))
            .into()
    }
}
impl ToSchema for TagNames {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("TagNames")
    }
}

impl PartialSchema for IdentifierText {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "The contact's identifier on its channel: the phone number on WhatsApp \
                 (a string; an unquoted whole number is accepted too)",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255))
                    .pattern(Some(r"\S")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .into()
    }
}
impl ToSchema for IdentifierText {}

impl PartialSchema for crate::store::TagsMode {
    fn schema() -> RefOr<Schema> {
        enum_schema(
            "How the `tags` filter combines: `all` (default) or `any`",
            ["all", "any"],
        )
    }
}
impl ToSchema for crate::store::TagsMode {}

/// A short text that is not only white space: 1 to 255 characters.
pub struct NonBlankText;

impl PartialSchema for NonBlankText {
    fn schema() -> RefOr<Schema> {
        string_schema("1 to 255 characters, not only white space")
            .min_length(Some(1))
            .max_length(Some(255))
            .pattern(Some(r"\S"))
            .into()
    }
}
impl ToSchema for NonBlankText {}

/// An e-mail address as bellbook checks them. The pattern describes the
/// plain ASCII addresses it accepts (within RFC 5321's lengths); the
/// server takes some internationalised ones too.
pub struct EmailAddress;

impl PartialSchema for EmailAddress {
    fn schema() -> RefOr<Schema> {
        string_schema("An e-mail address")
            .max_length(Some(254))
            .pattern(Some(
                r"^(?=[^@]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$",
            ))
            .into()
    }
}
impl ToSchema for EmailAddress {}
