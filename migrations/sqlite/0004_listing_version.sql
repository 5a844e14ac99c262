-- Bumped by every write that adds a contact to an account's listings,
-- removes one or changes its tags or team, in that write's transaction:
-- the page starts a process remembers are used only while it is unchanged
-- (src/store/sql/anchors.rs; docs/storage.md, "Numbered pages").
ALTER TABLE accounts ADD COLUMN listing_version INTEGER NOT NULL DEFAULT 0;
