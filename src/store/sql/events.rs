//! The outbox: events written in the transaction of the change that caused
//! them, the webhook deliveries they become, and the change feed that lists
//! them (docs/webhooks.md).
//!
//! A write queues its events on the connection ([`Db::defer_event`]); the
//! commit numbers them per account under the account row's lock (the same
//! update that moves the counters, [`Counts::apply`]), writes them, and
//! queues a delivery for each the account's webhook is subscribed to. A
//! write that is undone takes its events with it; one that commits always
//! has them.
//!
//! [`Counts::apply`]: super::counts::Counts::apply

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::SqlStore;
use super::db::{Db, NewEvent, SqlBuilder, params, row_struct};
use crate::domain::contact::ContactRecord;
use crate::domain::{EventName, PublicId, Timestamp};
use crate::store::{
    AccountId, AttemptFilter, AttemptOutcome, AttemptPage, AttemptRecord, Delivery, EventPayloads,
    EventRecord, StoreError, StoreResult, WebhookBacklog, WebhookRecord, WebhookStore,
};

/// What the store needs to record events: how to write their payloads, and
/// whom to wake when some have committed.
#[derive(Default)]
pub(super) struct Events {
    payloads: OnceLock<Arc<dyn EventPayloads>>,
    committed: Notify,
}

impl Events {
    /// From now on, writes record events with payloads written by
    /// `payloads`; until then they record none (`bellbook import` without
    /// `--emit-events`). Set once; later calls change nothing.
    pub(super) fn record_with(&self, payloads: Arc<dyn EventPayloads>) {
        let _ = self.payloads.set(payloads);
    }

    /// Whether writes record events now.
    pub(super) fn recording(&self) -> bool {
        self.payloads.get().is_some()
    }

    /// Queues an event about a contact, its payload the Contact object or
    /// (for conversation events) the conversation.
    pub(super) fn contact(
        &self,
        db: &mut dyn Db,
        account: AccountId,
        name: EventName,
        contact: &ContactRecord,
    ) -> StoreResult<()> {
        let Some(payloads) = self.payloads.get() else {
            return Ok(());
        };
        let payload = match name {
            EventName::ConversationOpened | EventName::ConversationClosed => {
                payloads.conversation(contact)
            }
            _ => payloads.contact(contact),
        }
        .map_err(|e| StoreError::Other(Box::new(e)))?;
        db.defer_event(NewEvent {
            account: account.0,
            name,
            contact_uuid: contact.uuid,
            payload,
            created_at: Timestamp::now(),
        });
        Ok(())
    }

    pub(super) fn deleted(
        &self,
        db: &mut dyn Db,
        account: AccountId,
        uuid: PublicId,
    ) -> StoreResult<()> {
        let Some(payloads) = self.payloads.get() else {
            return Ok(());
        };
        let payload = payloads
            .deleted(uuid)
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        db.defer_event(NewEvent {
            account: account.0,
            name: EventName::ContactDeleted,
            contact_uuid: uuid,
            payload,
            created_at: Timestamp::now(),
        });
        Ok(())
    }

    /// Wakes whoever waits for events (after a commit that wrote some).
    pub(super) fn signal(&self) {
        self.committed.notify_waiters();
    }
}

/// How many events each account's commit writes.
pub(super) fn per_account(events: &[NewEvent]) -> BTreeMap<i64, i64> {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts.entry(event.account).or_default() += 1;
    }
    counts
}

