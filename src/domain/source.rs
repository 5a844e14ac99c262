use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// Where a conversation happens; also the type of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Whatsapp,
    Facebook,
    Instagram,
    Telegram,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Whatsapp,
        Source::Facebook,
        Source::Instagram,
        Source::Telegram,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Whatsapp => "whatsapp",
            Source::Facebook => "facebook",
            Source::Instagram => "instagram",
            Source::Telegram => "telegram",
        }
    }

    pub const EXPECTED: &'static str = "one of whatsapp, facebook, instagram, telegram";
}

impl FromStr for Source {
    type Err = ();

    /// Case-insensitive: `WhatsApp` is what people type.
    fn from_str(text: &str) -> Result<Self, ()> {
        Source::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or(())
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}
