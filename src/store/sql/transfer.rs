//! Whole accounts in and out of a database: what `--demo` loads and what
//! `bellbook copy` moves from one database to another. References between
//! objects travel as public ids and names and are resolved on arrival.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::admin::{insert_key_row, list_keys};
use super::contacts::{
    CONTACT_SELECT, ContactRow, contacts_from_rows, insert_contact_row, insert_message,
    message_from_row, next_contact_seq,
};
use super::settings::{
    insert_bot_row, insert_channel_row, insert_custom_field_row, insert_funnel_row, insert_tag_row,
    insert_team_row, insert_user_row, read_settings,
};
use super::{RowExt, SqlBuilder, db_error};
use crate::domain::contact::{BotAssignment, ContactRecord};
use crate::domain::settings::AccountSettings;
use crate::domain::{FunnelId, Identifier, PublicId, Timestamp, fold_case};
use crate::store::snapshot::{AccountSnapshot, ContactSnapshot, TeamSnapshot};
use crate::store::{AccountId, MessageRecord, NewApiKey, StoreError, StoreResult};

/// Writes an account with its keys and settings; returns its row id.
pub(super) async fn import_settings(
    conn: &mut AnyConnection,
    snapshot: &AccountSnapshot,
) -> StoreResult<AccountId> {
    // A kept id is written as is (and `finish_import` moves PostgreSQL's
    // sequence past it); otherwise the database numbers the account.
    let insert = match snapshot.id {
        Some(_) => {
            "INSERT INTO accounts (id, uuid, name, created_at, contact_seq)
             VALUES ($1, $2, $3, $4, $5) RETURNING id"
        }
        None => {
            "INSERT INTO accounts (uuid, name, created_at, contact_seq)
             VALUES ($1, $2, $3, $4) RETURNING id"
        }
    };
    let mut query = sqlx::query_scalar(insert);
    if let Some(id) = snapshot.id {
        query = query.bind(id.0);
    }
    let account = AccountId(
        query
            .bind(snapshot.uuid.to_string())
            .bind(snapshot.name.clone())
            .bind(snapshot.created_at.unix())
            .bind(snapshot.contact_seq)
            .fetch_one(&mut *conn)
            .await
            .map_err(db_error)?,
    );
    for key in &snapshot.api_keys {
        let new_key = NewApiKey {
            uuid: key.uuid,
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            secret_hash: key.secret_hash.clone(),
            created_at: key.created_at,
        };
        insert_key_row(conn, account, &new_key).await?;
        if let Some(revoked_at) = key.revoked_at {
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE uuid = $2")
                .bind(revoked_at.unix())
                .bind(key.uuid.to_string())
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
        }
    }
    let mut users = HashMap::new();
    for user in &snapshot.users {
        let id = insert_user_row(
            conn,
            account,
            user.uuid,
            &user.email,
            &user.name,
            user.owner,
            user.created_at,
        )
        .await?;
        users.insert(user.uuid, id);
    }
    for TeamSnapshot { team, members } in &snapshot.teams {
        let team_id = insert_team_row(
            conn,
            account,
            team.uuid,
            &team.name,
            team.is_default,
            team.created_at,
        )
        .await?;
        for member in members {
            let user_id = users.get(member).ok_or_else(|| {
                StoreError::other(format!("team {} lists unknown member {member}", team.uuid))
            })?;
            sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)")
                .bind(team_id)
                .bind(*user_id)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
        }
    }
    for c in &snapshot.channels {
        insert_channel_row(
            conn,
            account,
            c.uuid,
            &c.title,
            c.kind,
            c.main,
            c.discarded_at,
            c.created_at,
        )
        .await?;
    }
    for b in &snapshot.bots {
        insert_bot_row(
            conn,
            account,
            b.uuid,
            &b.name,
            b.enabled,
            b.version,
            b.created_at,
        )
        .await?;
    }
    for f in &snapshot.funnels {
        insert_funnel_row(
            conn,
            account,
            f.uuid,
            &f.name,
            f.emoji.as_deref(),
            f.position,
            f.created_at,
        )
        .await?;
    }
    for tag in &snapshot.tags {
        insert_tag_row(conn, account, &tag.name, tag.created_at).await?;
    }
    for field in &snapshot.custom_fields {
        insert_custom_field_row(
            conn,
            account,
            &field.name,
            field.kind,
            &field.options,
            field.created_at,
        )
        .await?;
    }
    Ok(account)
}

/// Row ids of an account's settings, by the references contacts carry:
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

impl From<&AccountSettings> for SettingIds {
    fn from(settings: &AccountSettings) -> Self {
        SettingIds {
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
        }
    }
}

/// Adds contacts to an account whose settings are already in place.
pub(super) async fn import_contacts(
    conn: &mut AnyConnection,
    account: AccountId,
    contacts: &[ContactSnapshot],
) -> StoreResult<()> {
    if contacts.is_empty() {
        return Ok(());
    }
    let ids = SettingIds::from(&read_settings(conn, account).await?);
    for contact in contacts {
        import_contact(conn, account, &ids, contact).await?;
    }
    Ok(())
}

