-- bellbook schema, SQLite flavour. migrations/postgres holds the same shape.
-- Only INTEGER and TEXT columns: the store talks to both backends through
-- sqlx's Any driver, which maps exactly those types the same way on both.
-- Timestamps are Unix seconds (the API speaks seconds precision).
-- Flags are 0/1 integers.

-- Process-wide secrets shared by every server on this database (the cursor
-- signing key): generated once, so any process can verify another's cursors.
CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    -- Last contact sequence number handed out. Bumping it takes the account
    -- row's write lock, so contact sequence order is commit order.
    contact_seq INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT NOT NULL UNIQUE,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_by_prefix ON api_keys (prefix);

CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    uuid       TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    email_key  TEXT NOT NULL,
    name       TEXT NOT NULL,
    is_owner   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    UNIQUE (account_id, email_key)
);

CREATE TABLE teams (
    id         INTEGER PRIMARY KEY,
    uuid       TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX teams_one_default ON teams (account_id) WHERE is_default = 1;

CREATE TABLE team_members (
    team_id INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);

CREATE TABLE channels (
    id           INTEGER PRIMARY KEY,
    uuid         TEXT NOT NULL UNIQUE,
    account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    title        TEXT NOT NULL,
    type         TEXT NOT NULL,
    is_main      INTEGER NOT NULL DEFAULT 0,
    discarded_at INTEGER,
    created_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX channels_one_main_per_type ON channels (account_id, type) WHERE is_main = 1;

CREATE TABLE bots (
    id         INTEGER PRIMARY KEY,
    uuid       TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    enabled    INTEGER NOT NULL DEFAULT 1,
    version    INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL
);

CREATE TABLE funnels (
    id         INTEGER PRIMARY KEY,
    uuid       TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    emoji      TEXT,
    position   INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE tags (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (account_id, name_key)
);

CREATE TABLE custom_fields (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    type       TEXT NOT NULL,
    -- JSON array of option labels (dropdown and checkbox), else NULL.
    options    TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (account_id, name_key)
);

CREATE TABLE contacts (
    id                INTEGER PRIMARY KEY,
    uuid              TEXT NOT NULL UNIQUE,
    account_id        INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    seq               INTEGER NOT NULL,
    name              TEXT NOT NULL,
    -- Lower-cased name for the `q` search; computed in Rust so both
    -- backends fold case identically.
    name_key          TEXT NOT NULL,
    identifier        TEXT NOT NULL,
    identifier_digits TEXT NOT NULL,
    -- What uniqueness is decided on: digits for WhatsApp, else the identifier.
    identifier_key    TEXT NOT NULL,
    source            TEXT NOT NULL,
    channel_id        INTEGER NOT NULL REFERENCES channels (id),
    team_id           INTEGER REFERENCES teams (id),
    assigned_user_id  INTEGER REFERENCES users (id) ON DELETE SET NULL,
    avatar_url        TEXT,
    blocked_at        INTEGER,
    bsuid             TEXT,
    note              TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    conversation_uuid TEXT NOT NULL UNIQUE,
    closed_at         INTEGER,
    funnel_id         INTEGER REFERENCES funnels (id) ON DELETE SET NULL,
    bot_id            INTEGER REFERENCES bots (id) ON DELETE SET NULL,
    bot_status        TEXT,
    bot_version       INTEGER,
    bot_started_at    INTEGER,
    UNIQUE (channel_id, identifier_key),
    UNIQUE (account_id, seq)
);
CREATE INDEX contacts_newest_first ON contacts (account_id, created_at DESC, seq DESC);
CREATE INDEX contacts_by_digits ON contacts (channel_id, identifier_digits);
CREATE INDEX contacts_by_team ON contacts (team_id);
CREATE INDEX contacts_by_user ON contacts (assigned_user_id);
CREATE INDEX contacts_by_funnel ON contacts (funnel_id);
CREATE INDEX contacts_by_bot ON contacts (bot_id);
CREATE UNIQUE INDEX contacts_bsuid ON contacts (account_id, bsuid) WHERE bsuid IS NOT NULL;

CREATE TABLE contact_tags (
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    tag_id     INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    PRIMARY KEY (contact_id, tag_id)
);
CREATE INDEX contact_tags_by_tag ON contact_tags (tag_id, contact_id);

CREATE TABLE contact_field_values (
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    field_id   INTEGER NOT NULL REFERENCES custom_fields (id) ON DELETE CASCADE,
    value      TEXT NOT NULL,
    PRIMARY KEY (contact_id, field_id)
);
CREATE INDEX contact_field_values_by_field ON contact_field_values (field_id);

-- A contact's conversation notes and the system events bellbook records.
CREATE TABLE messages (
    id         INTEGER PRIMARY KEY,
    uuid       TEXT NOT NULL UNIQUE,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    -- 'note' (written through the API) or 'event' (recorded by bellbook).
    kind       TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX messages_newest_first ON messages (contact_id, created_at DESC, id DESC);
