//! Contacts: create, update, get, list, lookups and delete (SPEC §3–§4).

use crate::api::json::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::extract::{
    FromQuery, JsonObject, PathParam, Query, QueryParams, nullable, parse_fields, path_id,
};
use super::openapi::EmailAddress;
use super::views::{ContactInArray, ContactList, CursorMeta, SingleContact, Status, page_count};
use super::{AppContext, AppState};
use crate::auth::Caller;
use crate::cursor::Cursor;
use crate::domain::contact::{BotCommand, ContactChanges, ContactValidator, NewContact};
use crate::domain::identifier::digits_of;
use crate::domain::settings::AccountSettings;
use crate::domain::{FieldError, FieldErrors, PublicId, Source, Timestamp};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult, NotFoundAs};
use crate::store::{AccountId, ContactFilter, ContactPage, PageStart, StoreError, TagsMode};

/// Contacts per page of `GET /contacts` (SPEC §4).
pub const PAGE_SIZE: u32 = 20;
/// The deepest `page` a listing serves; walk further with the cursor.
pub const MAX_PAGE: u32 = 500;
/// Most tags one listing may filter by.
pub const MAX_FILTER_TAGS: usize = 100;
/// The longest `q`.
pub const MAX_Q_CHARS: usize = 255;

/// Spellings from Callbell's French documentation, accepted beside the
/// English ones; the unaccented forms forgive keyboards without accents.
pub const FRENCH_ALIASES: [(&str, &str); 6] = [
    ("identifiant", "identifier"),
    ("nom", "name"),
    ("champs_personnalisés", "custom_fields"),
    ("champs_personnalises", "custom_fields"),
    ("utilisateur_assigné", "assigned_user"),
    ("utilisateur_assigne", "assigned_user"),
];

/// Tags as an array of names or as one string of comma-separated names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagNames(pub Vec<String>);

impl<'de> Deserialize<'de> for TagNames {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TagNames;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of tag names or a string of comma-separated tag names")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<TagNames, E> {
                Ok(TagNames(
                    text.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<TagNames, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(TagNames(names))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// An identifier sent as a JSON string, or as a number (a phone number
/// typed without quotes), kept as its decimal digits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentifierText(pub String);

impl<'de> Deserialize<'de> for IdentifierText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => Ok(IdentifierText(text)),
            Value::Number(n) if n.is_u64() => Ok(IdentifierText(n.to_string())),
            _ => Err(serde::de::Error::custom(
                "must be a string (the phone number or channel identifier)",
            )),
        }
    }
}

/// `POST /contacts`. French spellings from Callbell's translated docs are
/// accepted too: `identifiant`, `nom`, `champs_personnalisés`,
/// `utilisateur_assigné`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CreateContactRequest {
    /// The phone number on WhatsApp; unique per channel (by its digits).
    #[schema(required = true, nullable = false)]
    pub identifier: Option<IdentifierText>,
    #[schema(required = true, nullable = false)]
    pub source: Option<Source>,
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = r"\S"
    )]
    pub name: Option<String>,
    pub tags: Option<TagNames>,
    /// Custom field name to value: a string (at most 4096 characters),
    /// number, array of options (checkbox), or null for no value; at most
    /// 100 fields.
    #[schema(schema_with = super::openapi::custom_fields_object)]
    pub custom_fields: Option<Map<String, Value>>,
    /// E-mail of the user to assign the contact to.
    #[schema(value_type = Option<EmailAddress>)]
    pub assigned_user: Option<String>,
    /// Team; the default team when omitted.
    #[schema(value_type = Option<PublicId>)]
    pub team_uuid: Option<String>,
    /// Channel; the main channel of `source` when omitted.
    #[schema(value_type = Option<PublicId>)]
    pub channel_uuid: Option<String>,
    pub bot_status: Option<BotCommand>,
    /// At most 1000 characters.
    #[schema(max_length = 1000)]
    pub note: Option<String>,
}

