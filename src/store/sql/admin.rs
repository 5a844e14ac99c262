//! Accounts, API keys, shared secrets and whole-account imports.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::contacts::{insert_contact_row, insert_message, next_contact_seq};
use super::settings::{insert_channel_row, insert_team_row, insert_user_row};
use super::{RowExt, SqlStore, db_error, flag};
use crate::domain::contact::ContactRecord;
use crate::domain::{PublicId, Source, Timestamp, fold_case};
use crate::store::snapshot::AccountSnapshot;
use crate::store::{
    AccountId, AccountRecord, AdminStore, ApiKeyRecord, NewAccount, NewApiKey, StoreError,
    StoreResult,
};

const ACCOUNT_COLUMNS: &str = "id, uuid, name, created_at";
const KEY_COLUMNS: &str = "uuid, account_id, name, prefix, secret_hash, created_at, revoked_at";

fn account_from_row(row: &AnyRow) -> StoreResult<AccountRecord> {
    Ok(AccountRecord {
        id: AccountId(row.int("id")?),
        uuid: row.public_id("uuid")?,
        name: row.text("name")?,
        created_at: row.time("created_at")?,
    })
}

fn key_from_row(row: &AnyRow) -> StoreResult<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        uuid: row.public_id("uuid")?,
        account_id: AccountId(row.int("account_id")?),
        name: row.text("name")?,
        prefix: row.text("prefix")?,
        secret_hash: row.text("secret_hash")?,
        created_at: row.time("created_at")?,
        revoked_at: row.opt_time("revoked_at")?,
    })
}

async fn insert_account_row(
    conn: &mut AnyConnection,
    uuid: PublicId,
    name: &str,
    created_at: Timestamp,
) -> StoreResult<AccountRecord> {
    let row = sqlx::query(
        "INSERT INTO accounts (uuid, name, created_at) VALUES ($1, $2, $3)
         RETURNING id, uuid, name, created_at",
    )
    .bind(uuid.to_string())
    .bind(name.to_owned())
    .bind(created_at.unix())
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error)?;
    account_from_row(&row)
}

async fn insert_key_row(
    conn: &mut AnyConnection,
    account: AccountId,
    key: &NewApiKey,
) -> StoreResult<ApiKeyRecord> {
    let row = sqlx::query(
        "INSERT INTO api_keys (uuid, account_id, name, prefix, secret_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING uuid, account_id, name, prefix, secret_hash, created_at, revoked_at",
    )
    .bind(key.uuid.to_string())
    .bind(account.0)
    .bind(key.name.clone())
    .bind(key.prefix.clone())
    .bind(key.secret_hash.clone())
    .bind(key.created_at.unix())
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error)?;
    key_from_row(&row)
}

