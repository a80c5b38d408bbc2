-- Search, redaction and retention (docs/storage.md, "Search", "Redaction", "Retention").

-- Full-text index of messages, one row per message. The gateway writes it behind the send path
-- (rooms/indexer.rs) as a tsvector literal built from the message's string values, already lower-cased and
-- split into words with their positions, so both backends index the same words (no text search parser or
-- dictionary of PostgreSQL's is involved).
CREATE TABLE message_search (
    message_id BIGINT PRIMARY KEY,
    words      TSVECTOR NOT NULL
);
CREATE INDEX message_search_words ON message_search USING GIN (words);

-- The indexer's cursor and lease, beside the hooks' (same table, same lease rules); it starts from the first
-- message, so history stored before this migration is indexed too.
INSERT INTO hook_cursors (hook, last_id, owner, lease_until_ms) VALUES ('search-index', 0, '', 0)
    ON CONFLICT (hook) DO NOTHING;

-- A redacted message keeps its row (ids, order and thread stay) but loses its data and payload.
ALTER TABLE messages ADD COLUMN redacted_by TEXT, ADD COLUMN redacted_ms BIGINT;

-- Per thread (the read-position key), the first message id retention kept: everything below it was pruned.
CREATE TABLE history_pruned (
    thread TEXT PRIMARY KEY,
    before_mid BIGINT NOT NULL
);

-- The pruner's lease (one node prunes at a time) and cursor (how far conversations were scanned).
INSERT INTO hook_cursors (hook, last_id, owner, lease_until_ms) VALUES ('retention', 0, '', 0)
    ON CONFLICT (hook) DO NOTHING;
