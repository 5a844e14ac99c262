//! What several test files share: the demo account's ids (SPEC §6) and
//! checks of response shapes.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::Reply;

/// Ids of the demo account (SPEC §6).
pub mod demo {
    pub const JOHN: &str = "414a6d692bd645ed803f2e7ce360d4c8";
    pub const MARIO: &str = "efd7d996470e463b89f079be6cf578ed";
    pub const GENERAL: &str = "ad42a09715814e6483b1c5debd6a2dbc";
    pub const SUPPORT: &str = "47aad5f9b4ca423c9d630f06ab93fe1f";
    pub const CHANNEL: &str = "7c996996fea947f4a1d5a11e7fac84db";
    pub const BOT: &str = "f7155fc557b74597b429bd3dbb5ca677";
    pub const AWARENESS: &str = "ff0f96b9-b003-4d0c-b14f-27f3f6868dd6";
    pub const INTEREST: &str = "1cd7845e-6b93-453d-b015-9dce35d16f39";
    pub const DESIRE: &str = "1e6c0c57-c81d-49d2-81d2-fcec053a1ab6";
}

/// The keys of the Contact object (SPEC §3), sorted.
pub const CONTACT_KEYS: [&str; 18] = [
    "assignedUser",
    "avatarUrl",
    "blockedAt",
    "bsuid",
    "channel",
    "closedAt",
    "conversationHref",
    "createdAt",
    "customFields",
    "funnelId",
    "href",
    "name",
    "note",
    "phoneNumber",
    "source",
    "tags",
    "team",
    "uuid",
];

/// The keys of a JSON object, sorted.
#[track_caller]
pub fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("{value} is no object"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// `2020-11-13T21:08:53Z`: UTC, seconds precision, `Z` (SPEC §1).
pub fn is_timestamp(value: &Value) -> bool {
    value.as_str().is_some_and(|t| {
        let b = t.as_bytes();
        b.len() == 20
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'Z',
                _ => c.is_ascii_digit(),
            })
    })
}

#[track_caller]
pub fn assert_timestamp(value: &Value) {
    assert!(
        is_timestamp(value),
        "{value} is not a UTC second-precision timestamp"
    );
}

/// `{"contact": C}`, C a whole Contact object (not in an array).
#[track_caller]
pub fn plain_contact(reply: &Reply) -> &Value {
    reply.assert_status(200);
    assert_eq!(keys(&reply.body), ["contact"], "body: {}", reply.text);
    let contact = &reply.body["contact"];
    assert!(contact.is_object(), "a plain object: {}", reply.text);
    assert_eq!(keys(contact), CONTACT_KEYS);
    contact
}

/// `{"contact": [C]}`, C a whole Contact object.
#[track_caller]
pub fn contact_in_array(reply: &Reply) -> &Value {
    reply.assert_status(200);
    assert_eq!(keys(&reply.body), ["contact"], "body: {}", reply.text);
    let array = reply.body["contact"]
        .as_array()
        .unwrap_or_else(|| panic!("an array: {}", reply.text));
    assert_eq!(array.len(), 1);
    assert_eq!(keys(&array[0]), CONTACT_KEYS);
    &array[0]
}

/// `(field, code)` of every entry of `error.details`, in order.
pub fn details(reply: &Reply) -> Vec<(String, String)> {
    reply.body["error"]["details"]
        .as_array()
        .map(|details| {
            details
                .iter()
                .map(|d| {
                    (
                        d["field"].as_str().unwrap_or_default().to_owned(),
                        d["code"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `(field, code)` pairs to compare with [`details`].
pub fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
        .collect()
}

/// A client for talking to servers outside the in-process harness.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}
