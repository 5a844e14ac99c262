-- The full-text index of contacts (`q`) merges its segments only when a
-- level holds `crisismerge` (16) of them, not a little on every commit.
-- With its default (`automerge` 4) each commit that added one contact also
-- merged up to 64 pages of older segments, which was half of what a create
-- cost under load; a search reads at most a few more segments instead.
-- See docs/storage.md.
INSERT INTO contacts_search (contacts_search, rank) VALUES ('automerge', 0);

-- An account's teams, channels, bots and funnels, read whenever its
-- settings are loaded into the cache, without reading every account's.
CREATE INDEX teams_by_account ON teams (account_id);
CREATE INDEX channels_by_account ON channels (account_id, type);
CREATE INDEX bots_by_account ON bots (account_id);
CREATE INDEX funnels_by_account ON funnels (account_id);
