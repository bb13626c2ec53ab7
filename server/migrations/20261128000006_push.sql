-- Web Push subscriptions (one per browser profile that granted notifications).
CREATE TABLE push_subscriptions (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The push service URL; unique: a browser re-subscribing replaces its row.
    endpoint   TEXT    NOT NULL UNIQUE,
    -- The browser's P-256 public key and auth secret (base64url), for RFC 8291 encryption.
    p256dh     TEXT    NOT NULL,
    auth       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id);
