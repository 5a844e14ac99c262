//! The events a change causes: what webhooks deliver and the change feed
//! lists (docs/webhooks.md).

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventName {
    ContactCreated,
    ContactUpdated,
    ContactDeleted,
    ConversationOpened,
    ConversationClosed,
}

impl EventName {
    pub const ALL: [EventName; 5] = [
        EventName::ContactCreated,
        EventName::ContactUpdated,
        EventName::ContactDeleted,
        EventName::ConversationOpened,
        EventName::ConversationClosed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventName::ContactCreated => "contact_created",
            EventName::ContactUpdated => "contact_updated",
            EventName::ContactDeleted => "contact_deleted",
            EventName::ConversationOpened => "conversation_opened",
            EventName::ConversationClosed => "conversation_closed",
        }
    }
}

impl FromStr for EventName {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        EventName::ALL
            .into_iter()
            .find(|name| name.as_str() == text)
            .ok_or(())
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in EventName::ALL {
            assert_eq!(name.as_str().parse::<EventName>(), Ok(name));
        }
        assert!("contact_exploded".parse::<EventName>().is_err());
    }
}
