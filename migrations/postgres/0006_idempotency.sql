-- Idempotency-Key (README, "Retry-safe writes"): the first answer to each
-- key an account sent with a write, kept 24 hours so a retry gets it again.
CREATE TABLE idempotency_keys (
    account_id   BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    -- SHA-256 of the method, path and body the key was first sent with: the
    -- same key with another request is refused.
    fingerprint  TEXT NOT NULL,
    -- The answer, once there is one; NULL while the first request runs.
    status       INTEGER,
    content_type TEXT,
    body         TEXT,
    -- Until when the running request holds the key (unix seconds): a
    -- process that died mid-request lets go of it when this passes.
    locked_until BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