#[async_trait]
impl AdminStore for SqlStore {
    async fn count_accounts(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT count(*) FROM accounts")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn create_account(&self, account: &NewAccount) -> StoreResult<AccountRecord> {
        let mut tx = self.begin_write().await?;
        let conn = tx.conn();
        let record =
            insert_account_row(conn, account.uuid, &account.name, account.created_at).await?;
        let owner_id = insert_user_row(
            conn,
            record.id,
            PublicId::random(),
            &account.owner_email,
            &account.owner_name,
            true,
            account.created_at,
        )
        .await?;
        insert_channel_row(
            conn,
            record.id,
            PublicId::random(),
            "WhatsApp",
            Source::Whatsapp,
            true,
            None,
            account.created_at,
        )
        .await?;
        let team_id = insert_team_row(
            conn,
            record.id,
            PublicId::random(),
            "General",
            true,
            account.created_at,
        )
        .await?;
        sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)")
            .bind(team_id)
            .bind(owner_id)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        insert_key_row(conn, record.id, &account.key).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn list_accounts(&self) -> StoreResult<Vec<AccountRecord>> {
        let rows = sqlx::query("SELECT id, uuid, name, created_at FROM accounts ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(account_from_row).collect()
    }

    async fn find_account(&self, uuid_or_name: &str) -> StoreResult<AccountRecord> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE uuid = $1 OR name = $1 ORDER BY id"
        )))
        .bind(uuid_or_name.to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let accounts = rows
            .iter()
            .map(account_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        if let Some(by_uuid) = accounts.iter().find(|a| a.uuid.to_string() == uuid_or_name) {
            return Ok(by_uuid.clone());
        }
        match accounts.as_slice() {
            [] => Err(StoreError::NotFound),
            [only] => Ok(only.clone()),
            _ => Err(StoreError::conflict(
                "ambiguous_account",
                format!("several accounts are named '{uuid_or_name}'; use the account uuid"),
            )),
        }
    }

    async fn add_api_key(&self, account: AccountId, key: &NewApiKey) -> StoreResult<ApiKeyRecord> {
        let mut tx = self.begin_write().await?;
        let record = insert_key_row(tx.conn(), account, key).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn list_api_keys(&self, account: AccountId) -> StoreResult<Vec<ApiKeyRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE account_id = $1 ORDER BY id"
        )))
        .bind(account.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_api_key(
        &self,
        account: AccountId,
        uuid_or_prefix: &str,
        at: Timestamp,
    ) -> StoreResult<ApiKeyRecord> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1)
             WHERE account_id = $2 AND (uuid = $3 OR prefix = $3)
             RETURNING uuid, account_id, name, prefix, secret_hash, created_at, revoked_at",
        )
        .bind(at.unix())
        .bind(account.0)
        .bind(uuid_or_prefix.to_owned())
        .fetch_all(tx.conn())
        .await
        .map_err(db_error)?;
        match rows.as_slice() {
            [] => Err(StoreError::NotFound),
            [row] => {
                let key = key_from_row(row)?;
                tx.commit().await?;
                Ok(key)
            }
            // Dropping the transaction undoes the revocation of all of them.
            _ => Err(StoreError::conflict(
                "ambiguous_key",
                format!("several keys match '{uuid_or_prefix}'; use the key uuid"),
            )),
        }
    }

    async fn api_keys_with_prefix(&self, prefix: &str) -> StoreResult<Vec<ApiKeyRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE prefix = $1"
        )))
        .bind(prefix.to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn shared_secret(&self, name: &str, fresh: String) -> StoreResult<String> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name.to_owned())
            .bind(fresh)
            .execute(tx.conn())
            .await
            .map_err(db_error)?;
        let value = sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name.to_owned())
            .fetch_one(tx.conn())
            .await
            .map_err(db_error)?;
        tx.commit().await?;
        Ok(value)
    }

    async fn import_account(&self, snapshot: &AccountSnapshot) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let exists: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts WHERE uuid = $1")
            .bind(snapshot.uuid.to_string())
            .fetch_one(tx.conn())
            .await
            .map_err(db_error)?;
        if exists > 0 {
            return Ok(false);
        }
        import_settings(tx.conn(), snapshot).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// Row ids of an imported account's settings, by the references contacts
/// use: uuids for users, teams, channels, bots, funnels; folded names for
/// tags, custom fields and e-mails.
#[derive(Default)]
struct ImportedIds {
    users_by_email: HashMap<String, i64>,
    teams: HashMap<PublicId, i64>,
    channels: HashMap<PublicId, i64>,
    bots: HashMap<PublicId, i64>,
    funnels: HashMap<String, i64>,
    tags: HashMap<String, i64>,
    fields: HashMap<String, i64>,
}

