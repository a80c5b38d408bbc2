-- Search, redaction and retention (docs/storage.md, "Search", "Redaction", "Retention").

-- Full-text index of messages, one row per message (rowid = messages.id). The gateway writes it behind the send
-- path (rooms/indexer.rs) from the message's string values, already lower-cased and split into words, so both
-- backends index the same words; contentless (the words are not stored twice) with deletes allowed, so a
-- redacted or pruned message leaves the index. `_` is a word character here, and only here: the gateway's words
-- never hold one, so the one word per message that stands for its thread (`_thr...`) can never be typed.
CREATE VIRTUAL TABLE message_search USING fts5(
    words, content='', contentless_delete=1, tokenize="unicode61 remove_diacritics 0 tokenchars '_'"
);

-- The indexer's cursor and lease, beside the hooks' (same table, same lease rules); it starts from the first
-- message, so history stored before this migration is indexed too.
INSERT INTO hook_cursors (hook, last_id, owner, lease_until_ms) VALUES ('search-index', 0, '', 0)
    ON CONFLICT (hook) DO NOTHING;

-- A redacted message keeps its row (ids, order and thread stay) but loses its data and payload.
ALTER TABLE messages ADD COLUMN redacted_by TEXT;
ALTER TABLE messages ADD COLUMN redacted_ms BIGINT;

-- Per thread (the read-position key), the first message id retention kept: everything below it was pruned.
CREATE TABLE history_pruned (
    thread TEXT PRIMARY KEY,
    before_mid BIGINT NOT NULL
);

-- The pruner's lease (one node prunes at a time) and cursor (how far conversations were scanned).
INSERT INTO hook_cursors (hook, last_id, owner, lease_until_ms) VALUES ('retention', 0, '', 0)
    ON CONFLICT (hook) DO NOTHING;
