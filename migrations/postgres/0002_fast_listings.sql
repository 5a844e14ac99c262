-- Listings and lookups that stay fast at millions of contacts; see
-- docs/storage.md for what each piece is for.

-- Totals kept in the same transaction as the changes they count, so a
-- listing reads its meta.pages instead of counting rows.
ALTER TABLE accounts ADD COLUMN contact_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tags ADD COLUMN contact_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN contact_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN contact_count BIGINT NOT NULL DEFAULT 0;
-- Bumped by every change of an account's settings: processes keep the
-- settings cached and reload them when this moves.
ALTER TABLE accounts ADD COLUMN settings_version BIGINT NOT NULL DEFAULT 0;

-- A contact's tag ids (in the order they were set, comma-separated) and its
-- custom field values (a JSON object by field id), kept beside the
-- normalised tables so that reading a contact reads one row.
ALTER TABLE contacts ADD COLUMN tag_ids TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN field_values TEXT NOT NULL DEFAULT '{}';
UPDATE contacts c SET tag_ids = t.ids
FROM (SELECT contact_id, string_agg(tag_id::text, ',' ORDER BY position) AS ids
      FROM contact_tags GROUP BY contact_id) t
WHERE t.contact_id = c.id;
UPDATE contacts c SET field_values = v.fields
FROM (SELECT contact_id, json_object_agg(field_id::text, value ORDER BY field_id)::text AS fields
      FROM contact_field_values GROUP BY contact_id) v
WHERE v.contact_id = c.id;

-- Tag memberships carry their contact's place in the newest-first order,
-- so a tag's contacts are listed by walking one index.
ALTER TABLE contact_tags ADD COLUMN created_at BIGINT;
ALTER TABLE contact_tags ADD COLUMN seq BIGINT;
UPDATE contact_tags ct SET created_at = c.created_at, seq = c.seq
FROM contacts c WHERE c.id = ct.contact_id;
ALTER TABLE contact_tags ALTER COLUMN created_at SET NOT NULL;
ALTER TABLE contact_tags ALTER COLUMN seq SET NOT NULL;
ALTER TABLE contact_tags DROP COLUMN position;
DROP INDEX contact_tags_by_tag;
CREATE INDEX contact_tags_newest_first ON contact_tags (tag_id, created_at DESC, seq DESC)
    INCLUDE (contact_id);

UPDATE accounts a SET contact_count =
    (SELECT count(*) FROM contacts c WHERE c.account_id = a.id);
UPDATE tags t SET contact_count =
    (SELECT count(*) FROM contact_tags ct WHERE ct.tag_id = t.id);
UPDATE teams t SET contact_count =
    (SELECT count(*) FROM contacts c WHERE c.team_id = t.id);
UPDATE channels ch SET contact_count =
    (SELECT count(*) FROM contacts c WHERE c.channel_id = ch.id);

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

-- `q`: substrings of the folded name and of the phone digits, through
-- trigram indexes (pg_trgm ships with PostgreSQL and is a trusted
-- extension: the database owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX contacts_name_trigrams ON contacts USING gin (name_key gin_trgm_ops);
CREATE INDEX contacts_digits_trigrams ON contacts USING gin (identifier_digits gin_trgm_ops);
