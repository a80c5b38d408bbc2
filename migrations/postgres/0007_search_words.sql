-- Search words are now cut by Unicode word boundaries, with bigrams for CJK and Thai runs
-- (src/rooms/archive/words.rs): index everything again with the new cutting. Searches find less until the
-- indexer has caught up (it works through the messages in batches behind the send path).
DELETE FROM message_search;
UPDATE hook_cursors SET last_id = 0 WHERE hook = 'search-index';
