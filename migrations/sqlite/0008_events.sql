-- The `events` hook's durable outbox: connects, disconnects, joins and leaves, in the order this node recorded
-- them, delivered to the backend in id order and deleted once delivered (docs/hooks.md, `events`).
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    room_id TEXT,
    node TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    detail TEXT NOT NULL
);
INSERT INTO hook_cursors (hook, last_id, owner, lease_until_ms) VALUES ('events', 0, '', 0)
    ON CONFLICT (hook) DO NOTHING;
