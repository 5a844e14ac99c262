-- (SQLite's 0003 also changes how its search index merges; PostgreSQL's
-- trigram indexes need no such setting.)

-- An account's teams, channels, bots and funnels, read whenever its
-- settings are loaded into the cache, without reading every account's.
CREATE INDEX teams_by_account ON teams (account_id);
CREATE INDEX channels_by_account ON channels (account_id, type);
CREATE INDEX bots_by_account ON bots (account_id);
CREATE INDEX funnels_by_account ON funnels (account_id);
