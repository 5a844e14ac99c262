//! Contacts, their conversation and its messages.
//!
//! A contact is read from its one row: the tags and custom field values it
//! has are kept there too (`tag_ids`, `field_values`), beside the
//! normalised `contact_tags` and `contact_field_values` that filters and
//! settings changes use, and everything it refers to (channel, team, user,
//! funnel, bot, tag and field names) comes from the account's cached
//! settings. Every write keeps the copies, the counters of
//! `docs/storage.md` and the search index in step, in its transaction.

use std::collections::BTreeMap;

use async_trait::async_trait;
use const_format::concatcp;

use super::SqlStore;
use super::cache::{Seen, SettingsCache};
use super::counts::Counts;
use super::db::{
    Column, Db, FromRow, Param, SearchChange, Shifted, SqlBuilder, params, row_struct,
};
use super::{foreign_key_violation, in_read_transaction, lock_account, unique_means};
use crate::domain::contact::{
    BotStatus, ContactBot, ContactChanges, ContactFieldValue, ContactRecord, NewContact,
};
use crate::domain::settings::AccountSettings;
use crate::domain::{
    Conflict, CustomFieldValue, EventName, FieldError, PublicId, Source, Timestamp, fold_case,
};
use crate::store::{
    AccountId, ContactFilter, ContactPage, ContactStore, ExportPage, MessageKind, MessagePage,
    MessageRecord, PageStart, StoreError, StoreResult,
};

row_struct! {
    /// A contacts row: everything a [`ContactRecord`] is built from, with
    /// its references as row ids.
    #[derive(Clone)]
    pub(super) struct ContactRow in "c" {
        id: i64,
        uuid: PublicId,
        seq: i64,
        name: String,
        /// The folded name, as the search index holds it.
        name_key: String,
        identifier: String,
        identifier_digits: String,
        source: Source,
        channel_id: i64,
        team_id: Option<i64>,
        assigned_user_id: Option<i64>,
        avatar_url: Option<String>,
        blocked_at: Option<Timestamp>,
        bsuid: Option<String>,
        note: Option<String>,
        created_at: Timestamp,
        updated_at: Timestamp,
        conversation_uuid: PublicId,
        closed_at: Option<Timestamp>,
        funnel_id: Option<i64>,
        bot_id: Option<i64>,
        bot_status: Option<String>,
        bot_version: Option<i64>,
        bot_started_at: Option<Timestamp>,
        /// Tag ids in the order they were set, comma-separated.
        tag_ids: String,
        /// Custom field values: a JSON object by field id.
        field_values: String,
    }
}

pub(super) const SELECT_CONTACT: &str = concatcp!("SELECT ", ContactRow::COLUMNS, " FROM contacts");

/// A contact's custom field values by field id.
pub(super) type FieldValues = BTreeMap<i64, String>;

pub(super) fn encode_tag_ids(ids: &[i64]) -> String {
    let mut text = String::with_capacity(ids.len() * 4);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&id.to_string());
    }
    text
}

pub(super) fn decode_tag_ids(text: &str) -> StoreResult<Vec<i64>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|id| {
            id.parse()
                .map_err(|_| StoreError::other("contacts.tag_ids holds a malformed id"))
        })
        .collect()
}

pub(super) fn encode_field_values(values: &FieldValues) -> StoreResult<String> {
    serde_json::to_string(values).map_err(|e| StoreError::Other(Box::new(e)))
}

pub(super) fn decode_field_values(text: &str) -> StoreResult<FieldValues> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(Box::new(e)))
}

/// Changes the `field_values` copy of one contact.
pub(super) fn edit_field_values(
    db: &mut dyn Db,
    contact_id: i64,
    edit: impl FnOnce(&mut FieldValues),
) -> StoreResult<()> {
    let stored: String = db.one(
        "SELECT field_values FROM contacts WHERE id = $1",
        &params![contact_id],
    )?;
    let mut values = decode_field_values(&stored)?;
    edit(&mut values);
    db.execute(
        "UPDATE contacts SET field_values = $1 WHERE id = $2",
        &params![encode_field_values(&values)?.as_str(), contact_id],
    )?;
    Ok(())
}

