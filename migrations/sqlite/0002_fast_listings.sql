-- Listings and lookups that stay fast at millions of contacts; see
-- docs/storage.md for what each piece is for.

-- Totals kept in the same transaction as the changes they count, so a
-- listing reads its meta.pages instead of counting rows.
ALTER TABLE accounts ADD COLUMN contact_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tags ADD COLUMN contact_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN contact_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN contact_count INTEGER NOT NULL DEFAULT 0;
-- Bumped by every change of an account's settings: processes keep the
-- settings cached and reload them when this moves.
ALTER TABLE accounts ADD COLUMN settings_version INTEGER NOT NULL DEFAULT 0;

-- A contact's tag ids (in the order they were set, comma-separated) and its
-- custom field values (a JSON object by field id), kept beside the
-- normalised tables so that reading a contact reads one row.
ALTER TABLE contacts ADD COLUMN tag_ids TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN field_values TEXT NOT NULL DEFAULT '{}';
UPDATE contacts SET tag_ids = COALESCE(
    (SELECT group_concat(tag_id, ',' ORDER BY position) FROM contact_tags
     WHERE contact_id = contacts.id), '');
UPDATE contacts SET field_values = COALESCE(
    (SELECT json_group_object(CAST(field_id AS TEXT), value ORDER BY field_id)
     FROM contact_field_values WHERE contact_id = contacts.id), '{}');

-- Tag memberships carry their contact's place in the newest-first order,
-- so a tag's contacts are listed by walking one index.
CREATE TABLE contact_tags_ordered (
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    tag_id     INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (contact_id, tag_id)
) WITHOUT ROWID;
INSERT INTO contact_tags_ordered (contact_id, tag_id, created_at, seq)
    SELECT ct.contact_id, ct.tag_id, c.created_at, c.seq
    FROM contact_tags ct JOIN contacts c ON c.id = ct.contact_id;
DROP TABLE contact_tags;
ALTER TABLE contact_tags_ordered RENAME TO contact_tags;
CREATE INDEX contact_tags_newest_first ON contact_tags (tag_id, created_at DESC, seq DESC);

UPDATE accounts SET contact_count =
    (SELECT count(*) FROM contacts WHERE contacts.account_id = accounts.id);
UPDATE tags SET contact_count =
    (SELECT count(*) FROM contact_tags WHERE contact_tags.tag_id = tags.id);
UPDATE teams SET contact_count =
    (SELECT count(*) FROM contacts WHERE contacts.team_id = teams.id);
UPDATE channels SET contact_count =
    (SELECT count(*) FROM contacts WHERE contacts.channel_id = channels.id);

-- Each filter of GET /contacts walks an index in newest-first order.
DROP INDEX contacts_by_team;
CREATE INDEX contacts_by_team ON contacts (team_id, created_at DESC, seq DESC);
CREATE INDEX contacts_by_source ON contacts (account_id, source, created_at DESC, seq DESC);
-- WhatsApp numbers are found by their unique key (their digits); other
-- channels' identifiers by digits through this smaller index.
DROP INDEX contacts_by_digits;
CREATE INDEX contacts_by_digits ON contacts (channel_id, identifier_digits, created_at, seq)
    WHERE source <> 'whatsapp';
-- Only contacts that have an assignee, funnel or bot need an entry.
DROP INDEX contacts_by_user;
CREATE INDEX contacts_by_user ON contacts (assigned_user_id) WHERE assigned_user_id IS NOT NULL;
DROP INDEX contacts_by_funnel;
CREATE INDEX contacts_by_funnel ON contacts (funnel_id) WHERE funnel_id IS NOT NULL;
DROP INDEX contacts_by_bot;
CREATE INDEX contacts_by_bot ON contacts (bot_id) WHERE bot_id IS NOT NULL;

-- `q`: substrings of the folded name and of the phone digits, through a
-- trigram index over the contacts table's own columns. It only finds
-- candidates (no positions kept: `detail = none`); the listing checks each
-- against the contact's own columns.
CREATE VIRTUAL TABLE contacts_search USING fts5 (
    name_key, identifier_digits,
    content = 'contacts', content_rowid = 'id',
    tokenize = 'trigram', detail = none, columnsize = 0
);
INSERT INTO contacts_search (contacts_search) VALUES ('rebuild');
