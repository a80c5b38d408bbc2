-- Which node holds a session (cluster mode): a reconnect that lands on another node finds the owner here and
-- asks it to hand the session over.
CREATE TABLE sessions (
    uuid       TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    node       TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX sessions_updated ON sessions (updated_ms);