async fn import_contact(
    conn: &mut AnyConnection,
    account: AccountId,
    ids: &SettingIds,
    snapshot: &ContactSnapshot,
) -> StoreResult<()> {
    let contact: &ContactRecord = &snapshot.contact;
    let missing = |what: &str| {
        StoreError::other(format!(
            "contact {} refers to an unknown {what}",
            contact.uuid
        ))
    };
    let channel_id = *ids
        .channels
        .get(&contact.channel.uuid)
        .ok_or_else(|| missing("channel"))?;
    let team_id = contact
        .team
        .as_ref()
        .map(|team| {
            ids.teams
                .get(&team.uuid)
                .copied()
                .ok_or_else(|| missing("team"))
        })
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
    let bot = contact
        .bot
        .as_ref()
        .map(|b| {
            let bot_id = ids
                .bots
                .get(&b.bot.uuid)
                .copied()
                .ok_or_else(|| missing("bot"))?;
            Ok(BotAssignment {
                bot_id,
                status: b.status,
                version: b.version,
            })
        })
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
            Ok((id, v.value.clone()))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let seq = match snapshot.seq {
        Some(seq) => seq,
        None => next_contact_seq(conn, account).await?,
    };
    let row = ContactRow {
        uuid: contact.uuid,
        conversation_uuid: contact.conversation_uuid,
        name: &contact.name,
        identifier: &identifier,
        source: contact.source,
        channel_id,
        team_id,
        assigned_user_id,
        note: contact.note.as_deref(),
        created_at: contact.created_at,
        bot,
        bot_started_at: contact.bot.as_ref().and_then(|b| b.conversation_started_at),
    };
    let contact_id = insert_contact_row(conn, account, seq, &row, &tag_ids, &values).await?;
    sqlx::query(
        "UPDATE contacts SET avatar_url = $1, blocked_at = $2, bsuid = $3, closed_at = $4,
                funnel_id = $5, updated_at = $6
         WHERE id = $7",
    )
    .bind(contact.avatar_url.clone())
    .bind(contact.blocked_at.map(Timestamp::unix))
    .bind(contact.bsuid.clone())
    .bind(contact.closed_at.map(Timestamp::unix))
    .bind(funnel_id)
    .bind(snapshot.updated_at.unix())
    .bind(contact_id)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    for message in &snapshot.messages {
        insert_message(conn, contact_id, message).await?;
    }
    Ok(())
}

/// An account with its keys and settings, contacts left out.
pub(super) async fn export_settings(
    conn: &mut AnyConnection,
    account: AccountId,
) -> StoreResult<AccountSnapshot> {
    let row =
        sqlx::query("SELECT id, uuid, name, created_at, contact_seq FROM accounts WHERE id = $1")
            .bind(account.0)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?
            .ok_or(StoreError::NotFound)?;
    let settings = read_settings(conn, account).await?;
    let mut members: HashMap<i64, Vec<PublicId>> = HashMap::new();
    let rows = sqlx::query(
        "SELECT m.team_id, u.uuid FROM team_members m JOIN users u ON u.id = m.user_id
         WHERE u.account_id = $1 ORDER BY m.team_id, u.id",
    )
    .bind(account.0)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    for member in rows {
        members
            .entry(member.int("team_id")?)
            .or_default()
            .push(member.public_id("uuid")?);
    }
    Ok(AccountSnapshot {
        id: Some(AccountId(row.int("id")?)),
        uuid: row.public_id("uuid")?,
        name: row.text("name")?,
        created_at: row.time("created_at")?,
        contact_seq: row.int("contact_seq")?,
        api_keys: list_keys(conn, account).await?,
        teams: settings
            .teams
            .iter()
            .map(|team| TeamSnapshot {
                team: team.clone(),
                members: members.remove(&team.id).unwrap_or_default(),
            })
            .collect(),
        users: settings.users,
        channels: settings.channels,
        bots: settings.bots,
        funnels: settings.funnels,
        tags: settings.tags,
        custom_fields: settings.custom_fields,
        contacts: Vec::new(),
    })
}

/// Contacts in creation order after `after_seq`, with their messages.
pub(super) async fn export_contacts(
    conn: &mut AnyConnection,
    account: AccountId,
    after_seq: i64,
    limit: u32,
) -> StoreResult<Vec<ContactSnapshot>> {
    let mut sql = SqlBuilder::new(CONTACT_SELECT);
    sql.push(" WHERE c.account_id = ")
        .int(account.0)
        .push(" AND c.seq > ")
        .int(after_seq)
        .push(" ORDER BY c.seq LIMIT ")
        .int(i64::from(limit));
    let rows = sql.query().fetch_all(&mut *conn).await.map_err(db_error)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids = rows
        .iter()
        .map(|r| r.int("id"))
        .collect::<StoreResult<Vec<i64>>>()?;
    let mut messages: HashMap<i64, Vec<MessageRecord>> = HashMap::new();
    let mut sql = SqlBuilder::new(
        "SELECT contact_id, uuid, kind, text, created_at FROM messages WHERE contact_id IN (",
    );
    sql.ints(&ids).push(") ORDER BY contact_id, id");
    for row in sql.query().fetch_all(&mut *conn).await.map_err(db_error)? {
        messages
            .entry(row.int("contact_id")?)
            .or_default()
            .push(message_from_row(&row)?);
    }
    let contacts = contacts_from_rows(conn, &rows).await?;
    rows.iter()
        .zip(ids)
        .zip(contacts)
        .map(|((row, id), contact)| {
            Ok(ContactSnapshot {
                seq: Some(row.int("seq")?),
                contact,
                updated_at: row.time("updated_at")?,
                messages: messages.remove(&id).unwrap_or_default(),
            })
        })
        .collect()
}
