-- Rooms, DMs, memberships and messages.

ALTER TABLE users ADD COLUMN last_seen_at INTEGER;

CREATE TABLE rooms (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('room', 'dm')),
    -- NULL for DMs (shown as the other person's name).
    name       TEXT,
    topic      TEXT    NOT NULL DEFAULT '',
    visibility TEXT    NOT NULL CHECK (visibility IN ('public', 'private')),
    -- "<smaller user id>:<larger user id>" for DMs: one DM per pair.
    dm_key     TEXT    UNIQUE,
    created_at INTEGER NOT NULL,
    -- The newest message's seq; incremented in the same transaction as the insert.
    last_seq   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE members (
    room_id   INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;

CREATE INDEX members_by_user ON members (user_id, room_id);

CREATE TABLE messages (
    id         INTEGER PRIMARY KEY,
    room_id    INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    sender_id  INTEGER NOT NULL REFERENCES users (id),
    client_id  TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (room_id, seq),
    -- Idempotency: a sender's client id is stored once, whatever happens to the connection.
    UNIQUE (sender_id, client_id)
);
