//! The opaque `after` cursor of contact listings: where the walk is, which
//! contacts it can see, and the filter it runs with, signed so that it
//! cannot be forged or moved to another account.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::{PublicId, Source, Timestamp};
use crate::store::{AccountId, ContactFilter, ContactPosition, TagsMode};

/// The name of the shared secret cursors are signed with.
pub const CURSOR_SECRET: &str = "cursor_signing_key";

/// A point in a contact walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub account: AccountId,
    pub position: ContactPosition,
    pub watermark: i64,
    /// The page number the cursor leads to (for `meta.page`).
    pub page: u32,
    pub filter: ContactFilter,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    a: i64,
    t: i64,
    s: i64,
    w: i64,
    p: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    src: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    any: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q: Option<String>,
}

/// Signs and checks cursors with a key every server process shares.
#[derive(Clone)]
pub struct CursorSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for CursorSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSigner(..)")
    }
}

impl CursorSigner {
    pub fn new(secret: &str) -> Self {
        CursorSigner {
            key: secret.as_bytes().to_vec(),
        }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(payload);
        mac
    }

    pub fn encode(&self, cursor: &Cursor) -> String {
        let payload = Payload {
            a: cursor.account.0,
            t: cursor.position.created_at.unix(),
            s: cursor.position.seq,
            w: cursor.watermark,
            p: cursor.page,
            src: cursor.filter.source.map(|s| s.as_str().to_owned()),
            tags: cursor.filter.tags.clone(),
            any: cursor.filter.tags_mode == TagsMode::Any,
            team: cursor.filter.team.map(|t| t.to_string()),
            q: cursor.filter.q.clone(),
        };
        let json = serde_json::to_vec(&payload).unwrap_or_default();
        let tag = self.mac(&json).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The cursor, if `text` is one this deployment signed for `account`.
    pub fn decode(&self, text: &str, account: AccountId) -> Option<Cursor> {
        let (payload, tag) = text.split_once('.')?;
        let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(&json).verify_slice(&tag).ok()?;
        let p: Payload = serde_json::from_slice(&json).ok()?;
        if p.a != account.0 || p.p < 2 {
            return None;
        }
        let source = match p.src {
            Some(s) => Some(s.parse::<Source>().ok()?),
            None => None,
        };
        let team = match p.team {
            Some(t) => Some(t.parse::<PublicId>().ok()?),
            None => None,
        };
        Some(Cursor {
            account,
            position: ContactPosition {
                created_at: Timestamp::from_unix(p.t),
                seq: p.s,
            },
            watermark: p.w,
            page: p.p,
            filter: ContactFilter {
                source,
                tags: p.tags,
                tags_mode: if p.any { TagsMode::Any } else { TagsMode::All },
                team,
                q: p.q,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> Cursor {
        Cursor {
            account: AccountId(7),
            position: ContactPosition {
                created_at: Timestamp::from_unix(1_700_000_000),
                seq: 42,
            },
            watermark: 99,
            page: 3,
            filter: ContactFilter {
                source: Some(Source::Whatsapp),
                tags: vec!["sales".into(), "Lead".into()],
                tags_mode: TagsMode::All,
                team: None,
                q: Some("jo".into()),
            },
        }
    }

    #[test]
    fn round_trips() {
        let signer = CursorSigner::new("secret");
        let text = signer.encode(&cursor());
        assert_eq!(signer.decode(&text, AccountId(7)), Some(cursor()));
    }

    #[test]
    fn refuses_tampering_other_accounts_and_other_keys() {
        let signer = CursorSigner::new("secret");
        let text = signer.encode(&cursor());
        assert_eq!(signer.decode(&text, AccountId(8)), None);
        assert_eq!(CursorSigner::new("other").decode(&text, AccountId(7)), None);
        let (payload, tag) = text.split_once('.').expect("two parts");
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64");
        bytes[5] ^= 1;
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(signer.decode(&forged, AccountId(7)), None);
        for junk in ["", ".", "abc", "abc.def", "!!!.???"] {
            assert_eq!(signer.decode(junk, AccountId(7)), None);
        }
    }
}
