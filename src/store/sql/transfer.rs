//! Whole accounts into a database (what `--demo` loads), and whole
//! databases into another (`bellbook copy`).

use std::collections::HashMap;

use const_format::concatcp;

use super::admin::{insert_account_row, insert_key_row};
use super::contacts::{
    ContactRow, FieldValues, encode_field_values, encode_tag_ids, insert_message, insert_row,
    next_contact_seqs,
};
use super::counts::Counts;
use super::db::{Db, Value, params};
use super::settings::{bots, channels, custom_fields, funnels, read_settings, tags, teams, users};
use super::{Backend, migrate, postgres::PgDb, sqlite};
use crate::domain::contact::ContactRecord;
use crate::domain::{FunnelId, Identifier, PublicId, fold_case};
use crate::store::snapshot::{AccountSnapshot, ContactSnapshot, TeamSnapshot};
use crate::store::{AccountId, NewApiKey, StoreError, StoreResult};

/// Writes an account with its keys, settings and contacts.
pub(super) fn import_account(
    db: &mut dyn Db,
    snapshot: &AccountSnapshot,
) -> StoreResult<AccountId> {
    let account = insert_account_row(
        db,
        snapshot.id,
        snapshot.uuid,
        &snapshot.name,
        snapshot.created_at,
        snapshot.contact_seq,
    )?;
    for key in &snapshot.api_keys {
        let new_key = NewApiKey {
            uuid: key.uuid,
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            secret_hash: key.secret_hash.clone(),
            created_at: key.created_at,
        };
        insert_key_row(db, account, &new_key, key.revoked_at)?;
    }
    let mut user_ids = HashMap::new();
    for user in &snapshot.users {
        user_ids.insert(user.uuid, users::insert(db, account, user)?);
    }
    for TeamSnapshot { team, members } in &snapshot.teams {
        let team_id = teams::insert(
            db,
            account,
            team.uuid,
            &team.name,
            team.is_default,
            team.created_at,
        )?;
        for member in members {
            let user_id = user_ids.get(member).ok_or_else(|| {
                StoreError::other(format!("team {} lists unknown member {member}", team.uuid))
            })?;
            teams::add_member(db, team_id, *user_id)?;
        }
    }
    for channel in &snapshot.channels {
        channels::insert(db, account, channel)?;
    }
    for bot in &snapshot.bots {
        bots::insert(db, account, bot)?;
    }
    for funnel in &snapshot.funnels {
        funnels::insert(db, account, funnel)?;
    }
    for tag in &snapshot.tags {
        tags::insert(db, account, &tag.name, tag.created_at)?;
    }
    for field in &snapshot.custom_fields {
        custom_fields::insert(
            db,
            account,
            &field.name,
            field.kind,
            &field.options,
            field.created_at,
        )?;
    }
    if !snapshot.contacts.is_empty() {
        let ids = SettingIds::read(db, account)?;
        let mut counts = Counts::default();
        for contact in &snapshot.contacts {
            import_contact(db, account, &ids, contact, &mut counts)?;
        }
        db.defer_counts(counts);
    }
    Ok(account)
}

/// Row ids of an account's settings, by the references snapshots carry:
/// uuids for teams, channels, bots and funnels; folded names for tags,
/// custom fields and e-mails.
struct SettingIds {
    users_by_email: HashMap<String, i64>,
    teams: HashMap<PublicId, i64>,
    channels: HashMap<PublicId, i64>,
    bots: HashMap<PublicId, i64>,
    funnels: HashMap<FunnelId, i64>,
    tags: HashMap<String, i64>,
    fields: HashMap<String, i64>,
}

