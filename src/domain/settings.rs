//! The per-account configuration contacts are validated against (SPEC §2).

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{CustomFieldType, FunnelId, PublicId, Source, Timestamp, fold_case};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub id: i64,
    pub name: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomField {
    pub id: i64,
    pub name: String,
    pub kind: CustomFieldType,
    /// Labels a dropdown or checkbox chooses from; empty for other types.
    pub options: Vec<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub uuid: PublicId,
    pub email: String,
    pub name: String,
    /// The account owner: `GET /auth/me` speaks for them; cannot be deleted.
    pub owner: bool,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: i64,
    pub uuid: PublicId,
    pub name: String,
    pub is_default: bool,
    pub members: i64,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: i64,
    pub uuid: PublicId,
    pub title: String,
    pub kind: Source,
    pub main: bool,
    pub discarded_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl Channel {
    /// The main WhatsApp channel every account starts with (and a pulled
    /// account gets when its source has none), not yet stored.
    pub fn default_whatsapp(created_at: Timestamp) -> Channel {
        Channel {
            id: 0,
            uuid: PublicId::random(),
            title: "WhatsApp".to_owned(),
            kind: Source::Whatsapp,
            main: true,
            discarded_at: None,
            created_at,
        }
    }

    pub fn is_active(&self) -> bool {
        self.discarded_at.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bot {
    pub id: i64,
    pub uuid: PublicId,
    pub name: String,
    pub enabled: bool,
    pub version: i64,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Funnel {
    pub id: i64,
    pub uuid: FunnelId,
    pub name: String,
    pub emoji: Option<String>,
    pub position: i64,
    pub created_at: Timestamp,
}

/// A consistent view of everything an account has configured, read in one
/// go so that a request is validated against a single state.
#[derive(Debug, Clone, Default)]
pub struct AccountSettings {
    pub tags: Vec<Tag>,
    pub custom_fields: Vec<CustomField>,
    pub users: Vec<User>,
    pub teams: Vec<Team>,
    pub channels: Vec<Channel>,
    pub bots: Vec<Bot>,
    pub funnels: Vec<Funnel>,
    /// Lookups by id and folded name, built on first use.
    index: OnceLock<SettingsIndex>,
}

/// Positions in the lists of [`AccountSettings`], by what requests and
/// stored rows refer to them with.
#[derive(Debug, Clone, Default)]
struct SettingsIndex {
    tags_by_key: HashMap<String, usize>,
    tags_by_id: HashMap<i64, usize>,
    fields_by_key: HashMap<String, usize>,
    fields_by_id: HashMap<i64, usize>,
    users_by_key: HashMap<String, usize>,
    users_by_id: HashMap<i64, usize>,
    teams_by_id: HashMap<i64, usize>,
    channels_by_id: HashMap<i64, usize>,
    bots_by_id: HashMap<i64, usize>,
    funnels_by_id: HashMap<i64, usize>,
}

fn positions<T>(items: &[T], key: impl Fn(&T) -> i64) -> HashMap<i64, usize> {
    items.iter().enumerate().map(|(i, t)| (key(t), i)).collect()
}

fn folded_positions<T>(items: &[T], name: impl Fn(&T) -> &str) -> HashMap<String, usize> {
    items
        .iter()
        .enumerate()
        .map(|(i, t)| (fold_case(name(t)), i))
        .collect()
}

impl AccountSettings {
    pub fn new(
        tags: Vec<Tag>,
        custom_fields: Vec<CustomField>,
        users: Vec<User>,
        teams: Vec<Team>,
        channels: Vec<Channel>,
        bots: Vec<Bot>,
        funnels: Vec<Funnel>,
    ) -> Self {
        AccountSettings {
            tags,
            custom_fields,
            users,
            teams,
            channels,
            bots,
            funnels,
            index: OnceLock::new(),
        }
    }

    fn index(&self) -> &SettingsIndex {
        self.index.get_or_init(|| SettingsIndex {
            tags_by_key: folded_positions(&self.tags, |t| &t.name),
            tags_by_id: positions(&self.tags, |t| t.id),
            fields_by_key: folded_positions(&self.custom_fields, |f| &f.name),
            fields_by_id: positions(&self.custom_fields, |f| f.id),
            users_by_key: folded_positions(&self.users, |u| &u.email),
            users_by_id: positions(&self.users, |u| u.id),
            teams_by_id: positions(&self.teams, |t| t.id),
            channels_by_id: positions(&self.channels, |c| c.id),
            bots_by_id: positions(&self.bots, |b| b.id),
            funnels_by_id: positions(&self.funnels, |f| f.id),
        })
    }

    pub fn tag_named(&self, name: &str) -> Option<&Tag> {
        let at = *self.index().tags_by_key.get(&fold_case(name))?;
        self.tags.get(at)
    }

    pub fn tag_by_id(&self, id: i64) -> Option<&Tag> {
        let at = *self.index().tags_by_id.get(&id)?;
        self.tags.get(at)
    }

    pub fn custom_field_named(&self, name: &str) -> Option<&CustomField> {
        let at = *self.index().fields_by_key.get(&fold_case(name))?;
        self.custom_fields.get(at)
    }

    pub fn custom_field_by_id(&self, id: i64) -> Option<&CustomField> {
        let at = *self.index().fields_by_id.get(&id)?;
        self.custom_fields.get(at)
    }

    pub fn user_with_email(&self, email: &str) -> Option<&User> {
        let at = *self.index().users_by_key.get(&fold_case(email))?;
        self.users.get(at)
    }

    pub fn user_by_id(&self, id: i64) -> Option<&User> {
        let at = *self.index().users_by_id.get(&id)?;
        self.users.get(at)
    }

    pub fn team(&self, uuid: PublicId) -> Option<&Team> {
        self.teams.iter().find(|t| t.uuid == uuid)
    }

    pub fn team_by_id(&self, id: i64) -> Option<&Team> {
        let at = *self.index().teams_by_id.get(&id)?;
        self.teams.get(at)
    }

    pub fn default_team(&self) -> Option<&Team> {
        self.teams.iter().find(|t| t.is_default)
    }

    pub fn channel(&self, uuid: PublicId) -> Option<&Channel> {
        self.channels.iter().find(|c| c.uuid == uuid)
    }

    pub fn channel_by_id(&self, id: i64) -> Option<&Channel> {
        let at = *self.index().channels_by_id.get(&id)?;
        self.channels.get(at)
    }

    /// The channel a contact of `source` lands on when none is named.
    pub fn main_channel(&self, source: Source) -> Option<&Channel> {
        self.channels
            .iter()
            .find(|c| c.kind == source && c.main && c.is_active())
    }

    /// The bot that answers conversations: the oldest enabled one.
    pub fn enabled_bot(&self) -> Option<&Bot> {
        self.bots.iter().find(|b| b.enabled)
    }

    pub fn bot_by_id(&self, id: i64) -> Option<&Bot> {
        let at = *self.index().bots_by_id.get(&id)?;
        self.bots.get(at)
    }

    pub fn funnel(&self, uuid: FunnelId) -> Option<&Funnel> {
        self.funnels.iter().find(|f| f.uuid == uuid)
    }

    pub fn funnel_by_id(&self, id: i64) -> Option<&Funnel> {
        let at = *self.index().funnels_by_id.get(&id)?;
        self.funnels.get(at)
    }
}
