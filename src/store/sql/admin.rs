//! Accounts, API keys, shared secrets and whole-account imports.

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::settings::{insert_channel_row, insert_team_row, insert_user_row};
use super::{Backend, RowExt, SqlStore, db_error, transfer};
use crate::domain::{PublicId, Source, Timestamp};
use crate::store::snapshot::{AccountSnapshot, ContactSnapshot};
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

pub(super) async fn insert_key_row(
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

pub(super) async fn list_keys(
    conn: &mut AnyConnection,
    account: AccountId,
) -> StoreResult<Vec<ApiKeyRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE account_id = $1 ORDER BY id"
    )))
    .bind(account.0)
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter().map(key_from_row).collect()
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
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        list_keys(&mut conn, account).await
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
        let account = transfer::import_settings(tx.conn(), snapshot).await?;
        transfer::import_contacts(tx.conn(), account, &snapshot.contacts).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn import_contacts(
        &self,
        account: AccountId,
        contacts: &[ContactSnapshot],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        transfer::import_contacts(tx.conn(), account, contacts).await?;
        tx.commit().await
    }

    async fn export_account(&self, account: AccountId) -> StoreResult<AccountSnapshot> {
        let mut tx = self.begin_read().await?;
        let snapshot = transfer::export_settings(&mut tx, account).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(snapshot)
    }

    async fn export_contacts(
        &self,
        account: AccountId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<ContactSnapshot>> {
        let mut tx = self.begin_read().await?;
        let contacts = transfer::export_contacts(&mut tx, account, after_seq, limit).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(contacts)
    }

    async fn shared_secrets(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT name, value FROM server_secrets ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|r| Ok((r.text("name")?, r.text("value")?)))
            .collect()
    }

    async fn replace_shared_secrets(&self, secrets: &[(String, String)]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for (name, value) in secrets {
            sqlx::query(
                "INSERT INTO server_secrets (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )
            .bind(name.clone())
            .bind(value.clone())
            .execute(tx.conn())
            .await
            .map_err(db_error)?;
        }
        tx.commit().await
    }

    async fn finish_import(&self) -> StoreResult<()> {
        // Accounts keep their ids when copied; PostgreSQL's identity
        // sequence must then move past them (SQLite's rowid already does).
        if self.backend == Backend::Postgres {
            sqlx::query(
                "SELECT setval(pg_get_serial_sequence('accounts', 'id'),
                               GREATEST((SELECT max(id) FROM accounts), 1))",
            )
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        }
        Ok(())
    }
}