impl CreateContactRequest {
    /// The contact this request asks for, or every problem with it.
    pub fn validate(
        self,
        settings: &AccountSettings,
        errors: FieldErrors,
    ) -> Result<NewContact, Vec<FieldError>> {
        let mut v = ContactValidator::new(settings, errors);
        let source = v.required("source", self.source);
        let identifier_text = v.required("identifier", self.identifier);
        let name = v
            .required("name", self.name)
            .map(|n| v.name("name", &n))
            .unwrap_or_default();
        let identifier = match (&identifier_text, source) {
            (Some(text), Some(source)) => v.identifier(&text.0, source),
            _ => None,
        };
        let channel = source.and_then(|s| v.channel(s, self.channel_uuid.as_deref()));
        let tag_ids = self.tags.map(|t| v.tags(&t.0)).unwrap_or_default();
        let field_values = self
            .custom_fields
            .map(|values| v.custom_fields(&values))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(id, value)| value.map(|value| (id, value)))
            .collect();
        let assigned_user_id = self
            .assigned_user
            .and_then(|email| v.assigned_user("assigned_user", &email));
        let team_id = match self.team_uuid {
            Some(uuid) => v.team(&uuid),
            None => v.default_team(),
        };
        let bot = match self.bot_status {
            Some(command) => v.bot(command),
            None => v.default_bot(),
        };
        let note = self.note.and_then(|note| v.note(&note));
        let (Some(source), Some(identifier), Some(channel)) = (source, identifier, channel) else {
            // Whatever is missing has been recorded as an error already.
            return Err(v.finish(()).err().unwrap_or_default());
        };
        let now = Timestamp::now();
        v.finish(NewContact {
            uuid: PublicId::time_ordered(),
            uuid_given: false,
            conversation_uuid: PublicId::time_ordered(),
            created_at: now,
            name,
            identifier,
            source,
            channel_id: channel.id,
            team_id,
            assigned_user_id,
            tag_ids,
            field_values,
            note,
            bot,
        })
    }
}

/// `PATCH /contacts/:uuid`. Identifier, source and channel are fixed at
/// creation; sending them changes nothing.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateContactRequest {
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub name: Option<String>,
    /// Replaces the whole tag list (`[]` clears it).
    pub tags: Option<TagNames>,
    /// Merged: keys given are set, `null` removes a key, others stay; at
    /// most 100 fields, a text value at most 4096 characters.
    #[schema(schema_with = super::openapi::custom_fields_object)]
    pub custom_fields: Option<Map<String, Value>>,
    #[schema(value_type = Option<EmailAddress>)]
    pub assigned_user: Option<String>,
    /// `true` unassigns the contact (not together with `assigned_user`).
    pub unassign_user: Option<bool>,
    #[schema(value_type = Option<PublicId>)]
    pub team_uuid: Option<String>,
    pub bot_status: Option<BotCommand>,
    /// `""` or `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub note: Option<Option<String>>,
    /// The contact's business-scoped user id; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub bsuid: Option<Option<String>>,
}

impl UpdateContactRequest {
    /// The changes this request asks for, or every problem with it.
    pub fn validate(
        self,
        settings: &AccountSettings,
        mut errors: FieldErrors,
    ) -> Result<ContactChanges, Vec<FieldError>> {
        let unassign = self.unassign_user == Some(true);
        if unassign && self.assigned_user.is_some() {
            errors.push(FieldError::new(
                "unassign_user",
                "conflicting_fields",
                "'assigned_user' and 'unassign_user: true' cannot be sent together",
            ));
        }
        let mut v = ContactValidator::new(settings, errors);
        let assigned_user_id = match (self.assigned_user, unassign) {
            (Some(email), false) => v.assigned_user("assigned_user", &email).map(Some),
            (None, true) => Some(None),
            _ => None,
        };
        let changes = ContactChanges {
            name: self.name.map(|n| v.name("name", &n)),
            tag_ids: self.tags.map(|t| v.tags(&t.0)),
            field_values: self
                .custom_fields
                .map(|f| v.custom_fields(&f))
                .unwrap_or_default(),
            assigned_user_id,
            team_id: self.team_uuid.and_then(|uuid| v.team(&uuid)),
            bot: self.bot_status.and_then(|command| v.bot(command)),
            note: self.note.map(|note| note.and_then(|n| v.note(&n))),
            bsuid: self.bsuid.map(|bsuid| bsuid.and_then(|b| v.bsuid(&b))),
        };
        v.finish(changes)
    }
}

