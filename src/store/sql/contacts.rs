//! Contacts, their conversation and its messages.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::settings::custom_field_from_row;
use super::{RowExt, SqlBuilder, SqlStore, db_error, unique_means};
use crate::domain::contact::{
    BotAssignment, BotStatus, ContactBot, ContactChanges, ContactFieldValue, ContactRecord,
    NewContact,
};
use crate::domain::identifier::digits_of;
use crate::domain::settings::{Bot, Channel, Team};
use crate::domain::{
    Conflict, CustomFieldValue, FieldError, Identifier, PublicId, Source, Timestamp, fold_case,
};
use crate::store::{
    AccountId, ContactFilter, ContactPage, ContactPosition, ContactStore, MessageKind, MessagePage,
    MessageRecord, PageStart, StoreError, StoreResult, TagsMode,
};

/// Every column a [`ContactRecord`] is built from, joined in one statement.
pub(super) const CONTACT_SELECT: &str =
    "SELECT c.id, c.uuid, c.seq, c.updated_at, c.name, c.identifier, c.source,
        c.avatar_url, c.blocked_at, c.bsuid, c.note, c.created_at, c.conversation_uuid,
        c.closed_at, c.bot_status, c.bot_version, c.bot_started_at,
        ch.id AS ch_id, ch.uuid AS ch_uuid, ch.title AS ch_title, ch.type AS ch_type,
        ch.is_main AS ch_main, ch.discarded_at AS ch_discarded_at, ch.created_at AS ch_created_at,
        t.id AS team_id, t.uuid AS team_uuid, t.name AS team_name, t.is_default AS team_default,
        t.created_at AS team_created_at,
        (SELECT count(*) FROM team_members m WHERE m.team_id = t.id) AS team_members,
        u.email AS user_email,
        f.uuid AS funnel_uuid,
        b.id AS bot_row_id, b.uuid AS bot_uuid, b.name AS bot_name, b.enabled AS bot_enabled,
        b.version AS bot_current_version, b.created_at AS bot_created_at
    FROM contacts c
    JOIN channels ch ON ch.id = c.channel_id
    LEFT JOIN teams t ON t.id = c.team_id
    LEFT JOIN users u ON u.id = c.assigned_user_id
    LEFT JOIN funnels f ON f.id = c.funnel_id
    LEFT JOIN bots b ON b.id = c.bot_id";

/// The columns of a new contact row.
pub(super) struct ContactRow<'a> {
    pub uuid: PublicId,
    pub conversation_uuid: PublicId,
    pub name: &'a str,
    pub identifier: &'a Identifier,
    pub source: Source,
    pub channel_id: i64,
    pub team_id: Option<i64>,
    pub assigned_user_id: Option<i64>,
    pub note: Option<&'a str>,
    pub created_at: Timestamp,
    pub bot: Option<BotAssignment>,
    pub bot_started_at: Option<Timestamp>,
}

/// Hands out the account's next contact sequence number. Taking it locks
/// the account row until commit, so sequence order is commit order: a
/// listing that has seen contact n has seen every contact before it (what
/// cursor walks rely on), and creates of one account run one at a time.
pub(super) async fn next_contact_seq(
    conn: &mut AnyConnection,
    account: AccountId,
) -> StoreResult<i64> {
    sqlx::query_scalar(
        "UPDATE accounts SET contact_seq = contact_seq + 1 WHERE id = $1 RETURNING contact_seq",
    )
    .bind(account.0)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?
    .ok_or(StoreError::NotFound)
}

/// Inserts a contact numbered `seq` (from [`next_contact_seq`]) with its
/// tags and values; returns its row id.
pub(super) async fn insert_contact_row(
    conn: &mut AnyConnection,
    account: AccountId,
    seq: i64,
    row: &ContactRow<'_>,
    tag_ids: &[i64],
    values: &[(i64, CustomFieldValue)],
) -> StoreResult<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO contacts (uuid, account_id, seq, name, name_key, identifier, identifier_digits,
             identifier_key, source, channel_id, team_id, assigned_user_id, note, created_at,
             updated_at, conversation_uuid, bot_id, bot_status, bot_version, bot_started_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $16, $17, $18, $19)
         RETURNING id",
    )
    .bind(row.uuid.to_string())
    .bind(account.0)
    .bind(seq)
    .bind(row.name.to_owned())
    .bind(fold_case(row.name))
    .bind(row.identifier.raw.clone())
    .bind(row.identifier.digits.clone())
    .bind(row.identifier.key.clone())
    .bind(row.source.as_str())
    .bind(row.channel_id)
    .bind(row.team_id)
    .bind(row.assigned_user_id)
    .bind(row.note.map(str::to_owned))
    .bind(row.created_at.unix())
    .bind(row.conversation_uuid.to_string())
    .bind(row.bot.map(|b| b.bot_id))
    .bind(row.bot.map(|b| b.status.as_str()))
    .bind(row.bot.map(|b| b.version))
    .bind(row.bot_started_at.map(Timestamp::unix))
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error)?;
    insert_tags(conn, id, tag_ids).await?;
    for (field_id, value) in values {
        upsert_value(conn, id, *field_id, value).await?;
    }
    Ok(id)
}