async fn import_settings(conn: &mut AnyConnection, snapshot: &AccountSnapshot) -> StoreResult<()> {
    let account =
        insert_account_row(conn, snapshot.uuid, &snapshot.name, snapshot.created_at).await?;
    let mut ids = ImportedIds::default();
    for key in &snapshot.api_keys {
        let new_key = NewApiKey {
            uuid: key.uuid,
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            secret_hash: key.secret_hash.clone(),
            created_at: key.created_at,
        };
        insert_key_row(conn, account.id, &new_key).await?;
        if let Some(revoked_at) = key.revoked_at {
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE uuid = $2")
                .bind(revoked_at.unix())
                .bind(key.uuid.to_string())
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
        }
    }
    let mut users_by_uuid = HashMap::new();
    for user in &snapshot.users {
        let id = insert_user_row(
            conn,
            account.id,
            user.uuid,
            &user.email,
            &user.name,
            user.owner,
            user.created_at,
        )
        .await?;
        ids.users_by_email.insert(fold_case(&user.email), id);
        users_by_uuid.insert(user.uuid, id);
    }
    for team in &snapshot.teams {
        let t = &team.team;
        let id = insert_team_row(
            conn,
            account.id,
            t.uuid,
            &t.name,
            t.is_default,
            t.created_at,
        )
        .await?;
        for member in &team.members {
            let user_id = users_by_uuid.get(member).ok_or_else(|| {
                StoreError::other(format!("team {} lists unknown member {member}", t.uuid))
            })?;
            sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)")
                .bind(id)
                .bind(*user_id)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
        }
        ids.teams.insert(t.uuid, id);
    }
    for c in &snapshot.channels {
        let id = insert_channel_row(
            conn,
            account.id,
            c.uuid,
            &c.title,
            c.kind,
            c.main,
            c.discarded_at,
            c.created_at,
        )
        .await?;
        ids.channels.insert(c.uuid, id);
    }
    for b in &snapshot.bots {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO bots (uuid, account_id, name, enabled, version, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(b.uuid.to_string())
        .bind(account.id.0)
        .bind(b.name.clone())
        .bind(flag(b.enabled))
        .bind(b.version)
        .bind(b.created_at.unix())
        .fetch_one(&mut *conn)
        .await
        .map_err(db_error)?;
        ids.bots.insert(b.uuid, id);
    }
    for f in &snapshot.funnels {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO funnels (uuid, account_id, name, emoji, position, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(f.uuid.to_string())
        .bind(account.id.0)
        .bind(f.name.clone())
        .bind(f.emoji.clone())
        .bind(f.position)
        .bind(f.created_at.unix())
        .fetch_one(&mut *conn)
        .await
        .map_err(db_error)?;
        ids.funnels.insert(f.uuid.to_string(), id);
    }
    for tag in &snapshot.tags {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tags (account_id, name, name_key, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(account.id.0)
        .bind(tag.name.clone())
        .bind(fold_case(&tag.name))
        .bind(tag.created_at.unix())
        .fetch_one(&mut *conn)
        .await
        .map_err(db_error)?;
        ids.tags.insert(fold_case(&tag.name), id);
    }
    for field in &snapshot.custom_fields {
        let id = super::settings::insert_custom_field_row(
            conn,
            account.id,
            &field.name,
            field.kind,
            &field.options,
            field.created_at,
        )
        .await?;
        ids.fields.insert(fold_case(&field.name), id);
    }
    for contact in &snapshot.contacts {
        import_contact(
            conn,
            account.id,
            &ids,
            &contact.contact,
            contact.updated_at,
            &contact.messages,
        )
        .await?;
    }
    Ok(())
}

/// Resolves a contact's references against the imported settings and
/// inserts it with its tags, values and messages.
async fn import_contact(
    conn: &mut AnyConnection,
    account: AccountId,
    ids: &ImportedIds,
    contact: &ContactRecord,
    updated_at: Timestamp,
    messages: &[crate::store::MessageRecord],
) -> StoreResult<()> {
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
    let team_id = match &contact.team {
        Some(team) => Some(*ids.teams.get(&team.uuid).ok_or_else(|| missing("team"))?),
        None => None,
    };
    let user_id = match &contact.assigned_user {
        Some(email) => Some(
            *ids.users_by_email
                .get(&fold_case(email))
                .ok_or_else(|| missing("user"))?,
        ),
        None => None,
    };
    let funnel_id = match &contact.funnel {
        Some(funnel) => Some(
            *ids.funnels
                .get(&funnel.to_string())
                .ok_or_else(|| missing("funnel"))?,
        ),
        None => None,
    };
    let bot = match &contact.bot {
        Some(bot) => Some((
            *ids.bots.get(&bot.bot.uuid).ok_or_else(|| missing("bot"))?,
            bot,
        )),
        None => None,
    };
    let identifier = crate::domain::Identifier::parse(&contact.identifier, contact.source)
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

    let seq = next_contact_seq(conn, account).await?;
    let contact_id = insert_contact_row(
        conn,
        account,
        seq,
        &super::contacts::ContactRow {
            uuid: contact.uuid,
            conversation_uuid: contact.conversation_uuid,
            name: &contact.name,
            identifier: &identifier,
            source: contact.source,
            channel_id,
            team_id,
            assigned_user_id: user_id,
            note: contact.note.as_deref(),
            created_at: contact.created_at,
            bot: bot.map(|(id, b)| crate::domain::contact::BotAssignment {
                bot_id: id,
                status: b.status,
                version: b.version,
            }),
            bot_started_at: bot.and_then(|(_, b)| b.conversation_started_at),
        },
        &tag_ids,
        &values,
    )
    .await?;
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
    .bind(updated_at.unix())
    .bind(contact_id)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    for message in messages {
        insert_message(conn, contact_id, message).await?;
    }
    Ok(())
}