#[utoipa::path(
    post,
    path = "/contacts",
    tag = "contacts",
    request_body = CreateContactRequest,
    responses(
        (status = 200, description = "The created contact (in an array, as Callbell's example shows)", body = ContactInArray),
        (status = 409, description = "A contact with this identifier exists on the channel (`contact_exists`, its uuid in `details`)", body = ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<ContactInArray>> {
    let (request, errors) = parse_fields::<CreateContactRequest>(body, &FRENCH_ALIASES);
    let settings = app.store.settings(caller.account).await?;
    let contact = request
        .validate(&settings, errors)
        .map_err(ApiError::validation)?;
    let record = app.store.insert_contact(caller.account, &contact).await?;
    Ok(Json(ContactInArray {
        contact: vec![app.links.contact(record, false)],
    }))
}

#[utoipa::path(
    patch,
    path = "/contacts/{uuid}",
    tag = "contacts",
    params(("uuid" = PublicId, Path, description = "The contact")),
    request_body = UpdateContactRequest,
    responses(
        (status = 200, description = "The updated contact", body = ContactInArray),
        (status = 409, description = "The bsuid belongs to another contact (`bsuid_taken`)", body = ErrorBody),
    )
)]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<ContactInArray>> {
    let id: PublicId = path_id(&uuid, "contact")?;
    let (request, errors) = parse_fields::<UpdateContactRequest>(body, &FRENCH_ALIASES);
    let settings = app.store.settings(caller.account).await?;
    let changes = request
        .validate(&settings, errors)
        .map_err(ApiError::validation)?;
    let record = app
        .store
        .update_contact(caller.account, id, &changes, Timestamp::now())
        .await
        .not_found_as("contact", &uuid)?;
    Ok(Json(ContactInArray {
        contact: vec![app.links.contact(record, false)],
    }))
}

/// `?include_field_types=true` adds `customFieldsMetadata`.
#[derive(Debug, Clone, Copy, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FieldTypesQuery {
    /// Add `customFieldsMetadata` (value, type, options of each field).
    pub include_field_types: Option<bool>,
}

impl FromQuery for FieldTypesQuery {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        Ok(FieldTypesQuery {
            include_field_types: query.flag("include_field_types")?,
        })
    }
}

#[utoipa::path(
    get,
    path = "/contacts/{uuid}",
    tag = "contacts",
    params(("uuid" = PublicId, Path, description = "The contact"), FieldTypesQuery),
    responses((status = 200, description = "The contact (in an array, as Callbell's example shows)", body = ContactInArray))
)]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
    Query(query): Query<FieldTypesQuery>,
) -> ApiResult<Json<ContactInArray>> {
    let id: PublicId = path_id(&uuid, "contact")?;
    let record = app
        .store
        .contact(caller.account, id)
        .await
        .not_found_as("contact", &uuid)?;
    Ok(Json(ContactInArray {
        contact: vec![
            app.links
                .contact(record, query.include_field_types.unwrap_or(false)),
        ],
    }))
}

/// The query of `GET /contacts`.
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactListQuery {
    /// The page (20 contacts each, newest first); ignored with `after`.
    #[param(minimum = 1, maximum = 500)]
    pub page: Option<u32>,
    /// Only contacts from this source.
    pub source: Option<Source>,
    /// Comma-separated tag names (case-insensitive); a contact matches when
    /// it has all of them (any of them with `tags_mode=any`).
    pub tags: Option<String>,
    pub tags_mode: Option<TagsMode>,
    /// Only contacts of this team.
    pub team_uuid: Option<PublicId>,
    /// Case-insensitive part of the name, or digits of the phone number.
    pub q: Option<String>,
    /// Add `customFieldsMetadata` to each contact.
    pub include_field_types: Option<bool>,
    /// `meta.next` of the previous page: continue the walk from there.
    pub after: Option<String>,
}

