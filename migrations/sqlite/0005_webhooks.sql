-- Webhooks and the change feed (docs/webhooks.md).

-- Last event sequence number handed out. The commit that writes an
-- account's events bumps it under the account row's lock, so event order
-- is commit order (what the change feed's cursor relies on).
ALTER TABLE accounts ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;

-- One webhook per account.
CREATE TABLE webhooks (
    account_id    INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    url           TEXT NOT NULL,
    -- The subscribed event names, comma-separated, in the order given.
    subscriptions TEXT NOT NULL,
    -- The HMAC key deliveries are signed with. Unlike API keys it cannot be
    -- kept as a hash: signing needs the key itself.
    secret        TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

-- The outbox: every event, written in the transaction of the change that
-- caused it, kept for the change feed for the retention period.
CREATE TABLE events (
    account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    name         TEXT NOT NULL,
    -- The contact it concerns: deliveries of one contact go in seq order.
    contact_uuid TEXT NOT NULL,
    -- The delivered body's "payload", as JSON text.
    payload      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (account_id, seq)
);
CREATE INDEX events_by_age ON events (created_at);

-- Deliveries not yet done: one row per event the account's webhook is
-- subscribed to, from the event's commit until it succeeded or finally
-- failed. Times in milliseconds.
CREATE TABLE webhook_queue (
    account_id      INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    contact_uuid    TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- Who is delivering it and until when: a process that dies mid-delivery
    -- loses the claim when it expires, and another takes it up.
    claim           TEXT,
    claimed_until   INTEGER,
    PRIMARY KEY (account_id, seq),
    FOREIGN KEY (account_id, seq) REFERENCES events (account_id, seq) ON DELETE CASCADE
);
CREATE INDEX webhook_queue_due ON webhook_queue (account_id, next_attempt_at);
CREATE INDEX webhook_queue_by_contact ON webhook_queue (account_id, contact_uuid, seq);

-- Every delivery attempt, for GET /webhooks/events.
CREATE TABLE webhook_attempts (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    -- No status code when no answer came (refused, timed out, blocked).
    code       INTEGER,
    -- The answer's headers, a JSON object; the first 4 KiB of its body.
    headers    TEXT NOT NULL,
    body       TEXT NOT NULL,
    success    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    FOREIGN KEY (account_id, seq) REFERENCES events (account_id, seq) ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_newest_first ON webhook_attempts (account_id, id DESC);
-- What deleting an event (past its retention) deletes with it.
CREATE INDEX webhook_attempts_by_event ON webhook_attempts (account_id, seq);
