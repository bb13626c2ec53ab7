-- Edits, deletions, reactions and attachments.
--
-- Changes to existing messages get a per-room revision number (`rooms.last_rev`), assigned by
-- the single message writer in the same transaction as the change, like `seq` for new messages.
-- A client that resumes sends the last revision it saw and gets every message changed since.

ALTER TABLE rooms ADD COLUMN last_rev INTEGER NOT NULL DEFAULT 0;

-- The room revision of the message's last change; 0 when never changed.
ALTER TABLE messages ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted_at INTEGER;
-- JSON arrays kept in the row (read with every message, written only by the writer):
-- [{"emoji": "👍", "users": [3, 5]}] and the attachments as the API shows them.
ALTER TABLE messages ADD COLUMN reactions TEXT;
ALTER TABLE messages ADD COLUMN attachments TEXT;

CREATE INDEX messages_by_rev ON messages (room_id, rev) WHERE rev > 0;

-- Uploaded files. The file is stored at media/<id[0..2]>/<id> under the data dir (and
-- <id>.thumb for an image's thumbnail); nothing of the client's file name is in the path.
-- `message_id` is NULL until a message uses the upload; then the room's members may read it.
CREATE TABLE uploads (
    id           TEXT    PRIMARY KEY,
    owner_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    message_id   INTEGER REFERENCES messages (id),
    room_id      INTEGER REFERENCES rooms (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('image', 'file')),
    size         INTEGER NOT NULL,
    -- Bytes on disk including the thumbnail: what counts against the quota.
    stored_size  INTEGER NOT NULL,
    width        INTEGER,
    height       INTEGER,
    created_at   INTEGER NOT NULL
);

CREATE INDEX uploads_by_owner ON uploads (owner_id);
CREATE INDEX uploads_by_message ON uploads (message_id);
CREATE INDEX uploads_unused ON uploads (created_at) WHERE message_id IS NULL;