/// Rows per multi-row INSERT: far below SQLite's bound-parameter limit,
/// however many tags an account has.
const ROWS_PER_INSERT: usize = 200;

async fn insert_tags(
    conn: &mut AnyConnection,
    contact_id: i64,
    tag_ids: &[i64],
) -> StoreResult<()> {
    for (chunk_index, chunk) in tag_ids.chunks(ROWS_PER_INSERT).enumerate() {
        let mut sql =
            SqlBuilder::new("INSERT INTO contact_tags (contact_id, tag_id, position) VALUES ");
        for (i, tag_id) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let position = i64::try_from(chunk_index * ROWS_PER_INSERT + i).unwrap_or(i64::MAX);
            sql.push("(")
                .int(contact_id)
                .push(", ")
                .int(*tag_id)
                .push(", ")
                .int(position)
                .push(")");
        }
        sql.query().execute(&mut *conn).await.map_err(db_error)?;
    }
    Ok(())
}

async fn upsert_value(
    conn: &mut AnyConnection,
    contact_id: i64,
    field_id: i64,
    value: &CustomFieldValue,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO contact_field_values (contact_id, field_id, value) VALUES ($1, $2, $3)
         ON CONFLICT (contact_id, field_id) DO UPDATE SET value = excluded.value",
    )
    .bind(contact_id)
    .bind(field_id)
    .bind(value.as_str().to_owned())
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn insert_message(
    conn: &mut AnyConnection,
    contact_id: i64,
    message: &MessageRecord,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO messages (uuid, contact_id, kind, text, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(message.uuid.to_string())
        .bind(contact_id)
        .bind(message.kind.as_str())
        .bind(message.text.clone())
        .bind(message.created_at.unix())
        .execute(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

async fn record_event(
    conn: &mut AnyConnection,
    contact_id: i64,
    text: String,
    at: Timestamp,
) -> StoreResult<()> {
    let event = MessageRecord {
        uuid: PublicId::random(),
        kind: MessageKind::Event,
        text,
        created_at: at,
    };
    insert_message(conn, contact_id, &event).await
}

pub(super) fn message_from_row(row: &AnyRow) -> StoreResult<MessageRecord> {
    let kind = match row.text("kind")?.as_str() {
        "note" => MessageKind::Note,
        "event" => MessageKind::Event,
        _ => return Err(StoreError::other("messages.kind holds an unknown kind")),
    };
    Ok(MessageRecord {
        uuid: row.public_id("uuid")?,
        kind,
        text: row.text("text")?,
        created_at: row.time("created_at")?,
    })
}

/// Builds the contact of one joined row, without its tags and values.
fn contact_from_row(row: &AnyRow) -> StoreResult<ContactRecord> {
    let channel = Channel {
        id: row.int("ch_id")?,
        uuid: row.public_id("ch_uuid")?,
        title: row.text("ch_title")?,
        kind: row.source("ch_type")?,
        main: row.flag("ch_main")?,
        discarded_at: row.opt_time("ch_discarded_at")?,
        created_at: row.time("ch_created_at")?,
    };
    let team = match row.opt_int("team_id")? {
        Some(id) => Some(Team {
            id,
            uuid: row.public_id("team_uuid")?,
            name: row.text("team_name")?,
            is_default: row.flag("team_default")?,
            members: row.int("team_members")?,
            created_at: row.time("team_created_at")?,
        }),
        None => None,
    };
    let bot = match (row.opt_int("bot_row_id")?, row.opt_text("bot_status")?) {
        (Some(id), Some(status)) => Some(ContactBot {
            bot: Bot {
                id,
                uuid: row.public_id("bot_uuid")?,
                name: row.text("bot_name")?,
                enabled: row.flag("bot_enabled")?,
                version: row.int("bot_current_version")?,
                created_at: row.time("bot_created_at")?,
            },
            status: BotStatus::from_stored(&status)
                .ok_or_else(|| StoreError::other("contacts.bot_status holds an unknown status"))?,
            version: row.opt_int("bot_version")?.unwrap_or(1),
            conversation_started_at: row.opt_time("bot_started_at")?,
        }),
        _ => None,
    };
    Ok(ContactRecord {
        uuid: row.public_id("uuid")?,
        name: row.text("name")?,
        identifier: row.text("identifier")?,
        source: row.source("source")?,
        avatar_url: row.opt_text("avatar_url")?,
        blocked_at: row.opt_time("blocked_at")?,
        created_at: row.time("created_at")?,
        funnel: row.opt_funnel_id("funnel_uuid")?,
        closed_at: row.opt_time("closed_at")?,
        conversation_uuid: row.public_id("conversation_uuid")?,
        tags: Vec::new(),
        assigned_user: row.opt_text("user_email")?,
        custom_fields: Vec::new(),
        team,
        channel,
        bsuid: row.opt_text("bsuid")?,
        note: row.opt_text("note")?,
        bot,
    })
}

/// Turns joined contact rows into records, loading the tags and values of
/// all of them in two statements.
pub(super) async fn contacts_from_rows(
    conn: &mut AnyConnection,
    rows: &[AnyRow],
) -> StoreResult<Vec<ContactRecord>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids = rows
        .iter()
        .map(|r| r.int("id"))
        .collect::<StoreResult<Vec<i64>>>()?;
    let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
    let mut sql = SqlBuilder::new(
        "SELECT ct.contact_id, t.name FROM contact_tags ct JOIN tags t ON t.id = ct.tag_id
         WHERE ct.contact_id IN (",
    );
    sql.ints(&ids).push(") ORDER BY ct.contact_id, ct.position");
    for row in sql.query().fetch_all(&mut *conn).await.map_err(db_error)? {
        tags.entry(row.int("contact_id")?)
            .or_default()
            .push(row.text("name")?);
    }
    let mut values: HashMap<i64, Vec<ContactFieldValue>> = HashMap::new();
    let mut sql = SqlBuilder::new(
        "SELECT v.contact_id, v.value, f.id, f.name, f.type, f.options, f.created_at
         FROM contact_field_values v JOIN custom_fields f ON f.id = v.field_id
         WHERE v.contact_id IN (",
    );
    sql.ints(&ids).push(") ORDER BY v.contact_id, f.id");
    for row in sql.query().fetch_all(&mut *conn).await.map_err(db_error)? {
        let field = custom_field_from_row(&row)?;
        values
            .entry(row.int("contact_id")?)
            .or_default()
            .push(ContactFieldValue {
                name: field.name,
                kind: field.kind,
                options: field.options,
                value: CustomFieldValue::from_stored(row.text("value")?),
            });
    }
    rows.iter()
        .zip(&ids)
        .map(|(row, id)| {
            let mut contact = contact_from_row(row)?;
            contact.tags = tags.remove(id).unwrap_or_default();
            contact.custom_fields = values.remove(id).unwrap_or_default();
            Ok(contact)
        })
        .collect()
}

async fn read_contact(
    conn: &mut AnyConnection,
    account: AccountId,
    uuid: PublicId,
) -> StoreResult<ContactRecord> {
    let mut sql = SqlBuilder::new(CONTACT_SELECT);
    sql.push(" WHERE c.account_id = ")
        .int(account.0)
        .push(" AND c.uuid = ")
        .text(uuid.to_string());
    first_contact(conn, &sql).await
}

async fn first_contact(conn: &mut AnyConnection, sql: &SqlBuilder) -> StoreResult<ContactRecord> {
    let rows = sql.query().fetch_all(&mut *conn).await.map_err(db_error)?;
    let row = rows.into_iter().next().ok_or(StoreError::NotFound)?;
    contacts_from_rows(conn, std::slice::from_ref(&row))
        .await?
        .pop()
        .ok_or(StoreError::NotFound)
}

/// The state of a contact that changes are compared against, read with the
/// row locked for the rest of the transaction (the `UPDATE` takes the lock
/// on PostgreSQL; SQLite's write transaction already holds the database).
struct LockedContact {
    id: i64,
    team_id: Option<i64>,
    assigned_user_id: Option<i64>,
    closed_at: Option<Timestamp>,
    funnel_id: Option<i64>,
}

async fn lock_contact(
    conn: &mut AnyConnection,
    account: AccountId,
    uuid: PublicId,
    at: Timestamp,
) -> StoreResult<LockedContact> {
    let row = sqlx::query(
        "UPDATE contacts SET updated_at = $1 WHERE account_id = $2 AND uuid = $3
         RETURNING id, team_id, assigned_user_id, closed_at, funnel_id",
    )
    .bind(at.unix())
    .bind(account.0)
    .bind(uuid.to_string())
    .fetch_optional(conn)
    .await
    .map_err(db_error)?
    .ok_or(StoreError::NotFound)?;
    Ok(LockedContact {
        id: row.int("id")?,
        team_id: row.opt_int("team_id")?,
        assigned_user_id: row.opt_int("assigned_user_id")?,
        closed_at: row.opt_time("closed_at")?,
        funnel_id: row.opt_int("funnel_id")?,
    })
}

async fn name_of(conn: &mut AnyConnection, sql: &'static str, id: i64) -> StoreResult<String> {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(conn)
        .await
        .map_err(db_error)
}

/// Adds the filter of a listing to `sql` (which ends in a WHERE clause).
fn push_filter(sql: &mut SqlBuilder, filter: &ContactFilter, tag_ids: &[i64]) {
    if let Some(source) = filter.source {
        sql.push(" AND c.source = ").text(source.as_str());
    }
    if let Some(team) = filter.team {
        sql.push(" AND c.team_id IN (SELECT id FROM teams WHERE uuid = ")
            .text(team.to_string())
            .push(")");
    }
    if !tag_ids.is_empty() {
        sql.push(" AND c.id IN (SELECT contact_id FROM contact_tags WHERE tag_id IN (")
            .ints(tag_ids)
            .push(")");
        if filter.tags_mode == TagsMode::All {
            let wanted = i64::try_from(tag_ids.len()).unwrap_or(i64::MAX);
            sql.push(" GROUP BY contact_id HAVING count(*) = ")
                .int(wanted);
        }
        sql.push(")");
    }
    if let Some(q) = &filter.q {
        let pattern = format!("%{}%", escape_like(&fold_case(q)));
        sql.push(" AND (c.name_key LIKE ")
            .text(pattern)
            .push(" ESCAPE '\\'");
        if looks_like_phone_number(q) {
            let digits = format!("%{}%", digits_of(q));
            sql.push(" OR c.identifier_digits LIKE ").text(digits);
        }
        sql.push(")");
    }
}

fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `+39 333-12 34`, `(555) 123.4567`: digits with phone punctuation only.
fn looks_like_phone_number(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
}

#[async_trait]
impl ContactStore for SqlStore {
    async fn insert_contact(
        &self,
        account: AccountId,
        contact: &NewContact,
    ) -> StoreResult<ContactRecord> {
        let mut tx = self.begin_write().await?;
        // Whoever creates a contact in this account at the same time waits
        // here, then finds this one in the check below (a 409 naming it).
        let seq = next_contact_seq(tx.conn(), account).await?;
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT uuid FROM contacts WHERE channel_id = $1 AND identifier_key = $2",
        )
        .bind(contact.channel_id)
        .bind(contact.identifier.key.clone())
        .fetch_optional(tx.conn())
        .await
        .map_err(db_error)?;
        if let Some(uuid) = existing {
            let mut detail = FieldError::new(
                "identifier",
                "contact_exists",
                format!("contact {uuid} already has this identifier on this channel"),
            );
            detail.uuid = Some(uuid);
            return Err(StoreError::Conflict(
                Conflict::new(
                    "contact_exists",
                    format!(
                        "a contact with identifier '{}' already exists on this channel",
                        contact.identifier.raw
                    ),
                )
                .with_detail(detail),
            ));
        }
        insert_contact_row(
            tx.conn(),
            account,
            seq,
            &ContactRow {
                uuid: contact.uuid,
                conversation_uuid: contact.conversation_uuid,
                name: &contact.name,
                identifier: &contact.identifier,
                source: contact.source,
                channel_id: contact.channel_id,
                team_id: contact.team_id,
                assigned_user_id: contact.assigned_user_id,
                note: contact.note.as_deref(),
                created_at: contact.created_at,
                bot: contact.bot,
                bot_started_at: contact
                    .bot
                    .filter(|b| b.status == BotStatus::Started)
                    .map(|_| contact.created_at),
            },
            &contact.tag_ids,
            &contact.field_values,
        )
        .await?;
        let record = read_contact(tx.conn(), account, contact.uuid).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn update_contact(
        &self,
        account: AccountId,
        uuid: PublicId,
        changes: &ContactChanges,
        at: Timestamp,
    ) -> StoreResult<ContactRecord> {
        let mut tx = self.begin_write().await?;
        let conn = tx.conn();
        let current = lock_contact(conn, account, uuid, at).await?;
        if let Some(name) = &changes.name {
            sqlx::query("UPDATE contacts SET name = $1, name_key = $2 WHERE id = $3")
                .bind(name.clone())
                .bind(fold_case(name))
                .bind(current.id)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
        }
        if let Some(assigned) = changes.assigned_user_id
            && assigned != current.assigned_user_id
        {
            sqlx::query("UPDATE contacts SET assigned_user_id = $1 WHERE id = $2")
                .bind(assigned)
                .bind(current.id)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
            let text = match assigned {
                Some(user_id) => {
                    let name =
                        name_of(conn, "SELECT name FROM users WHERE id = $1", user_id).await?;
                    format!("Conversation was assigned to {name}")
                }
                None => "Conversation was unassigned".to_owned(),
            };
            record_event(conn, current.id, text, at).await?;
        }
        if let Some(team_id) = changes.team_id
            && Some(team_id) != current.team_id
        {
            sqlx::query("UPDATE contacts SET team_id = $1 WHERE id = $2")
                .bind(team_id)
                .bind(current.id)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
            let team = name_of(conn, "SELECT name FROM teams WHERE id = $1", team_id).await?;
            record_event(
                conn,
                current.id,
                format!("Conversation was moved to team {team}"),
                at,
            )
            .await?;
        }
        if let Some(note) = &changes.note {
            sqlx::query("UPDATE contacts SET note = $1 WHERE id = $2")
                .bind(note.clone())
                .bind(current.id)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
        }
        if let Some(bsuid) = &changes.bsuid {
            if let Some(bsuid) = bsuid {
                let holder: Option<String> = sqlx::query_scalar(
                    "SELECT uuid FROM contacts WHERE account_id = $1 AND bsuid = $2 AND id <> $3",
                )
                .bind(account.0)
                .bind(bsuid.clone())
                .bind(current.id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_error)?;
                if let Some(holder) = holder {
                    return Err(StoreError::conflict(
                        "bsuid_taken",
                        format!("contact {holder} already has bsuid '{bsuid}'"),
                    ));
                }
            }
            // Another contact given the same bsuid at the same time is only
            // seen by the unique index.
            sqlx::query("UPDATE contacts SET bsuid = $1 WHERE id = $2")
                .bind(bsuid.clone())
                .bind(current.id)
                .execute(&mut *conn)
                .await
                .map_err(unique_means(
                    "bsuid_taken",
                    format!(
                        "another contact already has bsuid '{}'",
                        bsuid.as_deref().unwrap_or_default()
                    ),
                ))?;
        }
        if let Some(bot) = changes.bot {
            let started_at = (bot.status == BotStatus::Started).then_some(at.unix());
            sqlx::query(
                "UPDATE contacts SET bot_id = $1, bot_status = $2, bot_version = $3,
                        bot_started_at = COALESCE($4, bot_started_at)
                 WHERE id = $5",
            )
            .bind(bot.bot_id)
            .bind(bot.status.as_str())
            .bind(bot.version)
            .bind(started_at)
            .bind(current.id)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        }
        if let Some(tag_ids) = &changes.tag_ids {
            sqlx::query("DELETE FROM contact_tags WHERE contact_id = $1")
                .bind(current.id)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
            insert_tags(conn, current.id, tag_ids).await?;
        }
        // One row per key: concurrent merges of different keys never touch
        // each other's rows.
        for (field_id, value) in &changes.field_values {
            match value {
                Some(value) => upsert_value(conn, current.id, *field_id, value).await?,
                None => {
                    sqlx::query(
                        "DELETE FROM contact_field_values WHERE contact_id = $1 AND field_id = $2",
                    )
                    .bind(current.id)
                    .bind(*field_id)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_error)?;
                }
            }
        }
        let record = read_contact(conn, account, uuid).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn contact(&self, account: AccountId, uuid: PublicId) -> StoreResult<ContactRecord> {
        let mut tx = self.begin_read().await?;
        let record = read_contact(&mut tx, account, uuid).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(record)
    }

    async fn contact_by_phone(
        &self,
        account: AccountId,
        channel_id: i64,
        digits: &str,
    ) -> StoreResult<ContactRecord> {
        let mut sql = SqlBuilder::new(CONTACT_SELECT);
        sql.push(" WHERE c.account_id = ")
            .int(account.0)
            .push(" AND c.channel_id = ")
            .int(channel_id)
            .push(" AND c.identifier_digits = ")
            .text(digits)
            .push(" ORDER BY c.created_at, c.seq LIMIT 1");
        let mut tx = self.begin_read().await?;
        let record = first_contact(&mut tx, &sql).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(record)
    }

    async fn contact_by_bsuid(
        &self,
        account: AccountId,
        bsuid: &str,
    ) -> StoreResult<ContactRecord> {
        let mut sql = SqlBuilder::new(CONTACT_SELECT);
        sql.push(" WHERE c.account_id = ")
            .int(account.0)
            .push(" AND c.bsuid = ")
            .text(bsuid);
        let mut tx = self.begin_read().await?;
        let record = first_contact(&mut tx, &sql).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(record)
    }

    async fn list_contacts(
        &self,
        account: AccountId,
        filter: &ContactFilter,
        start: PageStart,
        page_size: u32,
    ) -> StoreResult<ContactPage> {
        let mut tx = self.begin_read().await?;
        let watermark = match start {
            PageStart::After { watermark, .. } => watermark,
            PageStart::Number(_) => {
                sqlx::query_scalar("SELECT contact_seq FROM accounts WHERE id = $1")
                    .bind(account.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .unwrap_or(0)
            }
        };
        let empty = ContactPage {
            contacts: Vec::new(),
            total: 0,
            watermark,
            next: None,
        };

        let mut tag_ids = Vec::new();
        if !filter.tags.is_empty() {
            let mut wanted: Vec<String> = filter.tags.iter().map(|t| fold_case(t)).collect();
            wanted.sort();
            wanted.dedup();
            let mut sql = SqlBuilder::new("SELECT id FROM tags WHERE account_id = ");
            sql.int(account.0)
                .push(" AND name_key IN (")
                .texts(&wanted)
                .push(")");
            for row in sql.query().fetch_all(&mut *tx).await.map_err(db_error)? {
                tag_ids.push(row.int("id")?);
            }
            // An unknown tag matches nothing (SPEC §4).
            let unmatched = match filter.tags_mode {
                TagsMode::All => tag_ids.len() < wanted.len(),
                TagsMode::Any => tag_ids.is_empty(),
            };
            if unmatched {
                return Ok(empty);
            }
        }

        let scope = |sql: &mut SqlBuilder| {
            sql.push(" WHERE c.account_id = ")
                .int(account.0)
                .push(" AND c.seq <= ")
                .int(watermark);
            push_filter(sql, filter, &tag_ids);
        };
        let mut count = SqlBuilder::new("SELECT count(*) AS total FROM contacts c");
        scope(&mut count);
        let total = count
            .query()
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?
            .int("total")?;

        let mut page = SqlBuilder::new(CONTACT_SELECT);
        scope(&mut page);
        if let PageStart::After { position, .. } = start {
            let t = position.created_at.unix();
            page.push(" AND (c.created_at < ")
                .int(t)
                .push(" OR (c.created_at = ")
                .int(t)
                .push(" AND c.seq < ")
                .int(position.seq)
                .push("))");
        }
        page.push(" ORDER BY c.created_at DESC, c.seq DESC LIMIT ")
            .int(i64::from(page_size) + 1);
        if let PageStart::Number(number) = start {
            let offset = i64::from(number.saturating_sub(1)) * i64::from(page_size);
            page.push(" OFFSET ").int(offset);
        }
        let mut rows = page.query().fetch_all(&mut *tx).await.map_err(db_error)?;
        let has_more = rows.len() > page_size as usize;
        rows.truncate(page_size as usize);
        let next = match rows.last() {
            Some(last) if has_more => Some(ContactPosition {
                created_at: last.time("created_at")?,
                seq: last.int("seq")?,
            }),
            _ => None,
        };
        let contacts = contacts_from_rows(&mut tx, &rows).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(ContactPage {
            contacts,
            total,
            watermark,
            next,
        })
    }

    async fn delete_contact(&self, account: AccountId, uuid: PublicId) -> StoreResult<()> {
        // Tags, values and messages go with it (ON DELETE CASCADE).
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM contacts WHERE account_id = $1 AND uuid = $2")
            .bind(account.0)
            .bind(uuid.to_string())
            .execute(tx.conn())
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await
    }

    async fn close_conversation(
        &self,
        account: AccountId,
        uuid: PublicId,
        at: Timestamp,
    ) -> StoreResult<ContactRecord> {
        let mut tx = self.begin_write().await?;
        let conn = tx.conn();
        let current = lock_contact(conn, account, uuid, at).await?;
        if current.closed_at.is_none() {
            sqlx::query("UPDATE contacts SET closed_at = $1 WHERE id = $2")
                .bind(at.unix())
                .bind(current.id)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
            record_event(conn, current.id, "Conversation was closed".to_owned(), at).await?;
        }
        let record = read_contact(conn, account, uuid).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn open_conversation(
        &self,
        account: AccountId,
        uuid: PublicId,
        at: Timestamp,
    ) -> StoreResult<ContactRecord> {
        let mut tx = self.begin_write().await?;
        let conn = tx.conn();
        let current = lock_contact(conn, account, uuid, at).await?;
        if current.closed_at.is_some() {
            sqlx::query("UPDATE contacts SET closed_at = NULL WHERE id = $1")
                .bind(current.id)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
            record_event(conn, current.id, "Conversation was reopened".to_owned(), at).await?;
        }
        let record = read_contact(conn, account, uuid).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn set_funnel(
        &self,
        account: AccountId,
        uuid: PublicId,
        funnel_id: Option<i64>,
        at: Timestamp,
    ) -> StoreResult<ContactRecord> {
        let mut tx = self.begin_write().await?;
        let conn = tx.conn();
        let current = lock_contact(conn, account, uuid, at).await?;
        if current.funnel_id != funnel_id {
            sqlx::query("UPDATE contacts SET funnel_id = $1 WHERE id = $2")
                .bind(funnel_id)
                .bind(current.id)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
            let text = match funnel_id {
                Some(id) => {
                    let name = name_of(conn, "SELECT name FROM funnels WHERE id = $1", id).await?;
                    format!("Conversation was moved to funnel {name}")
                }
                None => "Conversation was removed from its funnel".to_owned(),
            };
            record_event(conn, current.id, text, at).await?;
        }
        let record = read_contact(conn, account, uuid).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn add_note(
        &self,
        account: AccountId,
        uuid: PublicId,
        text: &str,
        at: Timestamp,
    ) -> StoreResult<MessageRecord> {
        let mut tx = self.begin_write().await?;
        let current = lock_contact(tx.conn(), account, uuid, at).await?;
        let note = MessageRecord {
            uuid: PublicId::random(),
            kind: MessageKind::Note,
            text: text.to_owned(),
            created_at: at,
        };
        insert_message(tx.conn(), current.id, &note).await?;
        tx.commit().await?;
        Ok(note)
    }

    async fn list_messages(
        &self,
        account: AccountId,
        uuid: PublicId,
        page: u32,
        page_size: u32,
    ) -> StoreResult<MessagePage> {
        let mut tx = self.begin_read().await?;
        let contact = read_contact(&mut tx, account, uuid).await?;
        let contact_id: i64 =
            sqlx::query_scalar("SELECT id FROM contacts WHERE account_id = $1 AND uuid = $2")
                .bind(account.0)
                .bind(uuid.to_string())
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE contact_id = $1")
            .bind(contact_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let offset = i64::from(page.saturating_sub(1)) * i64::from(page_size);
        let rows = sqlx::query(
            "SELECT uuid, kind, text, created_at FROM messages WHERE contact_id = $1
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
        )
        .bind(contact_id)
        .bind(i64::from(page_size))
        .bind(offset)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let messages = rows
            .iter()
            .map(message_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        tx.commit().await.map_err(db_error)?;
        Ok(MessagePage {
            contact,
            messages,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }

    #[test]
    fn phone_numbers_are_told_from_names() {
        assert!(looks_like_phone_number("+39 333-12 34"));
        assert!(looks_like_phone_number("(555) 123.4567"));
        assert!(!looks_like_phone_number("Agent 007"));
        assert!(!looks_like_phone_number("+ -"));
    }
}