impl FromQuery for ContactListQuery {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        let tags_mode = match query.get("tags_mode").map(str::trim) {
            None => None,
            Some("all") => Some(TagsMode::All),
            Some("any") => Some(TagsMode::Any),
            Some(other) => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("query parameter 'tags_mode' must be all or any, not '{other}'"),
                ));
            }
        };
        let after = query.get("after").map(str::trim).filter(|a| !a.is_empty());
        let page = match after {
            // The page is ignored when continuing a cursor walk.
            Some(_) => None,
            None => Some(query.page()?),
        };
        let tags = query.get("tags").map(str::to_owned);
        if tags
            .as_deref()
            .is_some_and(|t| t.split(',').count() > MAX_FILTER_TAGS)
        {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("query parameter 'tags' may name at most {MAX_FILTER_TAGS} tags"),
            ));
        }
        Ok(ContactListQuery {
            page,
            source: query.parse::<Source>("source", Source::EXPECTED)?,
            tags,
            tags_mode,
            team_uuid: query.parse::<PublicId>("team_uuid", "a team uuid (32 hex characters)")?,
            q: match query.get("q").map(str::trim).filter(|q| !q.is_empty()) {
                Some(q) if q.chars().count() > MAX_Q_CHARS => {
                    return Err(ApiError::bad_request(
                        "invalid_query",
                        format!(
                            "query parameter 'q' is {} characters long; at most {MAX_Q_CHARS} are allowed",
                            q.chars().count()
                        ),
                    ));
                }
                other => other.map(str::to_owned),
            },
            include_field_types: query.flag("include_field_types")?,
            after: after.map(str::to_owned),
        })
    }
}

impl ContactListQuery {
    pub fn filter(&self) -> ContactFilter {
        ContactFilter {
            source: self.source,
            tags: self
                .tags
                .as_deref()
                .map(|tags| {
                    tags.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            tags_mode: self.tags_mode.unwrap_or_default(),
            team: self.team_uuid,
            q: self.q.clone(),
        }
    }
}

#[utoipa::path(
    get,
    path = "/contacts",
    tag = "contacts",
    params(ContactListQuery),
    responses((status = 200, description = "A page of contacts, newest first", body = ContactList))
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<ContactListQuery>,
) -> ApiResult<Json<ContactList>> {
    let listed = list_contacts(&app, caller.account, &query).await?;
    let include_field_types = query.include_field_types.unwrap_or(false);
    Ok(Json(ContactList {
        contacts: listed
            .page
            .contacts
            .into_iter()
            .map(|c| app.links.contact(c, include_field_types))
            .collect(),
        meta: CursorMeta {
            page: listed.number,
            pages: page_count(listed.page.total, PAGE_SIZE),
            next: listed.next,
        },
    }))
}

/// A page of the listing with its number and the cursor that continues
/// it: what `GET /contacts` answers and the dashboard's list shows.
pub struct ListedContacts {
    pub page: ContactPage,
    pub number: u32,
    pub next: Option<String>,
}

/// The page `query` asks for (a page number, or a cursor's next page).
pub async fn list_contacts(
    app: &AppContext,
    account: AccountId,
    query: &ContactListQuery,
) -> ApiResult<ListedContacts> {
    let requested = query.filter();
    let (start, number, filter) = match &query.after {
        Some(text) => {
            let cursor = app.cursors.decode(text, account).ok_or_else(|| {
                ApiError::bad_request("invalid_cursor", "Invalid pagination cursor")
            })?;
            if requested != ContactFilter::default() && requested != cursor.filter {
                return Err(ApiError::bad_request(
                    "invalid_cursor",
                    "Invalid pagination cursor: it continues a listing with different filters",
                ));
            }
            let start = PageStart::After {
                position: cursor.position,
                watermark: cursor.watermark,
            };
            (start, cursor.page, cursor.filter)
        }
        None => {
            let page = query.page.unwrap_or(1);
            if page > MAX_PAGE {
                return Err(ApiError::bad_request(
                    "pagination_limit_exceeded",
                    "Pagination limit exceeded",
                ));
            }
            (PageStart::Number(page), page, requested)
        }
    };
    let page = app
        .store
        .list_contacts(account, &filter, start, PAGE_SIZE)
        .await?;
    let next = page.next.map(|position| {
        app.cursors.encode(&Cursor {
            account,
            position,
            watermark: page.watermark,
            page: number.saturating_add(1),
            filter: filter.clone(),
        })
    });
    Ok(ListedContacts { page, number, next })
}

/// `?channel_uuid=` of the phone lookup.
#[derive(Debug, Clone, Copy, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChannelQuery {
    /// The channel to look in; the main WhatsApp channel when omitted.
    pub channel_uuid: Option<PublicId>,
}

