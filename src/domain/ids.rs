use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use uuid::Uuid;

/// The public id of contacts, teams, channels, bots, users, conversations,
/// messages and accounts: 32 lowercase hex characters, no dashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicId(Uuid);

impl PublicId {
    pub fn random() -> Self {
        PublicId(Uuid::new_v4())
    }

    /// A fresh id whose leading bits are the time (UUIDv7), for objects made
    /// by the million (contacts, conversations, messages): indexes on such
    /// ids grow at one end instead of being written all over, which keeps
    /// bulk inserts from rewriting a random page per row.
    pub fn time_ordered() -> Self {
        PublicId(Uuid::now_v7())
    }
}

impl FromStr for PublicId {
    type Err = ();

    /// Only the canonical spelling is accepted: a client that got the id from
    /// us sends it back unchanged, anything else is not one of our ids.
    fn from_str(text: &str) -> Result<Self, ()> {
        if text.len() != 32 {
            return Err(());
        }
        // Decoded by hand: every contact row read holds two of these.
        let mut value: u128 = 0;
        for b in text.bytes() {
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => return Err(()),
            };
            value = (value << 4) | u128::from(digit);
        }
        Ok(PublicId(Uuid::from_u128(value)))
    }
}

impl fmt::Display for PublicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.simple(), f)
    }
}

impl PublicId {
    /// Writes the 32 hex characters into `buffer`.
    pub fn encode<'b>(&self, buffer: &'b mut [u8; 32]) -> &'b str {
        self.0.simple().encode_lower(buffer)
    }
}

impl Serialize for PublicId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.encode(&mut [0u8; 32]))
    }
}

/// Funnels are the one resource Callbell identifies with dashed UUIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FunnelId(Uuid);

impl FunnelId {
    pub fn random() -> Self {
        FunnelId(Uuid::new_v4())
    }
}

impl FromStr for FunnelId {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let dashes_at = [8, 13, 18, 23];
        let canonical = text.len() == 36
            && text.bytes().enumerate().all(|(i, b)| {
                if dashes_at.contains(&i) {
                    b == b'-'
                } else {
                    matches!(b, b'0'..=b'9' | b'a'..=b'f')
                }
            });
        if !canonical {
            return Err(());
        }
        Uuid::try_parse(text).map(FunnelId).map_err(|_| ())
    }
}

impl fmt::Display for FunnelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl Serialize for FunnelId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_ids_round_trip_and_reject_other_spellings() {
        let id: PublicId = "414a6d692bd645ed803f2e7ce360d4c8".parse().expect("valid");
        assert_eq!(id.to_string(), "414a6d692bd645ed803f2e7ce360d4c8");
        assert!(
            "414A6D692BD645ED803F2E7CE360D4C8"
                .parse::<PublicId>()
                .is_err()
        );
        assert!(
            "414a6d69-2bd6-45ed-803f-2e7ce360d4c8"
                .parse::<PublicId>()
                .is_err()
        );
        assert!(
            "414a6d692bd645ed803f2e7ce360d4c"
                .parse::<PublicId>()
                .is_err()
        );
        assert!("".parse::<PublicId>().is_err());
        assert_eq!(PublicId::random().to_string().len(), 32);
    }

    #[test]
    fn funnel_ids_are_dashed() {
        let id: FunnelId = "ff0f96b9-b003-4d0c-b14f-27f3f6868dd6"
            .parse()
            .expect("valid");
        assert_eq!(id.to_string(), "ff0f96b9-b003-4d0c-b14f-27f3f6868dd6");
        assert!(
            "ff0f96b9b0034d0cb14f27f3f6868dd6"
                .parse::<FunnelId>()
                .is_err()
        );
        assert!(
            "ff0f96b9-b003-4d0c-b14f-27f3f6868dd"
                .parse::<FunnelId>()
                .is_err()
        );
    }
}
