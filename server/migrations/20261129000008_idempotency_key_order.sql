-- no-transaction
-- The idempotency key, ordered by client id first: UNIQUE (client_id, sender_id) replaces
-- UNIQUE (sender_id, client_id). The same constraint, and the same one-row lookup; what changes
-- is where a new key lands in the index. Ordered by sender, every message dirtied a page of its
-- sender's part of the index, so a group commit of N senders wrote N index pages to the WAL (and
-- the checkpoint wrote them again): 46 % of the WAL under S4a (docs/perf.md, eighth round).
-- Natter's web client begins its ids with the time (`<unix ms in hex>-<random>`), so ordered by
-- client id the keys of a commit land together on the index's last pages. A client that sends
-- random ids costs one index page a message, as every client did before.
--
-- SQLite cannot drop a table's UNIQUE constraint, so the table is rebuilt (SQLite's documented
-- twelve steps, https://sqlite.org/lang_altertable.html#otheralter). That needs foreign keys off,
-- which only takes effect outside a transaction: hence `no-transaction` above and an explicit
-- one here. Run again after a crash between its COMMIT and sqlx's bookkeeping, it rebuilds the
-- table again, to the same result.
--
-- No query looks messages up by sender alone; if one ever does (deleting an account, say), it
-- needs its own index on sender_id.
PRAGMA foreign_keys = OFF;

BEGIN IMMEDIATE;

DROP TABLE IF EXISTS messages_rebuilt;

CREATE TABLE messages_rebuilt (
    id          INTEGER PRIMARY KEY,
    room_id     INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    sender_id   INTEGER NOT NULL REFERENCES users (id),
    client_id   TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    reply_to    INTEGER REFERENCES messages (id),
    rev         INTEGER NOT NULL DEFAULT 0,
    edited_at   INTEGER,
    deleted_at  INTEGER,
    reactions   TEXT,
    attachments TEXT,
    UNIQUE (room_id, seq),
    -- Idempotency: a sender's client id is stored once, whatever happens to the connection.
    UNIQUE (client_id, sender_id)
);

INSERT INTO messages_rebuilt (id, room_id, seq, sender_id, client_id, body, created_at, reply_to,
                              rev, edited_at, deleted_at, reactions, attachments)
SELECT id, room_id, seq, sender_id, client_id, body, created_at, reply_to,
       rev, edited_at, deleted_at, reactions, attachments
FROM messages;

DROP TABLE messages;

ALTER TABLE messages_rebuilt RENAME TO messages;

CREATE INDEX messages_by_rev ON messages (room_id, rev) WHERE rev > 0;

COMMIT;

PRAGMA foreign_keys = ON;
