//! The payloads events carry: the API's own JSON shapes, so a webhook
//! receiver parses a `contact_created` payload as it parses a `GET
//! /contacts/{uuid}` answer.

use serde::Serialize;
use utoipa::ToSchema;

use crate::api::views::{ContactView, Links};
use crate::domain::contact::ContactRecord;
use crate::domain::{EventName, PublicId, Source, Timestamp};
use crate::store::EventPayloads;

/// Writes payloads with links on the server's public address.
pub struct Payloads {
    links: Links,
}

impl Payloads {
    pub fn new(links: Links) -> Self {
        Payloads { links }
    }
}

/// The payload of `conversation_opened` and `conversation_closed`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationPayload {
    pub source: Source,
    /// The conversation's `conversationHref`.
    pub href: String,
    pub contact: ContactView,
    pub created_at: Timestamp,
    #[schema(required = true)]
    pub closed_at: Option<Timestamp>,
    /// Always `null`: bellbook records no reason for closing.
    #[schema(required = true)]
    pub closing_reason: Option<String>,
}

/// The payload of `contact_deleted`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedPayload {
    pub uuid: PublicId,
    pub deleted: bool,
}

impl EventPayloads for Payloads {
    fn contact(&self, contact: &ContactRecord) -> serde_json::Result<String> {
        serde_json::to_string(&self.links.contact(contact.clone(), false))
    }

    fn conversation(&self, contact: &ContactRecord) -> serde_json::Result<String> {
        let view = self.links.contact(contact.clone(), false);
        serde_json::to_string(&ConversationPayload {
            source: contact.source,
            href: view.conversation_href.clone(),
            created_at: contact.created_at,
            closed_at: contact.closed_at,
            closing_reason: None,
            contact: view,
        })
    }

    fn deleted(&self, uuid: PublicId) -> serde_json::Result<String> {
        serde_json::to_string(&DeletedPayload {
            uuid,
            deleted: true,
        })
    }
}

/// The body delivered for an event whose payload is `payload` (JSON text).
pub fn delivery_body(name: EventName, payload: &str) -> String {
    // The payload is JSON the store wrote; the name a fixed word.
    let mut body = String::with_capacity(payload.len() + 40);
    body.push_str(r#"{"event":""#);
    body.push_str(name.as_str());
    body.push_str(r#"","payload":"#);
    body.push_str(payload);
    body.push('}');
    body
}
