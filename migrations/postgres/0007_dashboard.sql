-- The dashboard (docs/dashboard.md): users' passwords and signed-in sessions.
CREATE TABLE user_passwords (
    user_id    BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- argon2id, as a PHC string (algorithm, parameters, salt and hash).
    hash       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE dashboard_sessions (
    -- SHA-256 (hex) of the cookie's random token: a copy of this table
    -- signs nobody in.
    token_hash   TEXT PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The API key the owner signed in with; NULL for a password. Revoking
    -- the key ends the session (it is only valid while the key is).
    api_key_id   BIGINT REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_by_age ON dashboard_sessions (last_seen_at);
CREATE INDEX dashboard_sessions_by_user ON dashboard_sessions (user_id);
-- Sign-in looks a user up by e-mail across accounts.
CREATE INDEX users_by_email_key ON users (email_key);
