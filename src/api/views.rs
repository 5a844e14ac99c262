//! The wire shapes of responses: the Contact object of SPEC §3 and the
//! objects and envelopes around it, built from domain records.

use indexmap::IndexMap;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::contact::{ContactBot, ContactRecord};
use crate::domain::custom_field::decode_checked;
use crate::domain::settings::{Bot, Channel, CustomField, Funnel, Tag, Team, User};
use crate::domain::{CustomFieldType, FunnelId, PublicId, Source, Timestamp};
use crate::store::MessageRecord;

/// A contact as the API shows it (SPEC §3).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactView {
    pub uuid: PublicId,
    pub name: String,
    pub phone_number: String,
    #[schema(required = true)]
    pub avatar_url: Option<String>,
    #[schema(required = true)]
    pub blocked_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub source: Source,
    #[schema(required = true)]
    pub funnel_id: Option<FunnelId>,
    #[schema(required = true)]
    pub closed_at: Option<Timestamp>,
    pub href: String,
    pub conversation_href: String,
    pub tags: Vec<String>,
    #[schema(required = true)]
    pub assigned_user: Option<String>,
    pub custom_fields: IndexMap<String, String>,
    #[schema(required = true)]
    pub team: Option<TeamView>,
    pub channel: ContactChannelView,
    #[schema(required = true)]
    pub bsuid: Option<String>,
    #[schema(required = true)]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_fields_metadata: Option<IndexMap<String, FieldMetadataView>>,
}

impl ContactView {
    /// The uuid of the contact's conversation: the end of its
    /// `conversationHref`.
    pub fn conversation_uuid(&self) -> &str {
        self.conversation_href
            .rsplit('/')
            .next()
            .unwrap_or_default()
    }
}

/// A custom field value with its type, for `include_field_types=true`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldMetadataView {
    pub value: FieldMetadataValue,
    #[serde(rename = "type")]
    pub kind: CustomFieldType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
}

/// Checkbox values are real arrays here, every other type a string.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum FieldMetadataValue {
    Text(String),
    Checked(Vec<String>),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactChannelView {
    pub uuid: PublicId,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: Source,
    pub main: bool,
}

/// The public base address that `href`s are built on.
#[derive(Debug, Clone)]
pub struct Links {
    public_url: String,
}

