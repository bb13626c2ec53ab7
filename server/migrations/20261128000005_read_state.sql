-- Read state: one marker per member per room (no per-message receipt rows), mentions, mute,
-- and the receipts privacy setting.

-- The highest seq the member has read. Sending a message moves it to that message.
ALTER TABLE members ADD COLUMN last_read_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN muted INTEGER NOT NULL DEFAULT 0;

-- 1: the user's read markers are shown to others (and they see others'); 0: neither.
ALTER TABLE users ADD COLUMN share_receipts INTEGER NOT NULL DEFAULT 1;

-- Who a message mentions (members of its room only, never the sender): unread mention counts
-- are a range count on the primary key.
CREATE TABLE mentions (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
) WITHOUT ROWID;
