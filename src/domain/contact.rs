//! Contacts: what the store returns, what it accepts, and the checks that
//! turn names and ids a client sent into references to account settings.

use std::collections::HashSet;
use std::str::FromStr;

use serde_json::{Map, Value};

use super::identifier::{Identifier, IdentifierError};
use super::settings::{AccountSettings, Bot, Channel, Team};
use super::{
    CustomFieldType, CustomFieldValue, FieldError, FieldErrors, FunnelId, PublicId, Source,
    Timestamp, non_blank,
};

/// Longest identifier (phone number, or a channel's user id) accepted.
pub const MAX_IDENTIFIER_CHARS: usize = 255;
/// Longest contact note, in Unicode scalar values (SPEC §4).
pub const MAX_NOTE_CHARS: usize = 1000;
/// The longest contact name.
pub const MAX_NAME_CHARS: usize = 255;
/// Most tags one request may set on a contact.
pub const MAX_TAGS: usize = 100;
/// Most custom fields one request may set.
pub const MAX_CUSTOM_FIELDS: usize = 100;
/// The longest custom field value, as text.
pub const MAX_FIELD_VALUE_CHARS: usize = 4096;
/// Longest conversation note message, in Unicode scalar values (SPEC §4).
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// What a client asks of a contact's bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotCommand {
    Start,
    End,
}

impl BotCommand {
    pub const EXPECTED: &'static str = "either bot_start or bot_end";

    pub const fn as_str(self) -> &'static str {
        match self {
            BotCommand::Start => "bot_start",
            BotCommand::End => "bot_end",
        }
    }

    pub const fn resulting_status(self) -> BotStatus {
        match self {
            BotCommand::Start => BotStatus::Started,
            BotCommand::End => BotStatus::Ended,
        }
    }
}

impl FromStr for BotCommand {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "bot_start" => Ok(BotCommand::Start),
            "bot_end" => Ok(BotCommand::End),
            _ => Err(()),
        }
    }
}

/// The stored state of a contact's bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotStatus {
    Started,
    Ended,
}

impl BotStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            BotStatus::Started => "started",
            BotStatus::Ended => "ended",
        }
    }

    pub fn from_stored(text: &str) -> Option<Self> {
        match text {
            "started" => Some(BotStatus::Started),
            "ended" => Some(BotStatus::Ended),
            _ => None,
        }
    }
}

/// A contact's bot as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactBot {
    pub bot: Bot,
    pub status: BotStatus,
    /// The bot version the contact's conversation runs on.
    pub version: i64,
    pub conversation_started_at: Option<Timestamp>,
}

impl ContactBot {
    /// `in_progress` while started and the conversation is open (SPEC §4).
    pub fn public_status(&self, conversation_open: bool) -> &'static str {
        match self.status {
            BotStatus::Started if conversation_open => "in_progress",
            status => status.as_str(),
        }
    }
}

/// One custom field value of a contact, with its field's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactFieldValue {
    pub name: String,
    pub kind: CustomFieldType,
    pub options: Vec<String>,
    pub value: CustomFieldValue,
}

/// A contact with everything it refers to resolved, as reads return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRecord {
    pub uuid: PublicId,
    pub name: String,
    pub identifier: String,
    pub source: Source,
    pub avatar_url: Option<String>,
    pub blocked_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub funnel: Option<FunnelId>,
    pub closed_at: Option<Timestamp>,
    pub conversation_uuid: PublicId,
    /// Canonical tag names, in the order they were set.
    pub tags: Vec<String>,
    /// E-mail of the assigned user.
    pub assigned_user: Option<String>,
    pub custom_fields: Vec<ContactFieldValue>,
    pub team: Option<Team>,
    pub channel: Channel,
    pub bsuid: Option<String>,
    pub note: Option<String>,
    pub bot: Option<ContactBot>,
}

/// The bot state a contact starts with or is switched to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BotAssignment {
    pub bot_id: i64,
    pub status: BotStatus,
    pub version: i64,
}

/// A validated contact, ready to insert.
#[derive(Debug, Clone)]
pub struct NewContact {
    pub uuid: PublicId,
    /// The uuid was given (an import of an export), not made here: it is
    /// kept only where no contact has it yet.
    pub uuid_given: bool,
    pub conversation_uuid: PublicId,
    pub created_at: Timestamp,
    pub name: String,
    pub identifier: Identifier,
    pub source: Source,
    pub channel_id: i64,
    pub team_id: Option<i64>,
    pub assigned_user_id: Option<i64>,
    pub tag_ids: Vec<i64>,
    pub field_values: Vec<(i64, CustomFieldValue)>,
    pub note: Option<String>,
    pub bot: Option<BotAssignment>,
}