/// Writes the queued events, numbered from `first_seqs` (what the account
/// rows handed out), and a delivery for each one the account's webhook is
/// subscribed to.
pub(super) fn write(
    db: &mut dyn Db,
    events: Vec<NewEvent>,
    first_seqs: &BTreeMap<i64, i64>,
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut next_seqs = first_seqs.clone();
    // Read once per account and commit: which events its webhook takes.
    let mut subscribed: BTreeMap<i64, Option<Vec<EventName>>> = BTreeMap::new();
    let now_ms = unix_ms();
    for event in events {
        let seq = next_seqs
            .get_mut(&event.account)
            .ok_or_else(|| StoreError::other("an event's account was not numbered"))?;
        let this = *seq;
        *seq += 1;
        let contact_uuid = event.contact_uuid.to_string();
        db.execute(
            "INSERT INTO events (account_id, seq, name, contact_uuid, payload, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &params![
                event.account,
                this,
                event.name.as_str(),
                contact_uuid.as_str(),
                event.payload.as_str(),
                event.created_at
            ],
        )?;
        let names = match subscribed.entry(event.account) {
            std::collections::btree_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::btree_map::Entry::Vacant(unknown) => {
                let stored: Option<String> = db.optional(
                    "SELECT subscriptions FROM webhooks WHERE account_id = $1",
                    &params![event.account],
                )?;
                unknown.insert(stored.map(|s| decode_subscriptions(&s)).transpose()?)
            }
        };
        if names
            .as_ref()
            .is_some_and(|names| names.contains(&event.name))
        {
            db.execute(
                "INSERT INTO webhook_queue (account_id, seq, contact_uuid, next_attempt_at)
                 VALUES ($1, $2, $3, $4)",
                &params![event.account, this, contact_uuid.as_str(), now_ms],
            )?;
        }
    }
    Ok(())
}

/// Milliseconds since the epoch, as the delivery queue keeps time.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn encode_subscriptions(names: &[EventName]) -> String {
    names
        .iter()
        .map(|name| name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn decode_subscriptions(text: &str) -> StoreResult<Vec<EventName>> {
    text.split(',')
        .filter(|name| !name.is_empty())
        .map(|name| {
            name.parse()
                .map_err(|()| StoreError::other("webhooks.subscriptions holds an unknown event"))
        })
        .collect()
}

fn event_name(text: &str) -> StoreResult<EventName> {
    text.parse()
        .map_err(|()| StoreError::other("an event row holds an unknown event name"))
}

row_struct! {
    struct WebhookRow {
        url: String,
        subscriptions: String,
        secret: String,
        created_at: Timestamp,
    }
}

row_struct! {
    struct EventRow in "e" {
        seq: i64,
        name: String,
        payload: String,
        created_at: Timestamp,
    }
}

row_struct! {
    struct AttemptRow {
        seq: i64,
        name: String,
        payload: String,
        code: Option<i64>,
        headers: String,
        body: String,
        success: bool,
        created_at: Timestamp,
    }
}

row_struct! {
    struct DeliveryRow {
        account_id: i64,
        account_uuid: PublicId,
        seq: i64,
        name: String,
        payload: String,
        created_at: Timestamp,
        attempts: i64,
        url: String,
        secret: String,
    }
}

row_struct! {
    struct BacklogRow {
        account_uuid: PublicId,
        account_name: String,
        pending: i64,
        failing: i64,
        oldest: Option<Timestamp>,
    }
}

/// The attempts filter's `WHERE` after `account_id = $1`.
fn attempt_conditions<'a>(query: &mut SqlBuilder<'a>, filter: &'a AttemptFilter) {
    if let Some(success) = filter.success {
        query.push(" AND a.success = ").param(success);
    }
    if !filter.events.is_empty() {
        query.push(" AND e.name IN (");
        for (i, name) in filter.events.iter().enumerate() {
            if i > 0 {
                query.push(", ");
            }
            query.param(name.as_str());
        }
        query.push(")");
    }
}

