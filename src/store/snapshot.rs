//! A whole account as plain data: what `--demo` loads and what moving
//! between databases carries. References between objects are by public id
//! or name, never by row id, so a snapshot fits any database.

use crate::domain::contact::ContactRecord;
use crate::domain::settings::{Bot, Channel, CustomField, Funnel, Tag, Team, User};
use crate::domain::{PublicId, Timestamp};

use super::{AccountId, ApiKeyRecord, MessageRecord};

/// Row ids (`id` fields) inside are ignored on import: the target database
/// assigns its own.
#[derive(Debug, Clone)]
pub struct AccountSnapshot {
    /// The account's own row id, kept when copying between databases (its
    /// cursors name it); `None` lets the target choose.
    pub id: Option<AccountId>,
    pub uuid: PublicId,
    pub name: String,
    pub created_at: Timestamp,
    /// The last contact sequence number handed out (0 for a new account).
    pub contact_seq: i64,
    pub api_keys: Vec<ApiKeyRecord>,
    pub users: Vec<User>,
    pub teams: Vec<TeamSnapshot>,
    pub channels: Vec<Channel>,
    pub bots: Vec<Bot>,
    pub funnels: Vec<Funnel>,
    pub tags: Vec<Tag>,
    pub custom_fields: Vec<CustomField>,
    /// Oldest first: import keeps this order as creation order.
    pub contacts: Vec<ContactSnapshot>,
}

#[derive(Debug, Clone)]
pub struct TeamSnapshot {
    pub team: Team,
    /// Members, by user uuid.
    pub members: Vec<PublicId>,
}

/// A contact with its conversation's messages (oldest first). Its
/// references resolve on import: channel, team, funnel and bot by uuid,
/// assigned user by e-mail, tags and custom fields by name.
#[derive(Debug, Clone)]
pub struct ContactSnapshot {
    /// The contact's place in its account's creation order, kept when
    /// copying (cursors name it); `None` takes the next one.
    pub seq: Option<i64>,
    pub contact: ContactRecord,
    pub updated_at: Timestamp,
    pub messages: Vec<super::MessageRecord>,
}

impl ContactSnapshot {
    pub fn new(contact: ContactRecord, messages: Vec<MessageRecord>) -> Self {
        let updated_at = contact.created_at;
        ContactSnapshot {
            seq: None,
            contact,
            updated_at,
            messages,
        }
    }
}