impl FromQuery for ChannelQuery {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        Ok(ChannelQuery {
            channel_uuid: query
                .parse::<PublicId>("channel_uuid", "a channel uuid (32 hex characters)")?,
        })
    }
}

#[utoipa::path(
    get,
    path = "/contacts/phone/{number}",
    tag = "contacts",
    params(("number" = String, Path, description = "The phone number; only its digits are compared"), ChannelQuery),
    responses((status = 200, description = "The contact with this number", body = SingleContact))
)]
pub async fn by_phone(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(number): PathParam,
    Query(query): Query<ChannelQuery>,
) -> ApiResult<Json<SingleContact>> {
    let settings = app.store.settings(caller.account).await?;
    let channel = match query.channel_uuid {
        Some(id) => settings.channel(id).ok_or_else(|| {
            ApiError::not_found(format!("channel '{id}' does not exist in this account"))
        })?,
        None => settings.main_channel(Source::Whatsapp).ok_or_else(|| {
            ApiError::not_found("this account has no main WhatsApp channel; pass channel_uuid")
        })?,
    };
    let digits = digits_of(&number);
    let not_found = || {
        ApiError::not_found(format!(
            "no contact with phone number '{number}' on this channel"
        ))
    };
    if digits.is_empty() {
        return Err(not_found());
    }
    let record = app
        .store
        .contact_by_phone(caller.account, channel.id, &digits)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => not_found(),
            other => ApiError::from(other),
        })?;
    Ok(Json(SingleContact {
        contact: app.links.contact(record, false),
    }))
}

#[utoipa::path(
    get,
    path = "/contacts/bsuid/{bsuid}",
    tag = "contacts",
    params(("bsuid" = String, Path, description = "The contact's bsuid, set through PATCH")),
    responses((status = 200, description = "The contact with this bsuid", body = SingleContact))
)]
pub async fn by_bsuid(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(bsuid): PathParam,
) -> ApiResult<Json<SingleContact>> {
    let record = app
        .store
        .contact_by_bsuid(caller.account, bsuid.trim())
        .await
        .not_found_as("contact with bsuid", &bsuid)?;
    Ok(Json(SingleContact {
        contact: app.links.contact(record, false),
    }))
}

#[utoipa::path(
    delete,
    path = "/contacts/{uuid}",
    tag = "contacts",
    params(("uuid" = PublicId, Path, description = "The contact")),
    responses((status = 200, description = "`{\"status\": \"contact was destroyed\"}`: the contact, its conversation and messages are gone", body = Status))
)]
pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
) -> ApiResult<Json<Status>> {
    let id: PublicId = path_id(&uuid, "contact")?;
    app.store
        .delete_contact(caller.account, id)
        .await
        .not_found_as("contact", &uuid)?;
    Ok(Json(Status {
        status: "contact was destroyed",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_come_as_arrays_or_comma_separated_strings() {
        let list: TagNames =
            serde_json::from_value(json!(["Call back", "Interested"])).expect("array");
        assert_eq!(list.0, ["Call back", "Interested"]);
        let csv: TagNames =
            serde_json::from_value(json!("Call back, Interested,")).expect("string");
        assert_eq!(csv.0, ["Call back", "Interested"]);
        assert!(serde_json::from_value::<TagNames>(json!(5)).is_err());
        assert!(serde_json::from_value::<TagNames>(json!(["a", 5])).is_err());
    }

    #[test]
    fn identifiers_may_be_unquoted_numbers() {
        let id: IdentifierText = serde_json::from_value(json!(123456789)).expect("number");
        assert_eq!(id.0, "123456789");
        assert!(serde_json::from_value::<IdentifierText>(json!(1.5)).is_err());
        assert!(serde_json::from_value::<IdentifierText>(json!(true)).is_err());
    }
}
