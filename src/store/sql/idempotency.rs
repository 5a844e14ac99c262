//! Idempotency keys (README, "Retry-safe writes"): one row per account and
//! key, decided in a write transaction, so two processes sending the same
//! key at once find one of them running it.

use async_trait::async_trait;

use super::SqlStore;
use super::db::{Db, params, row_struct};
use crate::domain::Timestamp;
use crate::store::{
    IdempotencyBegin, IdempotencyClaim, IdempotencyStore, StoreResult, StoredAnswer,
};

use super::Backend;

row_struct! {
    struct KeyRow {
        fingerprint: String,
        status: Option<i64>,
        content_type: Option<String>,
        body: Option<String>,
        locked_until: Timestamp,
        created_at: Timestamp,
    }
}

fn begin(db: &mut dyn Db, claim: &IdempotencyClaim) -> StoreResult<IdempotencyBegin> {
    let inserted = db.execute(
        "INSERT INTO idempotency_keys
             (account_id, key, fingerprint, locked_until, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (account_id, key) DO NOTHING",
        &params![
            claim.account.0,
            claim.key.as_str(),
            claim.fingerprint.as_str(),
            claim.lease_until,
            claim.now
        ],
    )?;
    if inserted == 1 {
        return Ok(IdempotencyBegin::Started);
    }
    // On PostgreSQL the row is locked until this transaction ends, so two
    // processes cannot both take over one key; SQLite has one writer.
    let lock = match db.backend() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let row: KeyRow = db.one(
        &format!(
            "SELECT {} FROM idempotency_keys WHERE account_id = $1 AND key = $2{lock}",
            KeyRow::COLUMNS
        ),
        &params![claim.account.0, claim.key.as_str()],
    )?;
    let expired = row.created_at < claim.expired_before;
    let abandoned = row.status.is_none() && row.locked_until <= claim.now;
    if expired || (abandoned && row.fingerprint == claim.fingerprint) {
        // Past 24 hours the key is new again; a request whose process died
        // before it answered is run again (see the README).
        db.execute(
            "UPDATE idempotency_keys SET fingerprint = $1, status = NULL, content_type = NULL,
                 body = NULL, locked_until = $2, created_at = $3
             WHERE account_id = $4 AND key = $5",
            &params![
                claim.fingerprint.as_str(),
                claim.lease_until,
                claim.now,
                claim.account.0,
                claim.key.as_str()
            ],
        )?;
        return Ok(IdempotencyBegin::Started);
    }
    if row.fingerprint != claim.fingerprint {
        return Ok(IdempotencyBegin::Mismatch);
    }
    Ok(match (row.status, row.body) {
        (Some(status), Some(body)) => IdempotencyBegin::Replay(StoredAnswer {
            status: u16::try_from(status).unwrap_or(500),
            content_type: row.content_type,
            body,
        }),
        _ => IdempotencyBegin::InProgress,
    })
}

#[async_trait]
impl IdempotencyStore for SqlStore {
    async fn begin_idempotent(&self, claim: &IdempotencyClaim) -> StoreResult<IdempotencyBegin> {
        let claim = claim.clone();
        self.write(move |db, _| begin(db, &claim)).await
    }

    async fn finish_idempotent(
        &self,
        claim: &IdempotencyClaim,
        answer: &StoredAnswer,
    ) -> StoreResult<()> {
        let claim = claim.clone();
        let answer = answer.clone();
        self.write(move |db, _| {
            // Only the request that holds the key writes its answer.
            db.execute(
                "UPDATE idempotency_keys SET status = $1, content_type = $2, body = $3
                 WHERE account_id = $4 AND key = $5 AND fingerprint = $6 AND status IS NULL",
                &params![
                    i64::from(answer.status),
                    answer.content_type.as_deref(),
                    answer.body.as_str(),
                    claim.account.0,
                    claim.key.as_str(),
                    claim.fingerprint.as_str()
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn release_idempotent(&self, claim: &IdempotencyClaim) -> StoreResult<()> {
        let claim = claim.clone();
        self.write(move |db, _| {
            db.execute(
                "DELETE FROM idempotency_keys
                 WHERE account_id = $1 AND key = $2 AND fingerprint = $3 AND status IS NULL",
                &params![
                    claim.account.0,
                    claim.key.as_str(),
                    claim.fingerprint.as_str()
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn purge_idempotency_keys(&self, before: Timestamp) -> StoreResult<u64> {
        self.delete_in_batches(
            "DELETE FROM idempotency_keys WHERE (account_id, key) IN (
                 SELECT account_id, key FROM idempotency_keys
                 WHERE created_at < $1 LIMIT $2)",
            before,
        )
        .await
    }
}