#[async_trait]
impl WebhookStore for SqlStore {
    async fn subscribe(&self, account: AccountId, webhook: &WebhookRecord) -> StoreResult<()> {
        let webhook = webhook.clone();
        self.write(move |db, _| {
            db.execute(
                "INSERT INTO webhooks (account_id, url, subscriptions, secret, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (account_id) DO UPDATE SET url = excluded.url,
                     subscriptions = excluded.subscriptions, secret = excluded.secret,
                     created_at = excluded.created_at",
                &params![
                    account.0,
                    webhook.url.as_str(),
                    encode_subscriptions(&webhook.subscriptions).as_str(),
                    webhook.secret.as_str(),
                    webhook.created_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn unsubscribe(&self, account: AccountId) -> StoreResult<()> {
        self.write(move |db, _| {
            let removed = db.execute(
                "DELETE FROM webhooks WHERE account_id = $1",
                &params![account.0],
            )?;
            if removed == 0 {
                return Err(StoreError::NotFound);
            }
            db.execute(
                "DELETE FROM webhook_queue WHERE account_id = $1",
                &params![account.0],
            )?;
            Ok(())
        })
        .await
    }

    async fn retry_delivery(&self, account: AccountId, seq: i64, now_ms: i64) -> StoreResult<()> {
        self.write(move |db, _| {
            // Only an event that is still kept, of an account that still
            // has a webhook. One still waiting for its next attempt is made
            // due now; one that failed for good starts over.
            let found: Option<i64> = db.optional(
                "SELECT e.seq FROM events e JOIN webhooks w ON w.account_id = e.account_id
                 WHERE e.account_id = $1 AND e.seq = $2",
                &params![account.0, seq],
            )?;
            if found.is_none() {
                return Err(StoreError::NotFound);
            }
            db.execute(
                "INSERT INTO webhook_queue (account_id, seq, contact_uuid, attempts, next_attempt_at)
                 SELECT account_id, seq, contact_uuid, 0, $1 FROM events
                 WHERE account_id = $2 AND seq = $3
                 ON CONFLICT (account_id, seq)
                     DO UPDATE SET next_attempt_at = excluded.next_attempt_at",
                &params![now_ms, account.0, seq],
            )?;
            Ok(())
        })
        .await
    }

    async fn webhook(&self, account: AccountId) -> StoreResult<Option<WebhookRecord>> {
        self.read_statement(move |db| {
            let row: Option<WebhookRow> = db.optional(
                const_format::concatcp!(
                    "SELECT ",
                    WebhookRow::COLUMNS,
                    " FROM webhooks WHERE account_id = $1"
                ),
                &params![account.0],
            )?;
            row.map(|row| {
                Ok(WebhookRecord {
                    url: row.url,
                    subscriptions: decode_subscriptions(&row.subscriptions)?,
                    secret: row.secret,
                    created_at: row.created_at,
                })
            })
            .transpose()
        })
        .await
    }

    async fn webhook_attempts(
        &self,
        account: AccountId,
        filter: &AttemptFilter,
        page: u32,
        items: u32,
    ) -> StoreResult<AttemptPage> {
        let filter = filter.clone();
        self.read(move |db, _| {
            let mut count = SqlBuilder::new(
                "SELECT count(*) FROM webhook_attempts a JOIN events e
                 ON e.account_id = a.account_id AND e.seq = a.seq WHERE a.account_id = ",
            );
            count.param(account.0);
            attempt_conditions(&mut count, &filter);
            let total: i64 = db.one(count.sql(), count.params())?;
            let mut query = SqlBuilder::new(
                "SELECT e.seq, e.name, e.payload, a.code, a.headers, a.body, a.success, a.created_at
                 FROM webhook_attempts a JOIN events e
                 ON e.account_id = a.account_id AND e.seq = a.seq WHERE a.account_id = ",
            );
            query.param(account.0);
            attempt_conditions(&mut query, &filter);
            query
                .push(" ORDER BY a.id DESC LIMIT ")
                .param(i64::from(items));
            query
                .push(" OFFSET ")
                .param(i64::from(page.saturating_sub(1)) * i64::from(items));
            let rows: Vec<AttemptRow> = db.all(query.sql(), query.params())?;
            let attempts = rows
                .into_iter()
                .map(|row| {
                    Ok(AttemptRecord {
                        seq: row.seq,
                        event: event_name(&row.name)?,
                        payload: row.payload,
                        code: row.code,
                        headers: row.headers,
                        body: row.body,
                        success: row.success,
                        created_at: row.created_at,
                    })
                })
                .collect::<StoreResult<_>>()?;
            Ok(AttemptPage { attempts, total })
        })
        .await
    }

    async fn events_after(
        &self,
        account: AccountId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<EventRecord>> {
        self.read_statement(move |db| {
            let rows: Vec<EventRow> = db.all(
                const_format::concatcp!(
                    "SELECT ",
                    EventRow::QUALIFIED,
                    " FROM events e WHERE e.account_id = $1 AND e.seq > $2
                     ORDER BY e.seq LIMIT $3"
                ),
                &params![account.0, after, i64::from(limit)],
            )?;
            rows.into_iter()
                .map(|row| {
                    Ok(EventRecord {
                        seq: row.seq,
                        name: event_name(&row.name)?,
                        payload: row.payload,
                        created_at: row.created_at,
                    })
                })
                .collect()
        })
        .await
    }

    async fn wait_for_events(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.events.committed.notified()).await;
    }

    async fn webhook_accounts(&self) -> StoreResult<Vec<AccountId>> {
        self.read_statement(|db| {
            let ids: Vec<i64> =
                db.all("SELECT account_id FROM webhooks ORDER BY account_id", &[])?;
            Ok(ids.into_iter().map(AccountId).collect())
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        account: AccountId,
        now_ms: i64,
        claimed_until_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let claim = PublicId::random().to_string();
        let skip_locked = match self.backend() {
            super::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            super::Backend::Sqlite => "",
        };
        // The inner SELECT picks, per contact, only the earliest pending
        // delivery (so a contact's events go out in order); the outer
        // condition is checked again on the row as it is when the UPDATE
        // reaches it, so of two processes claiming at once only one wins.
        let claim_sql = format!(
            "UPDATE webhook_queue SET claim = $1, claimed_until = $2
             WHERE account_id = $3 AND (claimed_until IS NULL OR claimed_until < $4)
             AND seq IN (
                 SELECT q.seq FROM webhook_queue q
                 WHERE q.account_id = $3 AND q.next_attempt_at <= $4
                 AND (q.claimed_until IS NULL OR q.claimed_until < $4)
                 AND NOT EXISTS (SELECT 1 FROM webhook_queue p WHERE p.account_id = q.account_id
                     AND p.contact_uuid = q.contact_uuid AND p.seq < q.seq)
                 ORDER BY q.next_attempt_at, q.seq LIMIT $5{skip_locked})"
        );
        let claimed_by = claim.clone();
        let rows: Vec<DeliveryRow> = self
            .write(move |db, _| {
                db.execute(
                    &claim_sql,
                    &params![
                        claimed_by.as_str(),
                        claimed_until_ms,
                        account.0,
                        now_ms,
                        i64::from(limit)
                    ],
                )?;
                db.all(
                    "SELECT q.account_id, a.uuid, q.seq, e.name, e.payload, e.created_at,
                         q.attempts, w.url, w.secret
                     FROM webhook_queue q
                     JOIN events e ON e.account_id = q.account_id AND e.seq = q.seq
                     JOIN webhooks w ON w.account_id = q.account_id
                     JOIN accounts a ON a.id = q.account_id
                     WHERE q.account_id = $1 AND q.claim = $2 ORDER BY q.seq",
                    &params![account.0, claimed_by.as_str()],
                )
            })
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Delivery {
                    account: AccountId(row.account_id),
                    account_uuid: row.account_uuid,
                    seq: row.seq,
                    name: event_name(&row.name)?,
                    payload: row.payload,
                    created_at: row.created_at,
                    attempts: row.attempts,
                    url: row.url,
                    secret: row.secret,
                    claim: claim.clone(),
                })
            })
            .collect()
    }

    async fn finish_delivery(
        &self,
        delivery: &Delivery,
        outcome: &AttemptOutcome,
    ) -> StoreResult<()> {
        let (account, seq, claim) = (delivery.account, delivery.seq, delivery.claim.clone());
        let outcome = outcome.clone();
        self.write(move |db, _| {
            // The event may be gone (unsubscribed meanwhile): nothing to
            // record then.
            let exists: Option<i64> = db.optional(
                "SELECT seq FROM events WHERE account_id = $1 AND seq = $2",
                &params![account.0, seq],
            )?;
            if exists.is_none() {
                return Ok(());
            }
            db.execute(
                "INSERT INTO webhook_attempts (account_id, seq, code, headers, body, success,
                     created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &params![
                    account.0,
                    seq,
                    outcome.code,
                    outcome.headers.as_str(),
                    outcome.body.as_str(),
                    outcome.success,
                    outcome.at
                ],
            )?;
            // Only while the claim is still ours: one that expired and was
            // taken over belongs to the process that took it.
            if outcome.success {
                // The receiver answers again: what waits for a retry after
                // it failed need not wait out its backoff.
                db.execute(
                    "UPDATE webhook_queue SET next_attempt_at = $1
                     WHERE account_id = $2 AND next_attempt_at > $1 AND claim IS NULL",
                    &params![unix_ms(), account.0],
                )?;
            }
            match outcome.retry_at_ms {
                None => db.execute(
                    "DELETE FROM webhook_queue WHERE account_id = $1 AND seq = $2 AND claim = $3",
                    &params![account.0, seq, claim.as_str()],
                )?,
                Some(at) => db.execute(
                    "UPDATE webhook_queue SET attempts = attempts + 1, next_attempt_at = $1,
                         claim = NULL, claimed_until = NULL
                     WHERE account_id = $2 AND seq = $3 AND claim = $4",
                    &params![at, account.0, seq, claim.as_str()],
                )?,
            };
            Ok(())
        })
        .await
    }

    async fn purge_events(&self, before: Timestamp) -> StoreResult<u64> {
        self.delete_in_batches(
            "DELETE FROM events WHERE (account_id, seq) IN (
                 SELECT e.account_id, e.seq FROM events e
                 WHERE e.created_at < $1 AND NOT EXISTS (
                     SELECT 1 FROM webhook_queue q
                     WHERE q.account_id = e.account_id AND q.seq = e.seq)
                 LIMIT $2)",
            before,
        )
        .await
    }

    async fn webhook_backlog(&self) -> StoreResult<Vec<WebhookBacklog>> {
        self.read(|db, _| {
            let rows: Vec<BacklogRow> = db.all(
                "SELECT a.uuid, a.name, count(q.seq),
                     CAST(coalesce(sum(CASE WHEN q.attempts > 0 THEN 1 ELSE 0 END), 0) AS BIGINT),
                     min(e.created_at)
                 FROM accounts a
                 JOIN webhook_queue q ON q.account_id = a.id
                 JOIN events e ON e.account_id = q.account_id AND e.seq = q.seq
                 GROUP BY a.id, a.uuid, a.name ORDER BY a.id",
                &[],
            )?;
            Ok(rows
                .into_iter()
                .map(|row| WebhookBacklog {
                    account_uuid: row.account_uuid,
                    account_name: row.account_name,
                    pending: row.pending,
                    failing: row.failing,
                    oldest: row.oldest,
                })
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_round_trip_in_order() {
        let names = [EventName::ContactUpdated, EventName::ContactCreated];
        assert_eq!(
            decode_subscriptions(&encode_subscriptions(&names)).expect("names"),
            names
        );
        assert!(decode_subscriptions("").expect("none").is_empty());
    }
}
