-- How far each user has read each thread: `thread` is `r:<room id>` or `p:<lo>:<hi>` (a conversation, its two
-- user ids in order). Positions only move forward.
CREATE TABLE IF NOT EXISTS read_positions (
    user_id TEXT NOT NULL,
    thread TEXT NOT NULL,
    mid BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, thread)
);
