-- Accounts and sessions. Times are unix milliseconds (INTEGER; BIGINT in PostgreSQL).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    -- Stored lower-case (the domain type normalises); NOCASE makes uniqueness hold even so.
    username      TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

-- One row per login. The JWT names its row (`sid`); revoking the row revokes the token.
CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    -- Client IP at login: lets login throttling recognise an owner's usual place.
    created_ip TEXT    NOT NULL
);

CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
