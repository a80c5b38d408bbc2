-- Users, rooms, rights and messages. Times are milliseconds since the Unix epoch.
CREATE TABLE users (
    id           TEXT PRIMARY KEY,
    nick         TEXT NOT NULL,
    avatar       TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);

CREATE TABLE rooms (
    id           TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    -- JSON object: room properties set by `x` holders.
    properties   TEXT NOT NULL DEFAULT '{}'
);

-- Rights per (room, user): r=0x0000FF, w=0x00FF00, x=0xFF0000.
CREATE TABLE room_members (
    room_id      TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL,
    mask         INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;

-- One row per accepted message. `id` is the global order; a room's or a conversation's history is a range
-- scan of the matching partial index.
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id       TEXT,
    peer_lo       TEXT,
    peer_hi       TEXT,
    sender        TEXT NOT NULL,
    sender_nick   TEXT NOT NULL,
    sender_avatar TEXT NOT NULL,
    kind          TEXT NOT NULL,
    cast_to       TEXT NOT NULL,
    target        TEXT NOT NULL,
    data          TEXT NOT NULL,
    payload       BLOB,
    created_ms    INTEGER NOT NULL
);

CREATE INDEX messages_by_room ON messages (room_id, id) WHERE room_id IS NOT NULL;
CREATE INDEX messages_by_peers ON messages (peer_lo, peer_hi, id) WHERE peer_lo IS NOT NULL;
