//! Accounts, API keys, shared secrets and whole-account imports.

use async_trait::async_trait;
use const_format::concatcp;

use super::db::{Db, params, row_struct};
use super::settings::{channels, teams, users};
use super::{SqlStore, transfer};
use crate::domain::settings::{Channel, User};
use crate::domain::{PublicId, Timestamp};
use crate::store::snapshot::AccountSnapshot;
use crate::store::{
    AccountId, AccountRecord, AdminStore, ApiKeyRecord, NewAccount, NewApiKey, StoreError,
    StoreResult,
};

row_struct! {
    struct AccountRow { id: i64, uuid: PublicId, name: String, created_at: Timestamp }
}

impl From<AccountRow> for AccountRecord {
    fn from(row: AccountRow) -> Self {
        AccountRecord {
            id: AccountId(row.id),
            uuid: row.uuid,
            name: row.name,
            created_at: row.created_at,
        }
    }
}

row_struct! {
    struct KeyRow {
        uuid: PublicId,
        account_id: i64,
        name: String,
        prefix: String,
        secret_hash: String,
        created_at: Timestamp,
        revoked_at: Option<Timestamp>,
    }
}

impl From<KeyRow> for ApiKeyRecord {
    fn from(row: KeyRow) -> Self {
        ApiKeyRecord {
            uuid: row.uuid,
            account_id: AccountId(row.account_id),
            name: row.name,
            prefix: row.prefix,
            secret_hash: row.secret_hash,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// Writes an account row, keeping `id` when one is given.
pub(super) fn insert_account_row(
    db: &mut dyn Db,
    id: Option<AccountId>,
    uuid: PublicId,
    name: &str,
    created_at: Timestamp,
    contact_seq: i64,
) -> StoreResult<AccountId> {
    let uuid = uuid.to_string();
    let id: i64 = match id {
        Some(id) => db.one(
            "INSERT INTO accounts (id, uuid, name, created_at, contact_seq)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &params![id.0, uuid.as_str(), name, created_at, contact_seq],
        )?,
        None => db.one(
            "INSERT INTO accounts (uuid, name, created_at, contact_seq)
             VALUES ($1, $2, $3, $4) RETURNING id",
            &params![uuid.as_str(), name, created_at, contact_seq],
        )?,
    };
    Ok(AccountId(id))
}

pub(super) fn insert_key_row(
    db: &mut dyn Db,
    account: AccountId,
    key: &NewApiKey,
    revoked_at: Option<Timestamp>,
) -> StoreResult<ApiKeyRecord> {
    let row: KeyRow = db.one(
        concatcp!(
            "INSERT INTO api_keys (uuid, account_id, name, prefix, secret_hash, created_at,
                 revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
            KeyRow::COLUMNS
        ),
        &params![
            key.uuid.to_string().as_str(),
            account.0,
            &key.name,
            &key.prefix,
            &key.secret_hash,
            key.created_at,
            revoked_at
        ],
    )?;
    Ok(row.into())
}

fn create_account(db: &mut dyn Db, account: &NewAccount) -> StoreResult<AccountRecord> {
    let id = insert_account_row(db, None, account.uuid, &account.name, account.created_at, 0)?;
    let owner = users::insert(
        db,
        id,
        &User {
            id: 0,
            uuid: PublicId::random(),
            email: account.owner_email.clone(),
            name: account.owner_name.clone(),
            owner: true,
            created_at: account.created_at,
        },
    )?;
    channels::insert(db, id, &Channel::default_whatsapp(account.created_at))?;
    let team = teams::insert(
        db,
        id,
        PublicId::random(),
        "General",
        true,
        account.created_at,
    )?;
    teams::add_member(db, team, owner)?;
    insert_key_row(db, id, &account.key, None)?;
    Ok(AccountRecord {
        id,
        uuid: account.uuid,
        name: account.name.clone(),
        created_at: account.created_at,
    })
}

#[async_trait]
impl AdminStore for SqlStore {
    async fn count_accounts(&self) -> StoreResult<i64> {
        self.read(|db, _| db.one("SELECT count(*) FROM accounts", &[]))
            .await
    }

    async fn create_account(&self, account: &NewAccount) -> StoreResult<AccountRecord> {
        let account = account.clone();
        self.write(move |db, _| create_account(db, &account)).await
    }

    async fn list_accounts(&self) -> StoreResult<Vec<AccountRecord>> {
        self.read(|db, _| {
            let rows: Vec<AccountRow> = db.all(
                concatcp!("SELECT ", AccountRow::COLUMNS, " FROM accounts ORDER BY id"),
                &[],
            )?;
            Ok(rows.into_iter().map(AccountRecord::from).collect())
        })
        .await
    }

    async fn find_account(&self, uuid_or_name: &str) -> StoreResult<AccountRecord> {
        let wanted = uuid_or_name.to_owned();
        let accounts: Vec<AccountRecord> = self
            .read(move |db, _| {
                let rows: Vec<AccountRow> = db.all(
                    concatcp!(
                        "SELECT ",
                        AccountRow::COLUMNS,
                        " FROM accounts WHERE uuid = $1 OR name = $1 ORDER BY id"
                    ),
                    &params![wanted.as_str()],
                )?;
                Ok(rows.into_iter().map(AccountRecord::from).collect())
            })
            .await?;
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
        let key = key.clone();
        self.write(move |db, _| insert_key_row(db, account, &key, None))
            .await
    }

    async fn list_api_keys(&self, account: AccountId) -> StoreResult<Vec<ApiKeyRecord>> {
        self.read(move |db, _| {
            let rows: Vec<KeyRow> = db.all(
                concatcp!(
                    "SELECT ",
                    KeyRow::COLUMNS,
                    " FROM api_keys WHERE account_id = $1 ORDER BY id"
                ),
                &params![account.0],
            )?;
            Ok(rows.into_iter().map(ApiKeyRecord::from).collect())
        })
        .await
    }

    async fn revoke_api_key(
        &self,
        account: AccountId,
        uuid_or_prefix: &str,
        at: Timestamp,
    ) -> StoreResult<ApiKeyRecord> {
        let wanted = uuid_or_prefix.to_owned();
        self.write(move |db, _| {
            let mut rows: Vec<KeyRow> = db.all(
                concatcp!(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1)
                     WHERE account_id = $2 AND (uuid = $3 OR prefix = $3) RETURNING ",
                    KeyRow::COLUMNS
                ),
                &params![at, account.0, wanted.as_str()],
            )?;
            match rows.len() {
                0 => Err(StoreError::NotFound),
                1 => Ok(rows.remove(0).into()),
                // Failing undoes the revocation of all of them.
                _ => Err(StoreError::conflict(
                    "ambiguous_key",
                    format!("several keys match '{wanted}'; use the key uuid"),
                )),
            }
        })
        .await
    }

    async fn api_keys_with_prefix(&self, prefix: &str) -> StoreResult<Vec<ApiKeyRecord>> {
        let prefix = prefix.to_owned();
        self.read_statement(move |db| {
            let rows: Vec<KeyRow> = db.all(
                concatcp!(
                    "SELECT ",
                    KeyRow::COLUMNS,
                    " FROM api_keys WHERE prefix = $1"
                ),
                &params![prefix.as_str()],
            )?;
            Ok(rows.into_iter().map(ApiKeyRecord::from).collect())
        })
        .await
    }

    async fn shared_secret(&self, name: &str, fresh: String) -> StoreResult<String> {
        let name = name.to_owned();
        self.write(move |db, _| {
            db.execute(
                "INSERT INTO server_secrets (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
                &params![name.as_str(), fresh.as_str()],
            )?;
            db.one(
                "SELECT value FROM server_secrets WHERE name = $1",
                &params![name.as_str()],
            )
        })
        .await
    }

    async fn check_ready(&self) -> StoreResult<()> {
        let known = super::migrate::migrations_for(self.backend())
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0);
        let applied: i64 = self
            .read_statement(|db| {
                db.one(
                    "SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success",
                    &[],
                )
            })
            .await?;
        if applied < known {
            return Err(StoreError::Unavailable(
                format!("the database has migrations up to {applied}, this build needs {known}")
                    .into(),
            ));
        }
        // The writer answers too (an empty transaction through it).
        self.write(|_, _| Ok(())).await
    }

    async fn import_account(&self, snapshot: &AccountSnapshot) -> StoreResult<bool> {
        let snapshot = snapshot.clone();
        self.write(move |db, _| {
            let exists: i64 = db.one(
                "SELECT count(*) FROM accounts WHERE uuid = $1",
                &params![snapshot.uuid.to_string().as_str()],
            )?;
            if exists > 0 {
                return Ok(false);
            }
            transfer::import_account(db, &snapshot)?;
            Ok(true)
        })
        .await
    }
}