/// A validated PATCH: `None` leaves a property as it is.
#[derive(Debug, Clone, Default)]
pub struct ContactChanges {
    pub name: Option<String>,
    /// Replaces the whole tag list.
    pub tag_ids: Option<Vec<i64>>,
    /// Merged key by key: `Some` sets, `None` removes.
    pub field_values: Vec<(i64, Option<CustomFieldValue>)>,
    /// `Some(None)` unassigns.
    pub assigned_user_id: Option<Option<i64>>,
    pub team_id: Option<i64>,
    pub bot: Option<BotAssignment>,
    /// `Some(None)` clears.
    pub note: Option<Option<String>>,
    /// `Some(None)` clears.
    pub bsuid: Option<Option<String>>,
}

/// Checks the parts of a contact request against the account's settings,
/// recording every problem instead of stopping at the first.
pub struct ContactValidator<'s> {
    settings: &'s AccountSettings,
    errors: FieldErrors,
}

impl<'s> ContactValidator<'s> {
    pub fn new(settings: &'s AccountSettings, errors: FieldErrors) -> Self {
        ContactValidator { settings, errors }
    }

    pub fn errors(&self) -> &FieldErrors {
        &self.errors
    }

    pub fn finish<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        self.errors.finish(value)
    }

    /// Records `field` as missing when `value` is absent (unless the field
    /// was present with the wrong shape, already reported).
    pub fn required<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        self.errors.require(field, value)
    }

    pub fn name(&mut self, field: &str, name: &str) -> String {
        match non_blank(name) {
            Some(name) if name.chars().count() > MAX_NAME_CHARS => {
                self.errors.push(FieldError::new(
                    field,
                    "too_long",
                    format!(
                        "'{field}' is {} characters long; at most {MAX_NAME_CHARS} are allowed",
                        name.chars().count()
                    ),
                ));
                String::new()
            }
            Some(name) => name.to_owned(),
            None => {
                self.errors.push(FieldError::new(
                    field,
                    "blank",
                    format!("'{field}' must not be empty"),
                ));
                String::new()
            }
        }
    }

    pub fn identifier(&mut self, text: &str, source: Source) -> Option<Identifier> {
        if text.trim().chars().count() > MAX_IDENTIFIER_CHARS {
            self.errors.push(FieldError::new(
                "identifier",
                "too_long",
                format!("'identifier' may be at most {MAX_IDENTIFIER_CHARS} characters long"),
            ));
            return None;
        }
        match Identifier::parse(text, source) {
            Ok(identifier) => Some(identifier),
            Err(IdentifierError::Blank) => {
                self.errors.push(FieldError::new(
                    "identifier",
                    "blank",
                    "'identifier' must not be empty",
                ));
                None
            }
            Err(IdentifierError::NoDigits) => {
                self.errors.push(FieldError::new(
                    "identifier",
                    "invalid_phone_number",
                    "a WhatsApp identifier is a phone number and must contain digits",
                ));
                None
            }
        }
    }

    /// The channel a new contact of `source` goes to: the one named, which
    /// must be active and of that type, else the account's main channel.
    pub fn channel(&mut self, source: Source, channel_uuid: Option<&str>) -> Option<&'s Channel> {
        let settings = self.settings;
        let Some(text) = channel_uuid else {
            let main = settings.main_channel(source);
            if main.is_none() {
                self.errors.push(FieldError::new(
                    "source",
                    "no_channel",
                    format!("this account has no active main {source} channel; create one or pass channel_uuid"),
                ));
            }
            return main;
        };
        let channel = text
            .parse::<PublicId>()
            .ok()
            .and_then(|id| settings.channel(id));
        match channel {
            None => self.errors.push(FieldError::new(
                "channel_uuid",
                "unknown_channel",
                format!("channel '{text}' does not exist in this account"),
            )),
            Some(c) if !c.is_active() => self.errors.push(FieldError::new(
                "channel_uuid",
                "channel_discarded",
                format!("channel '{text}' has been discarded"),
            )),
            Some(c) if c.kind != source => self.errors.push(FieldError::new(
                "channel_uuid",
                "channel_source_mismatch",
                format!(
                    "channel '{text}' is a {} channel, but source is {source}",
                    c.kind
                ),
            )),
            Some(c) => return Some(c),
        }
        None
    }

    /// Tag names to tag ids, in the order given, duplicates collapsed.
    pub fn tags(&mut self, names: &[String]) -> Vec<i64> {
        if names.len() > MAX_TAGS {
            self.errors.push(FieldError::new(
                "tags",
                "too_many",
                format!(
                    "'tags' names {} tags; at most {MAX_TAGS} are allowed",
                    names.len()
                ),
            ));
            return Vec::new();
        }
        let mut ids = Vec::with_capacity(names.len());
        for (index, name) in names.iter().enumerate() {
            let field = format!("tags[{index}]");
            if non_blank(name).is_none() {
                self.errors.push(FieldError::new(
                    field,
                    "blank",
                    "tag names must not be empty",
                ));
                continue;
            }
            match self.settings.tag_named(name) {
                Some(tag) if !ids.contains(&tag.id) => ids.push(tag.id),
                Some(_) => {}
                None => self.errors.push(FieldError::new(
                    field,
                    "unknown_tag",
                    format!("tag '{}' does not exist in this account", name.trim()),
                )),
            }
        }
        ids
    }

    /// Custom field values by field id; `None` for a `null` ("no value").
    pub fn custom_fields(
        &mut self,
        values: &Map<String, Value>,
    ) -> Vec<(i64, Option<CustomFieldValue>)> {
        if values.len() > MAX_CUSTOM_FIELDS {
            self.errors.push(FieldError::new(
                "custom_fields",
                "too_many",
                format!(
                    "'custom_fields' sets {} fields; at most {MAX_CUSTOM_FIELDS} are allowed",
                    values.len()
                ),
            ));
            return Vec::new();
        }
        let mut resolved: Vec<(i64, Option<CustomFieldValue>)> = Vec::with_capacity(values.len());
        let mut seen = HashSet::new();
        for (key, value) in values {
            let field_path = format!("custom_fields.{key}");
            if let Value::String(text) = value
                && text.chars().count() > MAX_FIELD_VALUE_CHARS
            {
                self.errors.push(FieldError::new(
                    field_path,
                    "too_long",
                    format!(
                        "custom field '{key}' is {} characters long; at most {MAX_FIELD_VALUE_CHARS} are allowed",
                        text.chars().count()
                    ),
                ));
                continue;
            }
            let Some(field) = self.settings.custom_field_named(key) else {
                self.errors.push(FieldError::new(
                    field_path,
                    "unknown_custom_field",
                    format!("custom field '{key}' does not exist in this account"),
                ));
                continue;
            };
            if !seen.insert(field.id) {
                self.errors.push(FieldError::new(
                    field_path,
                    "duplicate_custom_field",
                    format!(
                        "custom field '{}' is given more than once (names are case-insensitive)",
                        field.name
                    ),
                ));
                continue;
            }
            if value.is_null() {
                resolved.push((field.id, None));
                continue;
            }
            match CustomFieldValue::parse(field.kind, &field.options, value) {
                Ok(value) => resolved.push((field.id, Some(value))),
                Err(problem) => self.errors.push(FieldError::new(
                    field_path,
                    problem.code,
                    format!("custom field '{}' ({}) {problem}", field.name, field.kind),
                )),
            }
        }
        resolved
    }

    pub fn assigned_user(&mut self, field: &str, email: &str) -> Option<i64> {
        let user = self.settings.user_with_email(email);
        if user.is_none() {
            self.errors.push(FieldError::new(
                field,
                "unknown_user",
                format!("no user with e-mail '{}' in this account", email.trim()),
            ));
        }
        user.map(|u| u.id)
    }

    pub fn team(&mut self, uuid: &str) -> Option<i64> {
        let team = uuid
            .parse::<PublicId>()
            .ok()
            .and_then(|id| self.settings.team(id));
        if team.is_none() {
            self.errors.push(FieldError::new(
                "team_uuid",
                "unknown_team",
                format!("team '{uuid}' does not exist in this account"),
            ));
        }
        team.map(|t| t.id)
    }

    pub fn default_team(&self) -> Option<i64> {
        self.settings.default_team().map(|t| t.id)
    }

    /// The bot state for `command`, which needs an enabled bot.
    pub fn bot(&mut self, command: BotCommand) -> Option<BotAssignment> {
        let bot = self.settings.enabled_bot();
        if bot.is_none() {
            self.errors.push(FieldError::new(
                "bot_status",
                "no_bot",
                "this account has no enabled bot; enable one before setting bot_status",
            ));
        }
        bot.map(|b| BotAssignment {
            bot_id: b.id,
            status: command.resulting_status(),
            version: b.version,
        })
    }

    /// A new contact's bot when none was asked for: started, if a bot is on.
    pub fn default_bot(&self) -> Option<BotAssignment> {
        self.settings.enabled_bot().map(|b| BotAssignment {
            bot_id: b.id,
            status: BotStatus::Started,
            version: b.version,
        })
    }

    /// A note: `""` means none; at most [`MAX_NOTE_CHARS`].
    pub fn note(&mut self, note: &str) -> Option<String> {
        let chars = note.chars().count();
        if chars > MAX_NOTE_CHARS {
            self.errors.push(FieldError::new(
                "note",
                "too_long",
                format!("'note' is {chars} characters long; at most {MAX_NOTE_CHARS} are allowed"),
            ));
            return None;
        }
        (!note.is_empty()).then(|| note.to_owned())
    }

    pub fn bsuid(&mut self, bsuid: &str) -> Option<String> {
        let trimmed = bsuid.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 255 {
            self.errors.push(FieldError::new(
                "bsuid",
                "invalid_bsuid",
                "'bsuid' must be between 1 and 255 characters",
            ));
            return None;
        }
        Some(trimmed.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::settings::{CustomField, Tag, User};
    use serde_json::json;

    fn settings() -> AccountSettings {
        let at = Timestamp::from_unix(0);
        AccountSettings::new(
            vec![
                Tag {
                    id: 1,
                    name: "Call back".into(),
                    created_at: at,
                },
                Tag {
                    id: 2,
                    name: "Interested".into(),
                    created_at: at,
                },
            ],
            vec![CustomField {
                id: 7,
                name: "orderNumber".into(),
                kind: CustomFieldType::Number,
                options: vec![],
                created_at: at,
            }],
            vec![User {
                id: 3,
                uuid: PublicId::random(),
                email: "Jane.Doe@email.com".into(),
                name: "Jane".into(),
                owner: false,
                created_at: at,
            }],
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        )
    }

    #[test]
    fn tags_resolve_case_insensitively_and_collapse() {
        let settings = settings();
        let mut v = ContactValidator::new(&settings, FieldErrors::new());
        let ids = v.tags(&["call BACK".into(), "Interested".into(), "call back".into()]);
        assert_eq!(ids, vec![1, 2]);
        assert!(v.errors().is_empty());
    }

    #[test]
    fn every_unknown_tag_is_named() {
        let settings = settings();
        let mut v = ContactValidator::new(&settings, FieldErrors::new());
        v.tags(&["Foo".into(), "Interested".into(), "Bar".into()]);
        let errors = v.finish(()).expect_err("unknown tags");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["tags[0]", "tags[2]"]);
        assert!(errors.iter().all(|e| e.code == "unknown_tag"));
        assert_eq!(
            errors[0].message,
            "tag 'Foo' does not exist in this account"
        );
    }

    #[test]
    fn custom_fields_check_names_and_types() {
        let settings = settings();
        let mut v = ContactValidator::new(&settings, FieldErrors::new());
        let values = json!({"ordernumber": "12", "Nope": "x"});
        let resolved = v.custom_fields(values.as_object().expect("object"));
        assert_eq!(
            resolved,
            vec![(7, Some(CustomFieldValue::from_stored("12".into())))]
        );
        let errors = v.finish(()).expect_err("unknown field");
        assert_eq!(errors[0].field, "custom_fields.Nope");

        let mut v = ContactValidator::new(&settings, FieldErrors::new());
        v.custom_fields(
            json!({"orderNumber": "twelve"})
                .as_object()
                .expect("object"),
        );
        let errors = v.finish(()).expect_err("bad number");
        assert_eq!(errors[0].code, "invalid_custom_field_value");
    }

    #[test]
    fn null_custom_field_means_no_value() {
        let settings = settings();
        let mut v = ContactValidator::new(&settings, FieldErrors::new());
        let resolved = v.custom_fields(json!({"orderNumber": null}).as_object().expect("object"));
        assert_eq!(resolved, vec![(7, None)]);
    }

    #[test]
    fn users_are_found_by_email_in_any_case() {
        let settings = settings();
        let mut v = ContactValidator::new(&settings, FieldErrors::new());
        assert_eq!(
            v.assigned_user("assigned_user", "jane.doe@EMAIL.com"),
            Some(3)
        );
        assert_eq!(v.assigned_user("assigned_user", "john@email.com"), None);
        assert!(v.errors().has_field("assigned_user"));
    }

    #[test]
    fn notes_count_unicode_scalar_values() {
        let settings = settings();
        let mut v = ContactValidator::new(&settings, FieldErrors::new());
        let exactly = "é".repeat(MAX_NOTE_CHARS);
        assert_eq!(v.note(&exactly), Some(exactly.clone()));
        assert_eq!(v.note(""), None);
        assert!(v.errors().is_empty());
        v.note(&format!("{exactly}x"));
        assert!(v.errors().has_field("note"));
    }

    #[test]
    fn bot_status_needs_an_enabled_bot() {
        let settings = settings();
        let mut v = ContactValidator::new(&settings, FieldErrors::new());
        assert_eq!(v.bot(BotCommand::Start), None);
        assert_eq!(v.default_bot(), None);
        let errors = v.finish(()).expect_err("no bot");
        assert_eq!(errors[0].code, "no_bot");
    }
}
