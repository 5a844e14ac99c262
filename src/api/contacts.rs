//! Contacts: create, update, get, list, lookups and delete (SPEC §3–§4).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::AppState;
use super::extract::{JsonObject, PathParam, QueryParams, nullable, parse_fields, path_id};
use super::views::{ContactInArray, ContactList, CursorMeta, SingleContact, Status, page_count};
use crate::auth::Caller;
use crate::cursor::Cursor;
use crate::domain::contact::{BotCommand, ContactChanges, ContactValidator, NewContact};
use crate::domain::identifier::digits_of;
use crate::domain::settings::AccountSettings;
use crate::domain::{FieldError, FieldErrors, PublicId, Source, Timestamp};
use crate::error::{ApiError, ApiResult, NotFoundAs};
use crate::store::{ContactFilter, PageStart, TagsMode};

/// Contacts per page of `GET /contacts` (SPEC §4).
pub const PAGE_SIZE: u32 = 20;
/// The deepest `page` a listing serves; walk further with the cursor.
pub const MAX_PAGE: u32 = 500;

/// Spellings from Callbell's French documentation, accepted beside the
/// English ones; the unaccented forms forgive keyboards without accents.
const FRENCH_ALIASES: [(&str, &str); 6] = [
    ("identifiant", "identifier"),
    ("nom", "name"),
    ("champs_personnalisés", "custom_fields"),
    ("champs_personnalises", "custom_fields"),
    ("utilisateur_assigné", "assigned_user"),
    ("utilisateur_assigne", "assigned_user"),
];

/// Tags as an array of names or as one string of comma-separated names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagList(pub Vec<String>);

impl<'de> Deserialize<'de> for TagList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TagList;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of tag names or a string of comma-separated tag names")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<TagList, E> {
                Ok(TagList(
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
            ) -> Result<TagList, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(TagList(names))
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

/// `POST /contacts`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateContactRequest {
    pub identifier: Option<IdentifierText>,
    pub source: Option<Source>,
    pub name: Option<String>,
    pub tags: Option<TagList>,
    pub custom_fields: Option<Map<String, Value>>,
    pub assigned_user: Option<String>,
    pub team_uuid: Option<String>,
    pub channel_uuid: Option<String>,
    pub bot_status: Option<BotCommand>,
    pub note: Option<String>,
}

impl CreateContactRequest {
    fn validate(
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
            uuid: PublicId::random(),
            conversation_uuid: PublicId::random(),
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
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UpdateContactRequest {
    pub name: Option<String>,
    pub tags: Option<TagList>,
    pub custom_fields: Option<Map<String, Value>>,
    pub assigned_user: Option<String>,
    pub unassign_user: Option<bool>,
    pub team_uuid: Option<String>,
    pub bot_status: Option<BotCommand>,
    #[serde(deserialize_with = "nullable")]
    pub note: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    pub bsuid: Option<Option<String>>,
}

impl UpdateContactRequest {
    fn validate(
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
        contact: vec![app.links.contact(&record, false)],
    }))
}

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
        contact: vec![app.links.contact(&record, false)],
    }))
}

pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
    query: QueryParams,
) -> ApiResult<Json<ContactInArray>> {
    let id: PublicId = path_id(&uuid, "contact")?;
    let include_field_types = query.flag("include_field_types")?.unwrap_or(false);
    let record = app
        .store
        .contact(caller.account, id)
        .await
        .not_found_as("contact", &uuid)?;
    Ok(Json(ContactInArray {
        contact: vec![app.links.contact(&record, include_field_types)],
    }))
}

pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> ApiResult<Json<ContactList>> {
    let include_field_types = query.flag("include_field_types")?.unwrap_or(false);
    let requested = filter_from_query(&query)?;
    let after = query.get("after").map(str::trim).filter(|a| !a.is_empty());
    let (start, page_number, filter) = match after {
        Some(text) => {
            let cursor = app.cursors.decode(text, caller.account).ok_or_else(|| {
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
            let page = query.page()?;
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
        .list_contacts(caller.account, &filter, start, PAGE_SIZE)
        .await?;
    let next = page.next.map(|position| {
        app.cursors.encode(&Cursor {
            account: caller.account,
            position,
            watermark: page.watermark,
            page: page_number.saturating_add(1),
            filter: filter.clone(),
        })
    });
    Ok(Json(ContactList {
        contacts: page
            .contacts
            .iter()
            .map(|c| app.links.contact(c, include_field_types))
            .collect(),
        meta: CursorMeta {
            page: page_number,
            pages: page_count(page.total, PAGE_SIZE),
            next,
        },
    }))
}

fn filter_from_query(query: &QueryParams) -> ApiResult<ContactFilter> {
    let tags_mode = match query.get("tags_mode").map(str::trim) {
        None | Some("") | Some("all") => TagsMode::All,
        Some("any") => TagsMode::Any,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("query parameter 'tags_mode' must be all or any, not '{other}'"),
            ));
        }
    };
    Ok(ContactFilter {
        source: query.parse::<Source>("source", Source::EXPECTED)?,
        tags: query
            .get("tags")
            .map(|tags| {
                tags.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        tags_mode,
        team: query.parse::<PublicId>("team_uuid", "a team uuid (32 hex characters)")?,
        q: query
            .get("q")
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned),
    })
}

pub async fn by_phone(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(number): PathParam,
    query: QueryParams,
) -> ApiResult<Json<SingleContact>> {
    let settings = app.store.settings(caller.account).await?;
    let channel = match query
        .get("channel_uuid")
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(text) => {
            let id: PublicId = path_id(text, "channel")?;
            settings.channel(id).ok_or_else(|| {
                ApiError::not_found(format!("channel '{text}' does not exist in this account"))
            })?
        }
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
            crate::store::StoreError::NotFound => not_found(),
            other => ApiError::from(other),
        })?;
    Ok(Json(SingleContact {
        contact: app.links.contact(&record, false),
    }))
}

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
        contact: app.links.contact(&record, false),
    }))
}

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
        let list: TagList =
            serde_json::from_value(json!(["Call back", "Interested"])).expect("array");
        assert_eq!(list.0, ["Call back", "Interested"]);
        let csv: TagList = serde_json::from_value(json!("Call back, Interested,")).expect("string");
        assert_eq!(csv.0, ["Call back", "Interested"]);
        assert!(serde_json::from_value::<TagList>(json!(5)).is_err());
        assert!(serde_json::from_value::<TagList>(json!(["a", 5])).is_err());
    }

    #[test]
    fn identifiers_may_be_unquoted_numbers() {
        let id: IdentifierText = serde_json::from_value(json!(123456789)).expect("number");
        assert_eq!(id.0, "123456789");
        assert!(serde_json::from_value::<IdentifierText>(json!(1.5)).is_err());
        assert!(serde_json::from_value::<IdentifierText>(json!(true)).is_err());
    }
}
