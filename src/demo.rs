//! The demo account of SPEC §6: the ids, key, settings and contacts the
//! Callbell documentation's examples use, so they run verbatim against
//! `bellbook serve --demo` with only the host changed.

use crate::auth::stored_key;
use crate::domain::contact::{BotStatus, ContactBot, ContactFieldValue, ContactRecord};
use crate::domain::settings::{Bot, Channel, CustomField, Funnel, Tag, Team, User};
use crate::domain::{CustomFieldType, CustomFieldValue, FunnelId, PublicId, Source, Timestamp};
use crate::store::snapshot::{AccountSnapshot, ContactSnapshot, TeamSnapshot};
use crate::store::{ApiKeyRecord, Store, StoreError};

/// The key every Callbell example sends.
pub const DEMO_API_KEY: &str = "test_gshuPaZoeEG6ovbc8M79w0QyM";
/// Fixed, so loading the demo twice finds it the second time.
pub const DEMO_ACCOUNT_UUID: &str = "de300000b311b00c8000000000000001";

/// Loads the demo account unless it is already there. Returns whether it
/// was loaded now.
pub async fn install(store: &dyn Store) -> Result<bool, StoreError> {
    store.import_account(&snapshot()?).await
}

fn id(text: &str) -> Result<PublicId, StoreError> {
    text.parse()
        .map_err(|()| StoreError::other(format!("demo data holds a malformed id {text}")))
}

fn funnel_id(text: &str) -> Result<FunnelId, StoreError> {
    text.parse()
        .map_err(|()| StoreError::other(format!("demo data holds a malformed funnel id {text}")))
}

fn at(text: &str) -> Result<Timestamp, StoreError> {
    Timestamp::parse(text)
        .ok_or_else(|| StoreError::other(format!("demo data holds a malformed time {text}")))
}

