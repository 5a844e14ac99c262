//! Dashboard passwords and sessions (docs/dashboard.md): rows every
//! process shares, so a session opened on one works on all of them.

use async_trait::async_trait;
use const_format::concatcp;

use super::SqlStore;
use super::db::{params, row_struct};
use crate::domain::{PublicId, Timestamp, fold_case};
use crate::store::{
    AccountId, DashboardStore, NewSession, PasswordCandidate, SessionRecord, StoreError,
    StoreResult,
};

row_struct! {
    struct CandidateRow {
        account_id: i64 = "u.account_id",
        user_id: i64 = "u.id",
        hash: String = "p.hash",
    }
}

row_struct! {
    struct SessionRow {
        account_id: i64 = "s.account_id",
        account_name: String = "a.name",
        user_uuid: PublicId = "u.uuid",
        user_email: String = "u.email",
        user_name: String = "u.name",
        last_seen_at: Timestamp = "s.last_seen_at",
    }
}

#[async_trait]
impl DashboardStore for SqlStore {
    async fn set_password(
        &self,
        account: AccountId,
        user: PublicId,
        hash: &str,
        at: Timestamp,
    ) -> StoreResult<()> {
        let hash = hash.to_owned();
        self.write(move |db, _| {
            let user_id: Option<i64> = db.optional(
                "SELECT id FROM users WHERE account_id = $1 AND uuid = $2",
                &params![account.0, user.to_string().as_str()],
            )?;
            let user_id = user_id.ok_or(StoreError::NotFound)?;
            db.execute(
                "INSERT INTO user_passwords (user_id, hash, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash,
                     updated_at = excluded.updated_at",
                &params![user_id, hash.as_str(), at],
            )?;
            // Whoever knew the old password is signed out.
            db.execute(
                "DELETE FROM dashboard_sessions WHERE user_id = $1 AND api_key_id IS NULL",
                &params![user_id],
            )?;
            Ok(())
        })
        .await
    }

    async fn has_password(&self, account: AccountId, user: PublicId) -> StoreResult<bool> {
        self.read_statement(move |db| {
            let found: Option<i64> = db.optional(
                "SELECT p.user_id FROM user_passwords p JOIN users u ON u.id = p.user_id
                 WHERE u.account_id = $1 AND u.uuid = $2",
                &params![account.0, user.to_string().as_str()],
            )?;
            Ok(found.is_some())
        })
        .await
    }

    async fn password_candidates(&self, email: &str) -> StoreResult<Vec<PasswordCandidate>> {
        let email_key = fold_case(email.trim());
        self.read_statement(move |db| {
            let rows: Vec<CandidateRow> = db.all(
                concatcp!(
                    "SELECT ",
                    CandidateRow::COLUMNS,
                    " FROM users u JOIN user_passwords p ON p.user_id = u.id
                     WHERE u.email_key = $1 ORDER BY u.account_id"
                ),
                &params![email_key.as_str()],
            )?;
            Ok(rows
                .into_iter()
                .map(|row| PasswordCandidate {
                    account: AccountId(row.account_id),
                    user_id: row.user_id,
                    hash: row.hash,
                })
                .collect())
        })
        .await
    }

    async fn start_session(&self, session: &NewSession) -> StoreResult<()> {
        let session = session.clone();
        self.write(move |db, _| {
            let api_key_id = match &session.api_key_hash {
                None => None,
                Some(hash) => Some(
                    db.optional::<i64>(
                        "SELECT id FROM api_keys
                         WHERE account_id = $1 AND secret_hash = $2 AND revoked_at IS NULL",
                        &params![session.account.0, hash.as_str()],
                    )?
                    .ok_or(StoreError::NotFound)?,
                ),
            };
            db.execute(
                "INSERT INTO dashboard_sessions
                     (token_hash, account_id, user_id, api_key_id, created_at, last_seen_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &params![
                    session.token_hash.as_str(),
                    session.account.0,
                    session.user_id,
                    api_key_id,
                    session.at,
                    session.at
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn session(
        &self,
        token_hash: &str,
        idle_since: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        let token_hash = token_hash.to_owned();
        self.read_statement(move |db| {
            let row: Option<SessionRow> = db.optional(
                concatcp!(
                    "SELECT ",
                    SessionRow::COLUMNS,
                    " FROM dashboard_sessions s
                     JOIN accounts a ON a.id = s.account_id
                     JOIN users u ON u.id = s.user_id
                     LEFT JOIN api_keys k ON k.id = s.api_key_id
                     WHERE s.token_hash = $1 AND s.last_seen_at >= $2
                       AND (s.api_key_id IS NULL OR k.revoked_at IS NULL)"
                ),
                &params![token_hash.as_str(), idle_since],
            )?;
            Ok(row.map(|row| SessionRecord {
                account: AccountId(row.account_id),
                account_name: row.account_name,
                user_uuid: row.user_uuid,
                user_email: row.user_email,
                user_name: row.user_name,
                last_seen_at: row.last_seen_at,
            }))
        })
        .await
    }

    async fn touch_session(&self, token_hash: &str, at: Timestamp) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        self.write(move |db, _| {
            db.execute(
                "UPDATE dashboard_sessions SET last_seen_at = $1
                 WHERE token_hash = $2 AND last_seen_at < $3",
                &params![at, token_hash.as_str(), at],
            )?;
            Ok(())
        })
        .await
    }

    async fn end_session(&self, token_hash: &str) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        self.write(move |db, _| {
            db.execute(
                "DELETE FROM dashboard_sessions WHERE token_hash = $1",
                &params![token_hash.as_str()],
            )?;
            Ok(())
        })
        .await
    }

    async fn purge_sessions(&self, before: Timestamp) -> StoreResult<u64> {
        self.delete_in_batches(
            "DELETE FROM dashboard_sessions WHERE token_hash IN (
                 SELECT token_hash FROM dashboard_sessions
                 WHERE last_seen_at < $1 LIMIT $2)",
            before,
        )
        .await
    }
}
