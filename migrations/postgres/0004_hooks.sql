-- Where each asynchronous hook has got to in the messages table (the durable outbox is the messages table
-- itself: a hook delivers the rows after `last_id`, in id order), and which node delivers it (a lease, so that
-- in a cluster one node at a time does).
CREATE TABLE IF NOT EXISTS hook_cursors (
    hook TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL,
    owner TEXT NOT NULL,
    lease_until_ms BIGINT NOT NULL
);