impl SettingIds {
    fn read(db: &mut dyn Db, account: AccountId) -> StoreResult<SettingIds> {
        let settings = read_settings(db, account)?;
        Ok(SettingIds {
            users_by_email: settings
                .users
                .iter()
                .map(|u| (fold_case(&u.email), u.id))
                .collect(),
            teams: settings.teams.iter().map(|t| (t.uuid, t.id)).collect(),
            channels: settings.channels.iter().map(|c| (c.uuid, c.id)).collect(),
            bots: settings.bots.iter().map(|b| (b.uuid, b.id)).collect(),
            funnels: settings.funnels.iter().map(|f| (f.uuid, f.id)).collect(),
            tags: settings
                .tags
                .iter()
                .map(|t| (fold_case(&t.name), t.id))
                .collect(),
            fields: settings
                .custom_fields
                .iter()
                .map(|f| (fold_case(&f.name), f.id))
                .collect(),
        })
    }
}

fn import_contact(
    db: &mut dyn Db,
    account: AccountId,
    ids: &SettingIds,
    snapshot: &ContactSnapshot,
    counts: &mut Counts,
) -> StoreResult<()> {
    let contact: &ContactRecord = &snapshot.contact;
    let missing = |what: &str| {
        StoreError::other(format!(
            "contact {} refers to an unknown {what}",
            contact.uuid
        ))
    };
    let by_uuid = |map: &HashMap<PublicId, i64>, uuid: PublicId, what: &str| {
        map.get(&uuid).copied().ok_or_else(|| missing(what))
    };
    let channel_id = by_uuid(&ids.channels, contact.channel.uuid, "channel")?;
    let team_id = contact
        .team
        .as_ref()
        .map(|team| by_uuid(&ids.teams, team.uuid, "team"))
        .transpose()?;
    let assigned_user_id = contact
        .assigned_user
        .as_ref()
        .map(|email| {
            ids.users_by_email
                .get(&fold_case(email))
                .copied()
                .ok_or_else(|| missing("user"))
        })
        .transpose()?;
    let funnel_id = contact
        .funnel
        .map(|funnel| {
            ids.funnels
                .get(&funnel)
                .copied()
                .ok_or_else(|| missing("funnel"))
        })
        .transpose()?;
    let bot_id = contact
        .bot
        .as_ref()
        .map(|b| by_uuid(&ids.bots, b.bot.uuid, "bot"))
        .transpose()?;
    let identifier = Identifier::parse(&contact.identifier, contact.source)
        .map_err(|_| missing("identifier"))?;
    let tag_ids = contact
        .tags
        .iter()
        .map(|name| {
            ids.tags
                .get(&fold_case(name))
                .copied()
                .ok_or_else(|| missing("tag"))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let values = contact
        .custom_fields
        .iter()
        .map(|v| {
            let id = ids
                .fields
                .get(&fold_case(&v.name))
                .copied()
                .ok_or_else(|| missing("custom field"))?;
            Ok((id, v.value.as_str().to_owned()))
        })
        .collect::<StoreResult<FieldValues>>()?;
    let seq = match snapshot.seq {
        Some(seq) => seq,
        None => next_contact_seqs(db, account, 1)?,
    };
    let mut row = ContactRow {
        id: 0,
        uuid: contact.uuid,
        seq,
        name: contact.name.clone(),
        name_key: fold_case(&contact.name),
        identifier: identifier.raw.clone(),
        identifier_digits: identifier.digits.clone(),
        source: contact.source,
        channel_id,
        team_id,
        assigned_user_id,
        avatar_url: contact.avatar_url.clone(),
        blocked_at: contact.blocked_at,
        bsuid: contact.bsuid.clone(),
        note: contact.note.clone(),
        created_at: contact.created_at,
        updated_at: snapshot.updated_at,
        conversation_uuid: contact.conversation_uuid,
        closed_at: contact.closed_at,
        funnel_id,
        bot_id,
        bot_status: contact.bot.as_ref().map(|b| b.status.as_str().to_owned()),
        bot_version: contact.bot.as_ref().map(|b| b.version),
        bot_started_at: contact.bot.as_ref().and_then(|b| b.conversation_started_at),
        tag_ids: encode_tag_ids(&tag_ids),
        field_values: encode_field_values(&values)?,
    };
    if !insert_row(db, account, &mut row, &identifier.key, counts)? {
        return Err(StoreError::other(format!(
            "contact {} has the identifier of another contact on its channel",
            contact.uuid
        )));
    }
    for message in &snapshot.messages {
        insert_message(db, row.id, message)?;
    }
    Ok(())
}

/// Every table, parents before children, with the columns a copy moves
/// and the order it reads them in.
const TABLES: &[(&str, &[&str], &str)] = &[
    ("server_secrets", &["name", "value"], "name"),
    (
        "accounts",
        &[
            "id",
            "uuid",
            "name",
            "created_at",
            "contact_seq",
            "contact_count",
            "settings_version",
            "event_seq",
        ],
        "id",
    ),
    (
        "api_keys",
        &[
            "id",
            "uuid",
            "account_id",
            "name",
            "prefix",
            "secret_hash",
            "created_at",
            "revoked_at",
        ],
        "id",
    ),
    (
        "users",
        &[
            "id",
            "uuid",
            "account_id",
            "email",
            "email_key",
            "name",
            "is_owner",
            "created_at",
        ],
        "id",
    ),
    // Passwords go with their users; dashboard sessions do not (whoever
    // was signed in signs in again on the copy).
    (
        "user_passwords",
        &["user_id", "hash", "updated_at"],
        "user_id",
    ),
    (
        "teams",
        &[
            "id",
            "uuid",
            "account_id",
            "name",
            "is_default",
            "created_at",
            "contact_count",
        ],
        "id",
    ),
    ("team_members", &["team_id", "user_id"], "team_id, user_id"),
    (
        "channels",
        &[
            "id",
            "uuid",
            "account_id",
            "title",
            "type",
            "is_main",
            "discarded_at",
            "created_at",
            "contact_count",
        ],
        "id",
    ),
    (
        "bots",
        &[
            "id",
            "uuid",
            "account_id",
            "name",
            "enabled",
            "version",
            "created_at",
        ],
        "id",
    ),
    (
        "funnels",
        &[
            "id",
            "uuid",
            "account_id",
            "name",
            "emoji",
            "position",
            "created_at",
        ],
        "id",
    ),
    (
        "tags",
        &[
            "id",
            "account_id",
            "name",
            "name_key",
            "created_at",
            "contact_count",
        ],
        "id",
    ),
    (
        "custom_fields",
        &[
            "id",
            "account_id",
            "name",
            "name_key",
            "type",
            "options",
            "created_at",
        ],
        "id",
    ),
    (
        "contacts",
        &[
            "id",
            "uuid",
            "account_id",
            "seq",
            "name",
            "name_key",
            "identifier",
            "identifier_digits",
            "identifier_key",
            "source",
            "channel_id",
            "team_id",
            "assigned_user_id",
            "avatar_url",
            "blocked_at",
            "bsuid",
            "note",
            "created_at",
            "updated_at",
            "conversation_uuid",
            "closed_at",
            "funnel_id",
            "bot_id",
            "bot_status",
            "bot_version",
            "bot_started_at",
            "tag_ids",
            "field_values",
        ],
        "id",
    ),
    (
        "contact_tags",
        &["contact_id", "tag_id", "created_at", "seq"],
        "contact_id, tag_id",
    ),
    (
        "contact_field_values",
        &["contact_id", "field_id", "value"],
        "contact_id, field_id",
    ),
    (
        "messages",
        &["id", "uuid", "contact_id", "kind", "text", "created_at"],
        "id",
    ),
    (
        "webhooks",
        &["account_id", "url", "subscriptions", "secret", "created_at"],
        "account_id",
    ),
    (
        "events",
        &[
            "account_id",
            "seq",
            "name",
            "contact_uuid",
            "payload",
            "created_at",
        ],
        "account_id, seq",
    ),
    // Pending deliveries carry on from the copy; a claim in them is one
    // the source's processes held, and runs out.
    (
        "webhook_queue",
        &[
            "account_id",
            "seq",
            "contact_uuid",
            "attempts",
            "next_attempt_at",
            "claim",
            "claimed_until",
        ],
        "account_id, seq",
    ),
    (
        "webhook_attempts",
        &[
            "id",
            "account_id",
            "seq",
            "code",
            "headers",
            "body",
            "success",
            "created_at",
        ],
        "id",
    ),
];

/// Tables whose ids PostgreSQL numbers from a sequence.
const NUMBERED: &[&str] = &[
    "accounts",
    "api_keys",
    "users",
    "teams",
    "channels",
    "bots",
    "funnels",
    "tags",
    "custom_fields",
    "contacts",
    "messages",
    "webhook_attempts",
];

/// Rows written to the target per statement (or `COPY`).
const ROWS_PER_WRITE: usize = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the target database already holds {0} account(s); copy only into an empty database")]
    TargetNotEmpty(i64),
    #[error("the source and the target are the same database")]
    SameDatabase,
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Where a copy has got to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyProgress {
    /// One of the accounts the copy carries (told before any row moves).
    Account {
        /// 1-based.
        number: usize,
        accounts: usize,
        name: String,
        contacts: i64,
    },
    /// Rows of one table so far.
    Rows {
        table: &'static str,
        copied: u64,
        total: u64,
    },
    /// The indexes and foreign keys set aside for the copy being made
    /// again (PostgreSQL).
    Indexes { count: usize },
}

/// What was copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopySummary {
    pub accounts: u64,
    pub contacts: u64,
}

fn open(url: &str) -> StoreResult<Box<dyn Db>> {
    let mut db: Box<dyn Db> = match Backend::for_url(url)? {
        Backend::Sqlite => Box::new(sqlite::SqliteDb::open(
            &sqlite::SqliteLocation::parse(url)?,
            sqlite::Role::Writer,
        )?),
        Backend::Postgres => Box::new(PgDb::connect(url)?),
    };
    migrate::run(db.as_mut())?;
    Ok(db)
}

/// Copies every row of every table from `from` to `to`, which must hold no
/// account, as one read of the source and one transaction on the target:
/// the copy is of one instant, and an interrupted copy leaves the target
/// empty. Ids, creation order and secrets are kept, so keys and even
/// pagination cursors issued before keep working.
pub fn copy_database(
    from: &str,
    to: &str,
    mut progress: impl FnMut(&CopyProgress),
) -> Result<CopySummary, CopyError> {
    if from == to {
        return Err(CopyError::SameDatabase);
    }
    let mut source = open(from)?;
    let mut target = open(to)?;
    let existing: i64 = target.one("SELECT count(*) FROM accounts", &[])?;
    if existing > 0 {
        return Err(CopyError::TargetNotEmpty(existing));
    }
    source.begin_read()?;
    target.begin_write()?;
    let copied = copy_tables(source.as_mut(), target.as_mut(), &mut progress);
    let _ = source.rollback();
    match copied {
        Ok(summary) => {
            target.commit()?;
            Ok(summary)
        }
        Err(error) => {
            let _ = target.rollback();
            Err(error.into())
        }
    }
}

/// The tables whose indexes and foreign keys a copy into PostgreSQL makes
/// after their rows are in: an index built over a million rows at once, or
/// a foreign key checked in one join, costs seconds; kept up row by row
/// (each row's references checked by a trigger of its own) they cost the
/// copy over a minute.
const BUILT_AFTER_COPY: &str = "'contacts', 'contact_tags', 'contact_field_values', 'messages'";

/// Drops the indexes of [`BUILT_AFTER_COPY`] that no constraint needs, and
/// its foreign keys, in the copy's transaction; answers the statements that
/// make them again, in the order to run them.
fn set_aside_indexes(target: &mut dyn Db) -> StoreResult<Vec<String>> {
    let indexes: Vec<(String, String)> = target.all(
        concatcp!(
            "SELECT index_class.relname::text, pg_get_indexdef(i.indexrelid)
             FROM pg_index i
             JOIN pg_class index_class ON index_class.oid = i.indexrelid
             JOIN pg_class table_class ON table_class.oid = i.indrelid
             WHERE table_class.relnamespace = current_schema()::regnamespace
               AND table_class.relname IN (",
            BUILT_AFTER_COPY,
            ")
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
             ORDER BY 1"
        ),
        &[],
    )?;
    let foreign_keys: Vec<(String, String, String)> = target.all(
        concatcp!(
            "SELECT table_class.relname::text, k.conname::text, pg_get_constraintdef(k.oid)
             FROM pg_constraint k
             JOIN pg_class table_class ON table_class.oid = k.conrelid
             WHERE k.contype = 'f'
               AND table_class.relnamespace = current_schema()::regnamespace
               AND table_class.relname IN (",
            BUILT_AFTER_COPY,
            ")
             ORDER BY 1, 2"
        ),
        &[],
    )?;
    let mut again = Vec::new();
    for (name, definition) in indexes {
        target.batch(&format!("DROP INDEX \"{name}\""))?;
        again.push(definition);
    }
    for (table, name, definition) in foreign_keys {
        target.batch(&format!("ALTER TABLE {table} DROP CONSTRAINT \"{name}\""))?;
        again.push(format!(
            "ALTER TABLE {table} ADD CONSTRAINT \"{name}\" {definition}"
        ));
    }
    Ok(again)
}

fn copy_tables(
    source: &mut dyn Db,
    target: &mut dyn Db,
    progress: &mut impl FnMut(&CopyProgress),
) -> StoreResult<CopySummary> {
    let accounts: Vec<(String, i64)> =
        source.all("SELECT name, contact_count FROM accounts ORDER BY id", &[])?;
    for (index, (name, contacts)) in accounts.iter().enumerate() {
        progress(&CopyProgress::Account {
            number: index + 1,
            accounts: accounts.len(),
            name: name.clone(),
            contacts: *contacts,
        });
    }
    // Secrets a fresh target made for itself give way to the source's.
    target.execute("DELETE FROM server_secrets", &[])?;
    let set_aside = match target.backend() {
        Backend::Postgres => set_aside_indexes(target)?,
        Backend::Sqlite => Vec::new(),
    };
    let mut summary = CopySummary::default();
    for &(table, columns, order) in TABLES {
        let total: i64 = source.one(&format!("SELECT count(*) FROM {table}"), &[])?;
        let total = u64::try_from(total).unwrap_or(0);
        let mut copied = 0;
        progress(&CopyProgress::Rows {
            table,
            copied,
            total,
        });
        let select = format!(
            "SELECT {} FROM {table} ORDER BY {order}",
            columns.join(", ")
        );
        let mut rows: Vec<Vec<Value>> = Vec::with_capacity(ROWS_PER_WRITE);
        source.for_each(&select, &[], &mut |row| {
            let values = (0..columns.len())
                .map(|i| row.value(i))
                .collect::<StoreResult<Vec<_>>>()?;
            rows.push(values);
            if rows.len() >= ROWS_PER_WRITE {
                target.insert_rows(table, columns, &rows)?;
                copied += rows.len() as u64;
                rows.clear();
                progress(&CopyProgress::Rows {
                    table,
                    copied,
                    total,
                });
            }
            Ok(())
        })?;
        target.insert_rows(table, columns, &rows)?;
        copied += rows.len() as u64;
        progress(&CopyProgress::Rows {
            table,
            copied,
            total,
        });
        match table {
            "accounts" => summary.accounts = copied,
            "contacts" => summary.contacts = copied,
            _ => {}
        }
    }
    match target.backend() {
        // The search index is built from the copied rows in one pass.
        Backend::Sqlite => {
            target.batch("INSERT INTO contacts_search (contacts_search) VALUES ('rebuild')")?
        }
        // Kept ids must not be handed out again.
        Backend::Postgres => {
            progress(&CopyProgress::Indexes {
                count: set_aside.len(),
            });
            target.batch("SET LOCAL maintenance_work_mem = '256MB'")?;
            for definition in &set_aside {
                target.batch(definition)?;
            }
            for table in NUMBERED {
                target.one::<i64>(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                       GREATEST((SELECT max(id) FROM {table}), 1))"
                    ),
                    &params![],
                )?;
            }
        }
    }
    Ok(summary)
}