/// The demo account as data. `lead` and `Lead` of SPEC §6 are one tag:
/// tag names are unique case-insensitively, so `Lead` finds `lead`.
pub fn snapshot() -> Result<AccountSnapshot, StoreError> {
    let created = at("2020-11-13T21:08:53Z")?;
    let key = stored_key(DEMO_API_KEY, "demo");
    let john = User {
        id: 0,
        uuid: id("0d0e5a1c6b4f4e2f9a1b7c3d2e4f6a81")?,
        email: "john.doe@email.com".into(),
        name: "John Doe".into(),
        owner: true,
        created_at: created,
    };
    let jane = User {
        id: 0,
        uuid: id("0d0e5a1c6b4f4e2f9a1b7c3d2e4f6a82")?,
        email: "jane.doe@email.com".into(),
        name: "Jane Doe".into(),
        owner: false,
        created_at: created,
    };
    let general = Team {
        id: 0,
        uuid: id("ad42a09715814e6483b1c5debd6a2dbc")?,
        name: "General".into(),
        is_default: true,
        members: 2,
        created_at: created,
    };
    let support = Team {
        id: 0,
        uuid: id("47aad5f9b4ca423c9d630f06ab93fe1f")?,
        name: "Support".into(),
        is_default: false,
        members: 1,
        created_at: at("2020-11-13T21:10:33Z")?,
    };
    let channel = Channel {
        id: 0,
        uuid: id("7c996996fea947f4a1d5a11e7fac84db")?,
        title: "phone_number_1".into(),
        kind: Source::Whatsapp,
        main: true,
        discarded_at: None,
        created_at: created,
    };
    let bot = Bot {
        id: 0,
        uuid: id("f7155fc557b74597b429bd3dbb5ca677")?,
        name: "My Bot".into(),
        enabled: true,
        version: 5,
        created_at: created,
    };
    let funnels = [
        (
            "ff0f96b9-b003-4d0c-b14f-27f3f6868dd6",
            "Awareness",
            "🧘\u{200d}♂\u{fe0f}",
            "2025-12-18T19:00:19Z",
        ),
        (
            "1cd7845e-6b93-453d-b015-9dce35d16f39",
            "Interest",
            "👁\u{fe0f}",
            "2025-12-18T18:55:01Z",
        ),
        (
            "1e6c0c57-c81d-49d2-81d2-fcec053a1ab6",
            "Desire",
            "✨",
            "2025-12-18T18:54:45Z",
        ),
        (
            "8c51dfc8-667a-4f7f-9c83-ae065524483a",
            "Action",
            "🎯",
            "2025-12-16T20:32:44Z",
        ),
    ]
    .into_iter()
    .zip(1..)
    .map(|((uuid, name, emoji, created_at), position)| {
        Ok(Funnel {
            id: 0,
            uuid: funnel_id(uuid)?,
            name: name.into(),
            emoji: Some(emoji.into()),
            position,
            created_at: at(created_at)?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let tags = ["sales", "lead", "hot", "Call back", "Interested"]
        .into_iter()
        .map(|name| Tag {
            id: 0,
            name: name.into(),
            created_at: created,
        })
        .collect();
    let field = |name: &str, kind: CustomFieldType, options: &[&str]| CustomField {
        id: 0,
        name: name.into(),
        kind,
        options: options.iter().map(|o| (*o).to_owned()).collect(),
        created_at: created,
    };
    let custom_fields = vec![
        field("Billing Address", CustomFieldType::Text, &[]),
        field("Stripe link", CustomFieldType::Text, &[]),
        field("Address", CustomFieldType::Text, &[]),
        field("VAT", CustomFieldType::Text, &[]),
        field("zipCode", CustomFieldType::Text, &[]),
        field("orderNumber", CustomFieldType::Number, &[]),
        field("Status", CustomFieldType::Dropdown, &["Active", "Inactive"]),
        field(
            "Features",
            CustomFieldType::Checkbox,
            &["Dark Mode", "Notifications", "Analytics"],
        ),
        field("Work Email", CustomFieldType::Email, &[]),
        field("Birth Date", CustomFieldType::Date, &[]),
    ];
    let text_value = |name: &str, value: &str| ContactFieldValue {
        name: name.into(),
        kind: CustomFieldType::Text,
        options: Vec::new(),
        value: CustomFieldValue::from_stored(value.into()),
    };
    let contact =
        |uuid: PublicId, conversation: PublicId, name: &str, phone: &str, created_at: Timestamp| {
            ContactRecord {
                uuid,
                name: name.into(),
                identifier: phone.into(),
                source: Source::Whatsapp,
                avatar_url: None,
                blocked_at: None,
                created_at,
                funnel: None,
                closed_at: None,
                conversation_uuid: conversation,
                tags: Vec::new(),
                assigned_user: None,
                custom_fields: Vec::new(),
                team: Some(general.clone()),
                channel: channel.clone(),
                bsuid: None,
                note: None,
                bot: Some(ContactBot {
                    bot: bot.clone(),
                    status: BotStatus::Started,
                    version: bot.version,
                    conversation_started_at: Some(created_at),
                }),
            }
        };
    let mut john_doe = contact(
        id("414a6d692bd645ed803f2e7ce360d4c8")?,
        id("f3670b13446b412796238b1cd78899f9")?,
        "John Doe",
        "5790372023",
        created,
    );
    john_doe.tags = vec!["sales".into(), "lead".into()];
    john_doe.assigned_user = Some(john.email.clone());
    john_doe.custom_fields = vec![
        text_value("Billing Address", "3 Abbey Rd, London"),
        text_value("Stripe link", "https://stripe.com/contacts/cus1234567"),
    ];
    let mut mario_rossi = contact(
        id("efd7d996470e463b89f079be6cf578ed")?,
        id("5b1d3c0e2a8f4f6b9c7d1e3f5a7b9c0d")?,
        "Mario Rossi",
        "+33 11 22 33 44",
        at("2021-02-24T20:33:06Z")?,
    );
    mario_rossi.tags = vec!["sales".into(), "lead".into(), "hot".into()];
    mario_rossi.custom_fields = vec![text_value(
        "Stripe link",
        "https://stripe.com/contacts/cus124124153",
    )];

    Ok(AccountSnapshot {
        id: None,
        uuid: id(DEMO_ACCOUNT_UUID)?,
        name: "demo".into(),
        created_at: created,
        contact_seq: 0,
        api_keys: vec![ApiKeyRecord {
            uuid: key.uuid,
            account_id: crate::store::AccountId(0),
            name: key.name,
            prefix: key.prefix,
            secret_hash: key.secret_hash,
            created_at: created,
            revoked_at: None,
        }],
        teams: vec![
            TeamSnapshot {
                team: general,
                members: vec![john.uuid, jane.uuid],
            },
            TeamSnapshot {
                team: support,
                members: vec![jane.uuid],
            },
        ],
        users: vec![john, jane],
        channels: vec![channel],
        bots: vec![bot],
        funnels,
        tags,
        custom_fields,
        contacts: vec![
            ContactSnapshot::new(john_doe, Vec::new()),
            ContactSnapshot::new(mario_rossi, Vec::new()),
        ],
    })
}