/// Builds the contact of `row` as the API shows it, resolving its
/// references through `settings` (read in the same transaction).
pub(super) fn render(row: ContactRow, settings: &AccountSettings) -> StoreResult<ContactRecord> {
    let missing =
        |what: &str| StoreError::other(format!("contact {} refers to an unknown {what}", row.uuid));
    let channel = settings
        .channel_by_id(row.channel_id)
        .ok_or_else(|| missing("channel"))?
        .clone();
    let team = match row.team_id {
        Some(id) => Some(
            settings
                .team_by_id(id)
                .ok_or_else(|| missing("team"))?
                .clone(),
        ),
        None => None,
    };
    let assigned_user = match row.assigned_user_id {
        Some(id) => Some(
            settings
                .user_by_id(id)
                .ok_or_else(|| missing("user"))?
                .email
                .clone(),
        ),
        None => None,
    };
    let funnel = match row.funnel_id {
        Some(id) => Some(
            settings
                .funnel_by_id(id)
                .ok_or_else(|| missing("funnel"))?
                .uuid,
        ),
        None => None,
    };
    let bot = match (row.bot_id, &row.bot_status) {
        (Some(id), Some(status)) => Some(ContactBot {
            bot: settings
                .bot_by_id(id)
                .ok_or_else(|| missing("bot"))?
                .clone(),
            status: BotStatus::from_stored(status)
                .ok_or_else(|| StoreError::other("contacts.bot_status holds an unknown status"))?,
            version: row.bot_version.unwrap_or(1),
            conversation_started_at: row.bot_started_at,
        }),
        _ => None,
    };
    let tags = decode_tag_ids(&row.tag_ids)?
        .into_iter()
        .map(|id| {
            settings
                .tag_by_id(id)
                .map(|tag| tag.name.clone())
                .ok_or_else(|| missing("tag"))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let custom_fields = decode_field_values(&row.field_values)?
        .into_iter()
        .map(|(id, value)| {
            let field = settings
                .custom_field_by_id(id)
                .ok_or_else(|| missing("custom field"))?;
            Ok(ContactFieldValue {
                name: field.name.clone(),
                kind: field.kind,
                options: field.options.clone(),
                value: CustomFieldValue::from_stored(value),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(ContactRecord {
        uuid: row.uuid,
        name: row.name,
        identifier: row.identifier,
        source: row.source,
        avatar_url: row.avatar_url,
        blocked_at: row.blocked_at,
        created_at: row.created_at,
        funnel,
        closed_at: row.closed_at,
        conversation_uuid: row.conversation_uuid,
        tags,
        assigned_user,
        custom_fields,
        team,
        channel,
        bsuid: row.bsuid,
        note: row.note,
        bot,
    })
}

/// Hands out the account's next `count` contact sequence numbers; returns
/// the first. Taking them locks the account row until commit, so sequence
/// order is commit order: a listing that has seen contact n has seen every
/// contact before it (what cursor walks rely on), and creates of one
/// account run one at a time.
pub(super) fn next_contact_seqs(
    db: &mut dyn Db,
    account: AccountId,
    count: i64,
) -> StoreResult<i64> {
    let last: i64 = db.one(
        "UPDATE accounts SET contact_seq = contact_seq + $1 WHERE id = $2 RETURNING contact_seq",
        &params![count, account.0],
    )?;
    Ok(last - count + 1)
}

/// Adds a contact to the `q` index (at commit; see [`Db::defer_search`]).
fn index_for_search(db: &mut dyn Db, row: &ContactRow) {
    db.defer_search(SearchChange::Add {
        id: row.id,
        name_key: row.name_key.clone(),
        identifier_digits: row.identifier_digits.clone(),
    });
}

/// Takes a contact out of the `q` index, given what was indexed.
fn unindex_for_search(db: &mut dyn Db, id: i64, name_key: &str, identifier_digits: &str) {
    db.defer_search(SearchChange::Remove {
        id,
        name_key: name_key.to_owned(),
        identifier_digits: identifier_digits.to_owned(),
    });
}

fn add_tag(db: &mut dyn Db, row: &ContactRow, tag_id: i64) -> StoreResult<()> {
    db.execute(
        "INSERT INTO contact_tags (contact_id, tag_id, created_at, seq) VALUES ($1, $2, $3, $4)",
        &params![row.id, tag_id, row.created_at, row.seq],
    )?;
    Ok(())
}

fn set_value(db: &mut dyn Db, contact_id: i64, field_id: i64, value: &str) -> StoreResult<()> {
    db.execute(
        "INSERT INTO contact_field_values (contact_id, field_id, value) VALUES ($1, $2, $3)
         ON CONFLICT (contact_id, field_id) DO UPDATE SET value = excluded.value",
        &params![contact_id, field_id, value],
    )?;
    Ok(())
}

/// Writes a new contacts row (the database chooses its `id`, stored into
/// `row`) with its tag memberships, values and search entry, and counts it.
/// Answers `false`, writing nothing, when its channel already has a contact
/// with the same identifier key.
pub(super) fn insert_row(
    db: &mut dyn Db,
    account: AccountId,
    row: &mut ContactRow,
    identifier_key: &str,
    counts: &mut Counts,
) -> StoreResult<bool> {
    let inserted = db.insert_id(
        "INSERT INTO contacts (uuid, account_id, seq, name, name_key, identifier,
             identifier_digits, identifier_key, source, channel_id, team_id, assigned_user_id,
             avatar_url, blocked_at, bsuid, note, created_at, updated_at, conversation_uuid,
             closed_at, funnel_id, bot_id, bot_status, bot_version, bot_started_at, tag_ids,
             field_values)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
             $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)
         ON CONFLICT (channel_id, identifier_key) DO NOTHING",
        &params![
            row.uuid.to_string().as_str(),
            account.0,
            row.seq,
            &row.name,
            &row.name_key,
            &row.identifier,
            &row.identifier_digits,
            identifier_key,
            row.source.as_str(),
            row.channel_id,
            row.team_id,
            row.assigned_user_id,
            &row.avatar_url,
            row.blocked_at,
            &row.bsuid,
            &row.note,
            row.created_at,
            row.updated_at,
            row.conversation_uuid.to_string().as_str(),
            row.closed_at,
            row.funnel_id,
            row.bot_id,
            &row.bot_status,
            row.bot_version,
            row.bot_started_at,
            &row.tag_ids,
            &row.field_values
        ],
    )?;
    let Some(id) = inserted else {
        return Ok(false);
    };
    row.id = id;
    let tag_ids = decode_tag_ids(&row.tag_ids)?;
    for tag_id in &tag_ids {
        add_tag(db, row, *tag_id)?;
    }
    for (field_id, value) in decode_field_values(&row.field_values)? {
        set_value(db, row.id, field_id, &value)?;
    }
    index_for_search(db, row);
    counts.contact(account, row.channel_id, row.team_id, &tag_ids, 1);
    Ok(true)
}

fn contact_exists(existing: &str, identifier: &str) -> StoreError {
    let mut detail = FieldError::new(
        "identifier",
        "contact_exists",
        format!("contact {existing} already has this identifier on this channel"),
    );
    detail.uuid = Some(existing.to_owned());
    StoreError::Conflict(
        Conflict::new(
            "contact_exists",
            format!("a contact with identifier '{identifier}' already exists on this channel"),
        )
        .with_detail(detail),
    )
}

/// The contacts row a validated new contact becomes, numbered `seq`.
fn new_row(contact: &NewContact, seq: i64) -> StoreResult<ContactRow> {
    let values: FieldValues = contact
        .field_values
        .iter()
        .map(|(id, value)| (*id, value.as_str().to_owned()))
        .collect();
    Ok(ContactRow {
        id: 0,
        uuid: contact.uuid,
        seq,
        name: contact.name.clone(),
        name_key: fold_case(&contact.name),
        identifier: contact.identifier.raw.clone(),
        identifier_digits: contact.identifier.digits.clone(),
        source: contact.source,
        channel_id: contact.channel_id,
        team_id: contact.team_id,
        assigned_user_id: contact.assigned_user_id,
        avatar_url: None,
        blocked_at: None,
        bsuid: None,
        note: contact.note.clone(),
        created_at: contact.created_at,
        updated_at: contact.created_at,
        conversation_uuid: contact.conversation_uuid,
        closed_at: None,
        funnel_id: None,
        bot_id: contact.bot.map(|b| b.bot_id),
        bot_status: contact.bot.map(|b| b.status.as_str().to_owned()),
        bot_version: contact.bot.map(|b| b.version),
        bot_started_at: contact
            .bot
            .filter(|b| b.status == BotStatus::Started)
            .map(|_| contact.created_at),
        tag_ids: encode_tag_ids(&contact.tag_ids),
        field_values: encode_field_values(&values)?,
    })
}

/// Creates a contact; refused with `contact_exists` when the channel
/// already has one with the same identifier key.
pub(super) fn insert(
    db: &mut dyn Db,
    cache: &SettingsCache,
    account: AccountId,
    contact: &NewContact,
) -> StoreResult<ContactRecord> {
    // Taking the next number locks the account's row: whoever creates a
    // contact in this account at the same time waits here, then finds
    // this one (a 409 naming it).
    let mut row = new_row(contact, next_contact_seqs(db, account, 1)?)?;
    let mut counts = Counts::default();
    if !insert_row(db, account, &mut row, &contact.identifier.key, &mut counts)? {
        let existing = holder_of(db, contact)?.unwrap_or_default();
        return Err(contact_exists(&existing, &contact.identifier.raw));
    }
    db.defer_counts(counts);
    let settings = cache.current(db, account, Seen::Uncommitted)?;
    render(row, &settings)
}

/// The uuid of the contact that already has this contact's identifier on
/// its channel.
fn holder_of(db: &mut dyn Db, contact: &NewContact) -> StoreResult<Option<String>> {
    db.optional(
        "SELECT uuid FROM contacts WHERE channel_id = $1 AND identifier_key = $2",
        &params![contact.channel_id, &contact.identifier.key],
    )
}

/// What happened to one contact of a bulk import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    Created,
    /// The channel already had a contact with this identifier (perhaps one
    /// from earlier in the same import): this uuid.
    Duplicate(String),
}

/// Creates many contacts at once, skipping those whose identifier is
/// taken; one answer per contact, in order.
pub(super) fn insert_many(
    db: &mut dyn Db,
    account: AccountId,
    contacts: &[NewContact],
) -> StoreResult<Vec<Imported>> {
    lock_account(db, account)?;
    // The account is locked: the numbers after the last one are free.
    let last: i64 = db.one(
        "SELECT contact_seq FROM accounts WHERE id = $1",
        &params![account.0],
    )?;
    let mut next = last + 1;
    let mut counts = Counts::default();
    let mut outcomes = Vec::with_capacity(contacts.len());
    for contact in contacts {
        let mut row = new_row(contact, next)?;
        // An import keeps the uuid a line gives (an export's) where no
        // contact has it yet; a fresh one otherwise.
        if contact.uuid_given {
            let taken: Option<i64> = db.optional(
                "SELECT id FROM contacts WHERE uuid = $1",
                &params![row.uuid.to_string().as_str()],
            )?;
            if taken.is_some() {
                row.uuid = PublicId::time_ordered();
            }
        }
        if insert_row(db, account, &mut row, &contact.identifier.key, &mut counts)? {
            next += 1;
            outcomes.push(Imported::Created);
        } else {
            let existing = holder_of(db, contact)?.unwrap_or_default();
            outcomes.push(Imported::Duplicate(existing));
        }
    }
    db.execute(
        "UPDATE accounts SET contact_seq = $1 WHERE id = $2",
        &params![next - 1, account.0],
    )?;
    db.defer_counts(counts);
    Ok(outcomes)
}

/// Locks a contact's row for the rest of the transaction (the `UPDATE`
/// takes the lock on PostgreSQL; SQLite's write transaction holds the
/// database) and reads it.
fn lock_contact(
    db: &mut dyn Db,
    account: AccountId,
    uuid: PublicId,
    at: Timestamp,
) -> StoreResult<ContactRow> {
    db.one(
        concatcp!(
            "UPDATE contacts SET updated_at = $1 WHERE account_id = $2 AND uuid = $3 RETURNING ",
            ContactRow::COLUMNS
        ),
        &params![at, account.0, uuid.to_string().as_str()],
    )
}

fn record_event(db: &mut dyn Db, contact_id: i64, text: String, at: Timestamp) -> StoreResult<()> {
    insert_message(
        db,
        contact_id,
        &MessageRecord {
            uuid: PublicId::time_ordered(),
            kind: MessageKind::Event,
            text,
            created_at: at,
        },
    )
}

pub(super) fn insert_message(
    db: &mut dyn Db,
    contact_id: i64,
    message: &MessageRecord,
) -> StoreResult<()> {
    db.execute(
        "INSERT INTO messages (uuid, contact_id, kind, text, created_at) VALUES ($1, $2, $3, $4, $5)",
        &params![
            message.uuid.to_string().as_str(),
            contact_id,
            message.kind.as_str(),
            &message.text,
            message.created_at
        ],
    )?;
    Ok(())
}

/// Applies a validated PATCH and records the events it causes.
pub(super) fn update(
    db: &mut dyn Db,
    cache: &SettingsCache,
    account: AccountId,
    uuid: PublicId,
    changes: &ContactChanges,
    at: Timestamp,
) -> StoreResult<ContactRecord> {
    let mut row = lock_contact(db, account, uuid, at)?;
    let before = row.clone();
    let settings = cache.current(db, account, Seen::Uncommitted)?;
    let mut counts = Counts::default();
    if let Some(name) = &changes.name
        && *name != row.name
    {
        unindex_for_search(db, row.id, &row.name_key, &row.identifier_digits);
        row.name = name.clone();
        row.name_key = fold_case(name);
        index_for_search(db, &row);
    }
    if let Some(assigned) = changes.assigned_user_id
        && assigned != row.assigned_user_id
    {
        let text = match assigned {
            Some(user_id) => {
                let user = settings
                    .user_by_id(user_id)
                    .ok_or_else(foreign_key_violation)?;
                format!("Conversation was assigned to {}", user.name)
            }
            None => "Conversation was unassigned".to_owned(),
        };
        row.assigned_user_id = assigned;
        record_event(db, row.id, text, at)?;
    }
    if let Some(team_id) = changes.team_id
        && Some(team_id) != row.team_id
    {
        let team = settings
            .team_by_id(team_id)
            .ok_or_else(foreign_key_violation)?;
        let text = format!("Conversation was moved to team {}", team.name);
        if let Some(old) = row.team_id {
            counts.team(old, -1);
        }
        counts.team(team_id, 1);
        row.team_id = Some(team_id);
        record_event(db, row.id, text, at)?;
    }
    if let Some(note) = &changes.note {
        row.note = note.clone();
    }
    if let Some(bsuid) = &changes.bsuid {
        if let Some(bsuid) = bsuid {
            let holder: Option<String> = db.optional(
                "SELECT uuid FROM contacts WHERE account_id = $1 AND bsuid = $2 AND id <> $3",
                &params![account.0, bsuid, row.id],
            )?;
            if let Some(holder) = holder {
                return Err(StoreError::conflict(
                    "bsuid_taken",
                    format!("contact {holder} already has bsuid '{bsuid}'"),
                ));
            }
        }
        row.bsuid = bsuid.clone();
    }
    if let Some(bot) = changes.bot {
        row.bot_id = Some(bot.bot_id);
        row.bot_status = Some(bot.status.as_str().to_owned());
        row.bot_version = Some(bot.version);
        if bot.status == BotStatus::Started {
            row.bot_started_at = Some(at);
        }
    }
    if let Some(tag_ids) = &changes.tag_ids {
        let old = decode_tag_ids(&row.tag_ids)?;
        for removed in old.iter().filter(|id| !tag_ids.contains(id)) {
            db.execute(
                "DELETE FROM contact_tags WHERE contact_id = $1 AND tag_id = $2",
                &params![row.id, *removed],
            )?;
            counts.tag(*removed, -1);
        }
        for added in tag_ids.iter().filter(|id| !old.contains(id)) {
            add_tag(db, &row, *added)?;
            counts.tag(*added, 1);
        }
        row.tag_ids = encode_tag_ids(tag_ids);
    }
    if !changes.field_values.is_empty() {
        // One row per key: concurrent merges of different keys never touch
        // each other's rows (and this contact's row is locked anyway).
        let mut values = decode_field_values(&row.field_values)?;
        for (field_id, value) in &changes.field_values {
            match value {
                Some(value) => {
                    set_value(db, row.id, *field_id, value.as_str())?;
                    values.insert(*field_id, value.as_str().to_owned());
                }
                None => {
                    db.execute(
                        "DELETE FROM contact_field_values WHERE contact_id = $1 AND field_id = $2",
                        &params![row.id, *field_id],
                    )?;
                    values.remove(field_id);
                }
            }
        }
        row.field_values = encode_field_values(&values)?;
    }
    // A rename changes which searches find the contact (matches.rs).
    if row.team_id != before.team_id
        || row.tag_ids != before.tag_ids
        || row.name_key != before.name_key
    {
        counts.listings_changed(account);
    }
    write_changed_columns(db, &before, &row)?;
    db.defer_counts(counts);
    render(row, &settings)
}

/// Writes the columns `update` changed, and only those: SQLite rewrites
/// every index that covers a column an `UPDATE` sets, changed or not, so
/// setting them all made each PATCH rewrite the team, user, bot and bsuid
/// indexes too, a few more pages for every commit to write and sync.
/// (`lock_contact` has already set `updated_at`.)
fn write_changed_columns(
    db: &mut dyn Db,
    before: &ContactRow,
    row: &ContactRow,
) -> StoreResult<()> {
    let mut update = SqlBuilder::new("UPDATE contacts SET updated_at = updated_at");
    if row.name != before.name {
        update.push(", name = ").param(&row.name);
        update.push(", name_key = ").param(&row.name_key);
    }
    if row.assigned_user_id != before.assigned_user_id {
        update
            .push(", assigned_user_id = ")
            .param(row.assigned_user_id);
    }
    if row.team_id != before.team_id {
        update.push(", team_id = ").param(row.team_id);
    }
    if row.note != before.note {
        update.push(", note = ").param(&row.note);
    }
    if row.bsuid != before.bsuid {
        update.push(", bsuid = ").param(&row.bsuid);
    }
    if (
        row.bot_id,
        &row.bot_status,
        row.bot_version,
        row.bot_started_at,
    ) != (
        before.bot_id,
        &before.bot_status,
        before.bot_version,
        before.bot_started_at,
    ) {
        update.push(", bot_id = ").param(row.bot_id);
        update.push(", bot_status = ").param(&row.bot_status);
        update.push(", bot_version = ").param(row.bot_version);
        update.push(", bot_started_at = ").param(row.bot_started_at);
    }
    if row.tag_ids != before.tag_ids {
        update.push(", tag_ids = ").param(&row.tag_ids);
    }
    if row.field_values != before.field_values {
        update.push(", field_values = ").param(&row.field_values);
    }
    if update.params().is_empty() {
        return Ok(());
    }
    update.push(" WHERE id = ").param(row.id);
    // Another contact given the same bsuid at the same time is only seen by
    // the unique index.
    let taken = format!(
        "another contact already has bsuid '{}'",
        row.bsuid.as_deref().unwrap_or_default()
    );
    db.execute(update.sql(), update.params())
        .map_err(unique_means("bsuid_taken", taken))?;
    Ok(())
}

row_struct! {
    struct DeletedRow {
        id: i64,
        channel_id: i64,
        team_id: Option<i64>,
        tag_ids: String,
        name_key: String,
        identifier_digits: String,
    }
}

/// Removes a contact with its conversation and messages.
pub(super) fn delete(db: &mut dyn Db, account: AccountId, uuid: PublicId) -> StoreResult<()> {
    // Memberships, values and messages go with it (ON DELETE CASCADE).
    let gone: DeletedRow = db.one(
        concatcp!(
            "DELETE FROM contacts WHERE account_id = $1 AND uuid = $2 RETURNING ",
            DeletedRow::COLUMNS
        ),
        &params![account.0, uuid.to_string().as_str()],
    )?;
    let mut counts = Counts::default();
    let tag_ids = decode_tag_ids(&gone.tag_ids)?;
    counts.contact(account, gone.channel_id, gone.team_id, &tag_ids, -1);
    db.defer_counts(counts);
    unindex_for_search(db, gone.id, &gone.name_key, &gone.identifier_digits);
    Ok(())
}

/// Closes the conversation; closing a closed one keeps the first time.
/// Answers the contact and whether the conversation was open.
pub(super) fn close_conversation(
    db: &mut dyn Db,
    cache: &SettingsCache,
    account: AccountId,
    uuid: PublicId,
    at: Timestamp,
) -> StoreResult<(ContactRecord, bool)> {
    let mut row = lock_contact(db, account, uuid, at)?;
    let closing = row.closed_at.is_none();
    if closing {
        db.execute(
            "UPDATE contacts SET closed_at = $1 WHERE id = $2",
            &params![at, row.id],
        )?;
        row.closed_at = Some(at);
        record_event(db, row.id, "Conversation was closed".to_owned(), at)?;
    }
    let settings = cache.current(db, account, Seen::Uncommitted)?;
    Ok((render(row, &settings)?, closing))
}

/// Answers the contact and whether the conversation was closed.
pub(super) fn open_conversation(
    db: &mut dyn Db,
    cache: &SettingsCache,
    account: AccountId,
    uuid: PublicId,
    at: Timestamp,
) -> StoreResult<(ContactRecord, bool)> {
    let mut row = lock_contact(db, account, uuid, at)?;
    let opening = row.closed_at.is_some();
    if opening {
        db.execute(
            "UPDATE contacts SET closed_at = NULL WHERE id = $1",
            &params![row.id],
        )?;
        row.closed_at = None;
        record_event(db, row.id, "Conversation was reopened".to_owned(), at)?;
    }
    let settings = cache.current(db, account, Seen::Uncommitted)?;
    Ok((render(row, &settings)?, opening))
}

pub(super) fn set_funnel(
    db: &mut dyn Db,
    cache: &SettingsCache,
    account: AccountId,
    uuid: PublicId,
    funnel_id: Option<i64>,
    at: Timestamp,
) -> StoreResult<ContactRecord> {
    let mut row = lock_contact(db, account, uuid, at)?;
    let settings = cache.current(db, account, Seen::Uncommitted)?;
    if row.funnel_id != funnel_id {
        let text = match funnel_id {
            Some(id) => {
                let funnel = settings
                    .funnel_by_id(id)
                    .ok_or_else(foreign_key_violation)?;
                format!("Conversation was moved to funnel {}", funnel.name)
            }
            None => "Conversation was removed from its funnel".to_owned(),
        };
        db.execute(
            "UPDATE contacts SET funnel_id = $1 WHERE id = $2",
            &params![funnel_id, row.id],
        )?;
        row.funnel_id = funnel_id;
        record_event(db, row.id, text, at)?;
    }
    render(row, &settings)
}

/// Answers the note and the contact it was added to.
pub(super) fn add_note(
    db: &mut dyn Db,
    cache: &SettingsCache,
    account: AccountId,
    uuid: PublicId,
    text: &str,
    at: Timestamp,
) -> StoreResult<(MessageRecord, ContactRecord)> {
    let row = lock_contact(db, account, uuid, at)?;
    let note = MessageRecord {
        uuid: PublicId::time_ordered(),
        kind: MessageKind::Note,
        text: text.to_owned(),
        created_at: at,
    };
    insert_message(db, row.id, &note)?;
    let settings = cache.current(db, account, Seen::Uncommitted)?;
    Ok((note, render(row, &settings)?))
}

fn read_row(db: &mut dyn Db, account: AccountId, uuid: PublicId) -> StoreResult<ContactRow> {
    db.one(
        concatcp!(SELECT_CONTACT, " WHERE account_id = $1 AND uuid = $2"),
        &params![account.0, uuid.to_string().as_str()],
    )
}

/// One contact, read by one statement outside any transaction when the
/// settings its row was read with are cached (the statement is a snapshot
/// of its own), else again in a read transaction.
fn read_alone(
    db: &mut dyn Db,
    cache: &SettingsCache,
    account: AccountId,
    uuid: PublicId,
) -> StoreResult<ContactRecord> {
    let (version, row) = versioned_row(db, account, uuid)?;
    match cache.cached(account, version) {
        Some(settings) => render(row, &settings),
        // The settings must be read at the row's snapshot.
        None => in_read_transaction(db, |db| read(db, cache, account, uuid)),
    }
}

/// One contact, in a read transaction.
fn read(
    db: &mut dyn Db,
    cache: &SettingsCache,
    account: AccountId,
    uuid: PublicId,
) -> StoreResult<ContactRecord> {
    let (version, row) = versioned_row(db, account, uuid)?;
    let settings = cache.at_version(db, account, version, Seen::Committed)?;
    render(row, &settings)
}

/// A contact's row and the account's settings version, read together:
/// one statement, not two.
fn versioned_row(
    db: &mut dyn Db,
    account: AccountId,
    uuid: PublicId,
) -> StoreResult<(i64, ContactRow)> {
    versioned(
        db,
        concatcp!(VERSIONED_CONTACT, " WHERE account_id = $1 AND uuid = $2"),
        &params![account.0, uuid.to_string().as_str()],
    )
}

/// The account's settings version (the account is `$1`), then a contact.
const VERSIONED_CONTACT: &str = concatcp!(
    "SELECT (SELECT settings_version FROM accounts WHERE id = $1), ",
    ContactRow::COLUMNS,
    " FROM contacts"
);

/// The first row of a [`VERSIONED_CONTACT`] statement.
fn versioned(db: &mut dyn Db, sql: &str, params: &[Param<'_>]) -> StoreResult<(i64, ContactRow)> {
    let mut found = None;
    db.for_each(sql, params, &mut |row| {
        found = Some((
            i64::read(row, 0)?,
            ContactRow::from_row(&Shifted { row, by: 1 })?,
        ));
        Ok(())
    })?;
    found.ok_or(StoreError::NotFound)
}

/// A contact by phone number, read by one statement outside any
/// transaction when the settings are cached, as [`read_alone`] does. A
/// channel's type never changes, so any cached settings tell which
/// statement finds the contact.
fn read_by_phone_alone(
    db: &mut dyn Db,
    cache: &SettingsCache,
    account: AccountId,
    channel_id: i64,
    digits: &str,
) -> StoreResult<ContactRecord> {
    let kind = cache
        .latest(account)
        .and_then(|settings| settings.channel_by_id(channel_id).map(|c| c.kind));
    // Found with settings at the row's version: the one kept entry, so the
    // type came from them too. Otherwise (not found, perhaps through an
    // older type of a reused channel id, or not cached) all again in a
    // transaction.
    if let Some(kind) = kind
        && let Ok((version, row)) = phone_row(db, account, channel_id, kind, digits)
        && let Some(settings) = cache.cached(account, version)
    {
        return render(row, &settings);
    }
    in_read_transaction(db, |db| {
        read_by_phone(db, cache, account, channel_id, digits)
    })
}

fn read_by_phone(
    db: &mut dyn Db,
    cache: &SettingsCache,
    account: AccountId,
    channel_id: i64,
    digits: &str,
) -> StoreResult<ContactRecord> {
    let settings = cache.current(db, account, Seen::Committed)?;
    let channel = settings
        .channel_by_id(channel_id)
        .ok_or(StoreError::NotFound)?;
    let (_, row) = phone_row(db, account, channel_id, channel.kind, digits)?;
    render(row, &settings)
}

/// On WhatsApp the digits are the unique key; other channels' contacts
/// are found by the digits of their identifier.
fn phone_row(
    db: &mut dyn Db,
    account: AccountId,
    channel_id: i64,
    kind: Source,
    digits: &str,
) -> StoreResult<(i64, ContactRow)> {
    let sql = match kind {
        Source::Whatsapp => concatcp!(
            VERSIONED_CONTACT,
            " WHERE account_id = $1 AND channel_id = $2 AND identifier_key = $3"
        ),
        _ => concatcp!(
            VERSIONED_CONTACT,
            " WHERE account_id = $1 AND channel_id = $2 AND identifier_digits = $3
              AND source <> 'whatsapp' ORDER BY created_at, seq LIMIT 1"
        ),
    };
    versioned(db, sql, &params![account.0, channel_id, digits])
}

pub(super) fn read_by_bsuid(
    db: &mut dyn Db,
    cache: &SettingsCache,
    account: AccountId,
    bsuid: &str,
) -> StoreResult<ContactRecord> {
    let settings = cache.current(db, account, Seen::Committed)?;
    let row: ContactRow = db.one(
        concatcp!(SELECT_CONTACT, " WHERE account_id = $1 AND bsuid = $2"),
        &params![account.0, bsuid],
    )?;
    render(row, &settings)
}

fn read_by_conversation(
    db: &mut dyn Db,
    cache: &SettingsCache,
    account: AccountId,
    conversation: PublicId,
) -> StoreResult<ContactRecord> {
    let settings = cache.current(db, account, Seen::Committed)?;
    let row: ContactRow = db.one(
        concatcp!(
            SELECT_CONTACT,
            " WHERE account_id = $1 AND conversation_uuid = $2"
        ),
        &params![account.0, conversation.to_string().as_str()],
    )?;
    render(row, &settings)
}

row_struct! {
    pub(super) struct MessageRow {
        uuid: PublicId,
        kind: String,
        text: String,
        created_at: Timestamp,
    }
}

impl TryFrom<MessageRow> for MessageRecord {
    type Error = StoreError;

    fn try_from(row: MessageRow) -> StoreResult<Self> {
        let kind = match row.kind.as_str() {
            "note" => MessageKind::Note,
            "event" => MessageKind::Event,
            _ => return Err(StoreError::other("messages.kind holds an unknown kind")),
        };
        Ok(MessageRecord {
            uuid: row.uuid,
            kind,
            text: row.text,
            created_at: row.created_at,
        })
    }
}

pub(super) fn read_messages(
    db: &mut dyn Db,
    cache: &SettingsCache,
    account: AccountId,
    uuid: PublicId,
    page: u32,
    page_size: u32,
) -> StoreResult<MessagePage> {
    let settings = cache.current(db, account, Seen::Committed)?;
    let row = read_row(db, account, uuid)?;
    let total: i64 = db.one(
        "SELECT count(*) FROM messages WHERE contact_id = $1",
        &params![row.id],
    )?;
    let offset = i64::from(page.saturating_sub(1)) * i64::from(page_size);
    let messages: Vec<MessageRow> = db.all(
        concatcp!(
            "SELECT ",
            MessageRow::COLUMNS,
            " FROM messages WHERE contact_id = $1
              ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        ),
        &params![row.id, i64::from(page_size), offset],
    )?;
    Ok(MessagePage {
        contact: render(row, &settings)?,
        messages: messages
            .into_iter()
            .map(MessageRecord::try_from)
            .collect::<StoreResult<_>>()?,
        total,
    })
}

#[async_trait]
impl ContactStore for SqlStore {
    async fn insert_contact(
        &self,
        account: AccountId,
        contact: &NewContact,
    ) -> StoreResult<ContactRecord> {
        let contact = contact.clone();
        self.write_recording(move |db, cache, events| {
            let created = insert(db, cache, account, &contact)?;
            events.contact(db, account, EventName::ContactCreated, &created)?;
            Ok(created)
        })
        .await
    }

    async fn update_contact(
        &self,
        account: AccountId,
        uuid: PublicId,
        changes: &ContactChanges,
        at: Timestamp,
    ) -> StoreResult<ContactRecord> {
        let changes = changes.clone();
        self.write_recording(move |db, cache, events| {
            let updated = update(db, cache, account, uuid, &changes, at)?;
            events.contact(db, account, EventName::ContactUpdated, &updated)?;
            Ok(updated)
        })
        .await
    }

    async fn contact(&self, account: AccountId, uuid: PublicId) -> StoreResult<ContactRecord> {
        let cache = self.cache.clone();
        self.read_statement(move |db| read_alone(db, &cache, account, uuid))
            .await
    }

    async fn contact_by_phone(
        &self,
        account: AccountId,
        channel_id: i64,
        digits: &str,
    ) -> StoreResult<ContactRecord> {
        let digits = digits.to_owned();
        let cache = self.cache.clone();
        self.read_statement(move |db| read_by_phone_alone(db, &cache, account, channel_id, &digits))
            .await
    }

    async fn contact_by_bsuid(
        &self,
        account: AccountId,
        bsuid: &str,
    ) -> StoreResult<ContactRecord> {
        let bsuid = bsuid.to_owned();
        self.read(move |db, cache| read_by_bsuid(db, cache, account, &bsuid))
            .await
    }

    async fn contact_by_conversation(
        &self,
        account: AccountId,
        conversation: PublicId,
    ) -> StoreResult<ContactRecord> {
        self.read(move |db, cache| read_by_conversation(db, cache, account, conversation))
            .await
    }

    async fn list_contacts(
        &self,
        account: AccountId,
        filter: &ContactFilter,
        start: PageStart,
        page_size: u32,
    ) -> StoreResult<ContactPage> {
        let filter = filter.clone();
        let memory = self.listing_memory.clone();
        self.read(move |db, cache| {
            super::listing::list(db, cache, &memory, account, &filter, start, page_size)
        })
        .await
    }

    async fn export_contacts(
        &self,
        account: AccountId,
        filter: &ContactFilter,
        after: i64,
        watermark: Option<i64>,
        limit: u32,
    ) -> StoreResult<ExportPage> {
        let filter = filter.clone();
        self.read(move |db, cache| {
            super::listing::export_page(db, cache, account, &filter, after, watermark, limit)
        })
        .await
    }

    async fn import_contacts(
        &self,
        account: AccountId,
        contacts: Vec<NewContact>,
    ) -> StoreResult<Vec<Imported>> {
        self.write_recording(move |db, cache, events| {
            let imported = insert_many(db, account, &contacts)?;
            if events.recording() {
                let settings = cache.current(db, account, Seen::Uncommitted)?;
                let created = contacts
                    .iter()
                    .zip(&imported)
                    .filter(|(_, outcome)| matches!(outcome, Imported::Created));
                for (contact, _) in created {
                    let record = render(read_row(db, account, contact.uuid)?, &settings)?;
                    events.contact(db, account, EventName::ContactCreated, &record)?;
                }
            }
            Ok(imported)
        })
        .await
    }

    async fn delete_contact(&self, account: AccountId, uuid: PublicId) -> StoreResult<()> {
        self.write_recording(move |db, _, events| {
            delete(db, account, uuid)?;
            events.deleted(db, account, uuid)
        })
        .await
    }

    async fn close_conversation(
        &self,
        account: AccountId,
        uuid: PublicId,
        at: Timestamp,
    ) -> StoreResult<ContactRecord> {
        self.write_recording(move |db, cache, events| {
            let (closed, closing) = close_conversation(db, cache, account, uuid, at)?;
            if closing {
                events.contact(db, account, EventName::ConversationClosed, &closed)?;
            }
            Ok(closed)
        })
        .await
    }

    async fn open_conversation(
        &self,
        account: AccountId,
        uuid: PublicId,
        at: Timestamp,
    ) -> StoreResult<ContactRecord> {
        self.write_recording(move |db, cache, events| {
            let (opened, opening) = open_conversation(db, cache, account, uuid, at)?;
            if opening {
                events.contact(db, account, EventName::ConversationOpened, &opened)?;
            }
            Ok(opened)
        })
        .await
    }

    async fn set_funnel(
        &self,
        account: AccountId,
        uuid: PublicId,
        funnel_id: Option<i64>,
        at: Timestamp,
    ) -> StoreResult<ContactRecord> {
        self.write_recording(move |db, cache, events| {
            let moved = set_funnel(db, cache, account, uuid, funnel_id, at)?;
            events.contact(db, account, EventName::ContactUpdated, &moved)?;
            Ok(moved)
        })
        .await
    }

    async fn add_note(
        &self,
        account: AccountId,
        uuid: PublicId,
        text: &str,
        at: Timestamp,
    ) -> StoreResult<MessageRecord> {
        let text = text.to_owned();
        self.write_recording(move |db, cache, events| {
            let (note, contact) = add_note(db, cache, account, uuid, &text, at)?;
            events.contact(db, account, EventName::ContactUpdated, &contact)?;
            Ok(note)
        })
        .await
    }

    async fn list_messages(
        &self,
        account: AccountId,
        uuid: PublicId,
        page: u32,
        page_size: u32,
    ) -> StoreResult<MessagePage> {
        self.read(move |db, cache| read_messages(db, cache, account, uuid, page, page_size))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_ids_round_trip_in_order() {
        assert_eq!(encode_tag_ids(&[7, 3, 12]), "7,3,12");
        assert_eq!(decode_tag_ids("7,3,12").expect("ids"), [7, 3, 12]);
        assert_eq!(encode_tag_ids(&[]), "");
        assert!(decode_tag_ids("").expect("none").is_empty());
        assert!(decode_tag_ids("7,x").is_err());
    }

    #[test]
    fn field_values_are_a_json_object_by_field_id() {
        let values: FieldValues = [(9, "b".to_owned()), (2, "a\"".to_owned())].into();
        let text = encode_field_values(&values).expect("encode");
        assert_eq!(text, r#"{"2":"a\"","9":"b"}"#);
        assert_eq!(decode_field_values(&text).expect("decode"), values);
        // What PostgreSQL's json_object_agg writes reads back too.
        let spaced = decode_field_values(r#"{ "2" : "a", "9" : "b" }"#).expect("spaced");
        assert_eq!(spaced.len(), 2);
    }
}
