//! The per-account configuration contacts are validated against (SPEC §2).

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
}

impl AccountSettings {
    pub fn tag_named(&self, name: &str) -> Option<&Tag> {
        let key = fold_case(name);
        self.tags.iter().find(|t| fold_case(&t.name) == key)
    }

    pub fn custom_field_named(&self, name: &str) -> Option<&CustomField> {
        let key = fold_case(name);
        self.custom_fields
            .iter()
            .find(|f| fold_case(&f.name) == key)
    }

    pub fn user_with_email(&self, email: &str) -> Option<&User> {
        let key = fold_case(email);
        self.users.iter().find(|u| fold_case(&u.email) == key)
    }

    pub fn team(&self, uuid: PublicId) -> Option<&Team> {
        self.teams.iter().find(|t| t.uuid == uuid)
    }

    pub fn default_team(&self) -> Option<&Team> {
        self.teams.iter().find(|t| t.is_default)
    }

    pub fn channel(&self, uuid: PublicId) -> Option<&Channel> {
        self.channels.iter().find(|c| c.uuid == uuid)
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

    pub fn funnel(&self, uuid: FunnelId) -> Option<&Funnel> {
        self.funnels.iter().find(|f| f.uuid == uuid)
    }
}