impl Links {
    pub fn new(public_url: &str) -> Self {
        Links {
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// `{public_url}/{path}/{id}`, as `href` and `conversationHref` are.
    fn link(&self, path: &str, id: PublicId) -> String {
        let mut link = String::with_capacity(self.public_url.len() + path.len() + 34);
        link.push_str(&self.public_url);
        link.push('/');
        link.push_str(path);
        link.push('/');
        link.push_str(id.encode(&mut [0u8; 32]));
        link
    }

    pub fn contact(&self, record: ContactRecord, include_field_types: bool) -> ContactView {
        let custom_fields_metadata = include_field_types.then(|| {
            record
                .custom_fields
                .iter()
                .map(|f| {
                    let value = match f.kind {
                        CustomFieldType::Checkbox => {
                            FieldMetadataValue::Checked(decode_checked(f.value.as_str()))
                        }
                        _ => FieldMetadataValue::Text(f.value.as_str().to_owned()),
                    };
                    let options = f.kind.has_options().then(|| f.options.clone());
                    (
                        f.name.clone(),
                        FieldMetadataView {
                            value,
                            kind: f.kind,
                            options,
                        },
                    )
                })
                .collect()
        });
        let custom_fields = record
            .custom_fields
            .into_iter()
            .map(|f| (f.name, f.value.into_string()))
            .collect();
        ContactView {
            uuid: record.uuid,
            name: record.name,
            phone_number: record.identifier,
            avatar_url: record.avatar_url,
            blocked_at: record.blocked_at,
            created_at: record.created_at,
            source: record.source,
            funnel_id: record.funnel,
            closed_at: record.closed_at,
            href: self.link("contacts", record.uuid),
            conversation_href: self.link("chat", record.conversation_uuid),
            tags: record.tags,
            assigned_user: record.assigned_user,
            custom_fields,
            team: record.team.map(TeamView::from),
            channel: ContactChannelView {
                uuid: record.channel.uuid,
                title: record.channel.title,
                kind: record.channel.kind,
                main: record.channel.main,
            },
            bsuid: record.bsuid,
            note: record.note,
            custom_fields_metadata,
        }
    }
}

/// `{"contact": [C]}`: the envelope Callbell's examples use for create,
/// update, get, open and update_funnel.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactInArray {
    pub contact: Vec<ContactView>,
}

/// `{"contact": C}`: lookups by phone or bsuid, and close.
#[derive(Debug, Serialize, ToSchema)]
pub struct SingleContact {
    pub contact: ContactView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactList {
    pub contacts: Vec<ContactView>,
    pub meta: CursorMeta,
}

/// Pagination of listings that can also be walked with a cursor.
#[derive(Debug, Serialize, ToSchema)]
pub struct CursorMeta {
    pub page: u32,
    pub pages: u32,
    #[schema(required = true)]
    pub next: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PageMeta {
    pub page: u32,
    pub pages: u32,
}

/// The `page`-th (1-based) run of `page_size` items, with its meta block.
pub fn page_of<T>(items: &[T], page: u32, page_size: u32) -> (&[T], PageMeta) {
    let start = (page as usize - 1)
        .saturating_mul(page_size as usize)
        .min(items.len());
    let end = start.saturating_add(page_size as usize).min(items.len());
    let meta = PageMeta {
        page,
        pages: page_count(i64::try_from(items.len()).unwrap_or(i64::MAX), page_size),
    };
    (&items[start..end], meta)
}

/// `ceil(total / page_size)`, at least 1.
pub fn page_count(total: i64, page_size: u32) -> u32 {
    let total = u64::try_from(total).unwrap_or(0);
    let pages = total.div_ceil(u64::from(page_size)).max(1);
    u32::try_from(pages).unwrap_or(u32::MAX)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    #[schema(value_type = String, example = "contact was destroyed")]
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Success {
    pub success: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamView {
    pub uuid: PublicId,
    pub name: String,
    pub created_at: Timestamp,
    pub default: bool,
    pub members: i64,
}

impl From<&Team> for TeamView {
    fn from(team: &Team) -> Self {
        TeamView::from(team.clone())
    }
}

impl From<Team> for TeamView {
    fn from(team: Team) -> Self {
        TeamView {
            uuid: team.uuid,
            name: team.name,
            created_at: team.created_at,
            default: team.is_default,
            members: team.members,
        }
    }
}

/// A channel. `discardedAt` is a boolean, as in every Callbell example.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    pub uuid: PublicId,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: Source,
    pub main: bool,
    pub discarded_at: bool,
    pub created_at: Timestamp,
}

impl From<&Channel> for ChannelView {
    fn from(channel: &Channel) -> Self {
        ChannelView {
            uuid: channel.uuid,
            title: channel.title.clone(),
            kind: channel.kind,
            main: channel.main,
            discarded_at: channel.discarded_at.is_some(),
            created_at: channel.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagView {
    pub name: String,
    pub created_at: Timestamp,
}

impl From<&Tag> for TagView {
    fn from(tag: &Tag) -> Self {
        TagView {
            name: tag.name.clone(),
            created_at: tag.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomFieldView {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: CustomFieldType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    pub created_at: Timestamp,
}

impl From<&CustomField> for CustomFieldView {
    fn from(field: &CustomField) -> Self {
        CustomFieldView {
            name: field.name.clone(),
            kind: field.kind,
            options: field.kind.has_options().then(|| field.options.clone()),
            created_at: field.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub uuid: PublicId,
    pub email: String,
    pub name: String,
    pub owner: bool,
    pub created_at: Timestamp,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        UserView {
            uuid: user.uuid,
            email: user.email.clone(),
            name: user.name.clone(),
            owner: user.owner,
            created_at: user.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BotView {
    pub uuid: PublicId,
    pub name: String,
    pub enabled: bool,
    pub version: i64,
    pub created_at: Timestamp,
}

impl From<&Bot> for BotView {
    fn from(bot: &Bot) -> Self {
        BotView {
            uuid: bot.uuid,
            name: bot.name.clone(),
            enabled: bot.enabled,
            version: bot.version,
            created_at: bot.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunnelView {
    pub uuid: FunnelId,
    pub name: String,
    #[schema(required = true)]
    pub emoji: Option<String>,
    pub position: i64,
    pub created_at: Timestamp,
}

impl From<&Funnel> for FunnelView {
    fn from(funnel: &Funnel) -> Self {
        FunnelView {
            uuid: funnel.uuid,
            name: funnel.name.clone(),
            emoji: funnel.emoji.clone(),
            position: funnel.position,
            created_at: funnel.created_at,
        }
    }
}

/// A contact's bot (Callbell's Bot object).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactBotView {
    pub uuid: PublicId,
    pub name: String,
    pub status: BotState,
    #[schema(required = true)]
    pub conversation_started_at: Option<Timestamp>,
    pub version: i64,
    pub latest_bot_version: bool,
}

impl ContactBotView {
    pub fn new(bot: &ContactBot, conversation_open: bool) -> Self {
        ContactBotView {
            uuid: bot.bot.uuid,
            name: bot.bot.name.clone(),
            status: match bot.public_status(conversation_open) {
                "in_progress" => BotState::InProgress,
                "ended" => BotState::Ended,
                _ => BotState::Started,
            },
            conversation_started_at: bot.conversation_started_at,
            version: bot.version,
            latest_bot_version: bot.version >= bot.bot.version,
        }
    }
}

/// A contact's bot state as Callbell reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BotState {
    Started,
    InProgress,
    Ended,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactBotEnvelope {
    pub bot: ContactBotView,
}

/// A message of a contact's conversation. Notes and recorded events both
/// have status `note`; like Callbell's, they are written "from" and "to"
/// the contact's own number.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    pub uuid: PublicId,
    pub created_at: Timestamp,
    pub text: String,
    pub status: MessageStatus,
    pub channel: Source,
    pub from: String,
    pub to: String,
}

impl MessageView {
    pub fn new(message: &MessageRecord, contact: &ContactRecord) -> Self {
        MessageView {
            uuid: message.uuid,
            created_at: message.created_at,
            text: message.text.clone(),
            status: MessageStatus::Note,
            channel: contact.source,
            from: contact.identifier.clone(),
            to: contact.identifier.clone(),
        }
    }
}

/// Notes and recorded events are all `note`s, as in Callbell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Note,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageList {
    pub messages: Vec<MessageView>,
    pub meta: PageMeta,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_of_slices_and_counts() {
        let items: Vec<u32> = (1..=5).collect();
        let (first, meta) = page_of(&items, 1, 2);
        assert_eq!((first, meta.page, meta.pages), (&[1, 2][..], 1, 3));
        assert_eq!(page_of(&items, 3, 2).0, &[5]);
        assert!(page_of(&items, 9, 2).0.is_empty());
        assert_eq!(page_of(&items, u32::MAX, 2).1.pages, 3);
    }

    #[test]
    fn pages_round_up_and_never_drop_below_one() {
        assert_eq!(page_count(0, 20), 1);
        assert_eq!(page_count(20, 20), 1);
        assert_eq!(page_count(21, 20), 2);
        assert_eq!(page_count(-3, 20), 1);
    }
}
