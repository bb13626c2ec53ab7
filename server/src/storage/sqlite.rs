//! The embedded SQLite implementation of [`Storage`]: one file in the data dir, WAL mode,
//! `synchronous=FULL` (an acknowledged write survives power loss), foreign keys on, and a busy
//! timeout so concurrent writers wait instead of failing.

use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use app::api::{AttachmentKind, Message, ReplyRef};
use app::domain::{
    ClientMessageId, DisplayName, MessageId, Role, RoomId, RoomKind, RoomName, Topic, UserId,
    Username, Visibility,
};
use async_trait::async_trait;
use rusqlite::OptionalExtension;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};

use super::{
    Change, ChangeOutcome, MemberRecord, MembershipRecord, NewRoom, NewSession, NewUser,
    PublicRoomRecord, PushSubscriptionRecord, ReadState, RoomRecord, Storage, StorageError,
    UploadRecord, UserRecord,
};

#[derive(Clone)]
pub struct SqliteStorage {
    pool: SqlitePool,
    /// Applies message changes on its own connection and thread (see `sqlite_writer.rs`).
    writer: writer::Writer,
    /// Runs the hot-path reads inline (see `sqlite_reader.rs`).
    readers: std::sync::Arc<reader::Readers>,
    /// The database (a file, or a `file:` URI in tests).
    path: std::path::PathBuf,
}

/// How long a connection waits for another's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(FromRow)]
struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    created_at: i64,
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StorageError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        let corrupt = |e: app::domain::DomainError| StorageError::Corrupt(e.to_string());
        Ok(UserRecord {
            id: UserId::new(row.id),
            username: Username::parse(&row.username).map_err(corrupt)?,
            display_name: DisplayName::parse(&row.display_name).map_err(corrupt)?,
            created_at: row.created_at,
        })
    }
}

fn corrupt(what: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(what.to_string())
}

#[derive(FromRow)]
struct RoomRow {
    id: i64,
    kind: String,
    name: Option<String>,
    topic: String,
    visibility: String,
    created_at: i64,
    last_seq: i64,
}

macro_rules! room_columns {
    () => {
        "r.id, r.kind, r.name, r.topic, r.visibility, r.created_at, r.last_seq"
    };
}

/// A user's rooms (`?1`; all of them, or only `?2`) with their membership, unread mentions,
/// member count and, for a DM, the other person.
///
/// The DM peer's join seeks `members` with the room id only for a DM (`CASE`): written as
/// `ON r.kind = 'dm' AND pm.room_id = r.id`, SQLite walked every member of a group room and
/// tested the kind on each, so every `hello` read each of the user's rooms whole (480 µs
/// instead of 30 µs for a member of a 5,000-member room, docs/perf.md twelfth round).
const MEMBERSHIPS: &str = concat!(
    "SELECT ",
    room_columns!(),
    ", m.role, m.last_read_seq, m.muted,
        (SELECT COUNT(*) FROM mentions x
         WHERE x.user_id = m.user_id AND x.room_id = r.id AND x.seq > m.last_read_seq)
         AS mentions,
        r.member_count,
        p.id AS peer_id, p.username AS peer_username,
        p.display_name AS peer_display_name, p.created_at AS peer_created_at
     FROM members m
     JOIN rooms r ON r.id = m.room_id
     LEFT JOIN members pm
       ON pm.room_id = CASE WHEN r.kind = 'dm' THEN r.id END AND pm.user_id != m.user_id
     LEFT JOIN users p ON p.id = pm.user_id
     WHERE m.user_id = ?1 AND (?2 IS NULL OR r.id = ?2)
     ORDER BY m.room_id"
);

impl TryFrom<RoomRow> for RoomRecord {
    type Error = StorageError;

    fn try_from(row: RoomRow) -> Result<Self, Self::Error> {
        Ok(RoomRecord {
            id: RoomId::new(row.id),
            kind: match row.kind.as_str() {
                "room" => RoomKind::Room,
                "dm" => RoomKind::Dm,
                other => return Err(corrupt(format!("room kind {other}"))),
            },
            name: row
                .name
                .as_deref()
                .map(RoomName::parse)
                .transpose()
                .map_err(corrupt)?,
            topic: Topic::parse(&row.topic).map_err(corrupt)?,
            visibility: match row.visibility.as_str() {
                "public" => Visibility::Public,
                "private" => Visibility::Private,
                other => return Err(corrupt(format!("visibility {other}"))),
            },
            created_at: row.created_at,
            last_seq: row.last_seq,
        })
    }
}

fn parse_role(s: &str) -> Result<Role, StorageError> {
    Role::parse(s).ok_or_else(|| corrupt(format!("role {s}")))
}

fn visibility_str(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => "public",
        Visibility::Private => "private",
    }
}

#[derive(FromRow)]
struct MessageRow {
    id: i64,
    room_id: i64,
    seq: i64,
    sender_id: i64,
    client_id: String,
    body: String,
    created_at: i64,
    rev: i64,
    edited_at: Option<i64>,
    deleted_at: Option<i64>,
    reactions: Option<String>,
    attachments: Option<String>,
    reply_id: Option<i64>,
    reply_seq: Option<i64>,
    reply_sender_id: Option<i64>,
    /// The quoted message's whole body: its excerpt is taken from its plain text.
    reply_body: Option<String>,
    reply_deleted_at: Option<i64>,
}

/// A room's members with what others may see of them (`?`: the room id).
macro_rules! member_select {
    () => {
        "SELECT u.id, u.username, u.display_name, u.created_at, u.last_seen_at, m.role,
                CASE WHEN u.share_receipts THEN m.last_read_seq END AS last_read_seq
         FROM members m JOIN users u ON u.id = m.user_id
         WHERE m.room_id = ?"
    };
}

#[derive(FromRow)]
struct MemberRow {
    #[sqlx(flatten)]
    user: UserRow,
    role: String,
    last_seen_at: Option<i64>,
    last_read_seq: Option<i64>,
}

impl TryFrom<MemberRow> for MemberRecord {
    type Error = StorageError;

    fn try_from(row: MemberRow) -> Result<Self, Self::Error> {
        Ok(MemberRecord {
            user: row.user.try_into()?,
            role: parse_role(&row.role)?,
            last_seen_at: row.last_seen_at,
            last_read_seq: row.last_read_seq,
        })
    }
}

/// Message columns, with the quoted message (if any) joined in: `FROM messages m LEFT JOIN
/// messages r ON r.id = m.reply_to` (see `message_from!`).
macro_rules! message_columns {
    () => {
        "m.id, m.room_id, m.seq, m.sender_id, m.client_id, m.body, m.created_at,
         m.rev, m.edited_at, m.deleted_at, m.reactions, m.attachments,
         r.id AS reply_id, r.seq AS reply_seq, r.sender_id AS reply_sender_id,
         r.body AS reply_body, r.deleted_at AS reply_deleted_at"
    };
}

macro_rules! message_from {
    () => {
        " FROM messages m LEFT JOIN messages r ON r.id = m.reply_to "
    };
}

fn from_json<T: serde::de::DeserializeOwned + Default>(
    json: Option<&str>,
) -> Result<T, StorageError> {
    json.map_or(Ok(T::default()), |j| {
        serde_json::from_str(j).map_err(corrupt)
    })
}

/// `NULL` for an empty list, so untouched messages carry nothing.
fn to_json<T: serde::Serialize>(list: &[T]) -> Result<Option<String>, StorageError> {
    if list.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(list).map(Some).map_err(corrupt)
}

/// How a message shows the one it quotes (`body`: the quoted message's whole body).
fn reply_ref(id: i64, seq: i64, sender: i64, body: Option<&str>, deleted: bool) -> ReplyRef {
    ReplyRef {
        id: MessageId::new(id),
        seq,
        sender_id: UserId::new(sender),
        excerpt: body
            .map(|body| app::markdown::excerpt(&app::markdown::parse(body)))
            .unwrap_or_default(),
        deleted,
    }
}

impl TryFrom<MessageRow> for Message {
    type Error = StorageError;

    fn try_from(row: MessageRow) -> Result<Self, Self::Error> {
        Ok(Message {
            id: MessageId::new(row.id),
            room_id: RoomId::new(row.room_id),
            seq: row.seq,
            sender_id: UserId::new(row.sender_id),
            client_id: ClientMessageId::parse(&row.client_id).map_err(corrupt)?,
            formatted: app::markdown::format(&row.body),
            body: row.body,
            created_at: row.created_at,
            rev: row.rev,
            edited_at: row.edited_at,
            deleted: row.deleted_at.is_some(),
            reply_to: match (row.reply_id, row.reply_seq, row.reply_sender_id) {
                (Some(id), Some(seq), Some(sender)) => Some(reply_ref(
                    id,
                    seq,
                    sender,
                    row.reply_body.as_deref(),
                    row.reply_deleted_at.is_some(),
                )),
                _ => None,
            },
            attachments: from_json(row.attachments.as_deref())?,
            reactions: from_json(row.reactions.as_deref())?,
        })
    }
}

#[derive(FromRow)]
struct UploadRow {
    id: String,
    owner_id: i64,
    message_id: Option<i64>,
    room_id: Option<i64>,
    name: String,
    content_type: String,
    kind: String,
    size: i64,
    stored_size: i64,
    width: Option<i64>,
    height: Option<i64>,
    created_at: i64,
}

macro_rules! upload_columns {
    () => {
        "id, owner_id, message_id, room_id, name, content_type, kind, size, stored_size, width,
         height, created_at"
    };
}

impl TryFrom<UploadRow> for UploadRecord {
    type Error = StorageError;

    fn try_from(row: UploadRow) -> Result<Self, Self::Error> {
        let dim = |v: Option<i64>| v.map(u32::try_from).transpose().map_err(corrupt);
        Ok(UploadRecord {
            id: row.id,
            owner_id: UserId::new(row.owner_id),
            message_id: row.message_id.map(MessageId::new),
            room_id: row.room_id.map(RoomId::new),
            name: row.name,
            content_type: row.content_type,
            kind: match row.kind.as_str() {
                "image" => AttachmentKind::Image,
                "file" => AttachmentKind::File,
                other => return Err(corrupt(format!("upload kind {other}"))),
            },
            size: row.size,
            stored_size: row.stored_size,
            width: dim(row.width)?,
            height: dim(row.height)?,
            created_at: row.created_at,
        })
    }
}

// The writer's statements use the column macros above: declared after them.
#[path = "sqlite_reader.rs"]
mod reader;
#[path = "sqlite_writer.rs"]
mod writer;

fn push_record(
    (user_id, endpoint, p256dh, auth, created_at): (i64, String, String, String, i64),
) -> PushSubscriptionRecord {
    PushSubscriptionRecord {
        user_id: UserId::new(user_id),
        endpoint,
        p256dh,
        auth,
        created_at,
    }
}

/// Runs the migrations `pool`'s database has not had yet. An upgrade can rebuild a table
/// (migration 8: minutes for 10 million messages, docs/perf.md), so one that has work to do
/// on an existing database says so before it starts and how long it took after.
async fn migrate(pool: &SqlitePool) -> Result<(), StorageError> {
    let migrator = sqlx::migrate!("./migrations");
    // No table yet: a new database, quick to set up.
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    let pending = migrator
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .count();
    let upgrade = pending > 0 && !applied.is_empty();
    if upgrade {
        tracing::info!(
            pending,
            "upgrading the database: a large one can take minutes, once"
        );
    }
    let started = std::time::Instant::now();
    migrator.run(pool).await?;
    if upgrade {
        // A rebuilt table went through the WAL whole (5.8 GB for 10 million messages). Copy it
        // back and cut the file now, while nothing else writes: left to the checkpoint thread,
        // the file kept its size, and a stop during that copy could not empty it either.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await?;
        tracing::info!(secs = started.elapsed().as_secs_f64(), "database upgraded");
    }
    Ok(())
}

impl SqliteStorage {
    /// Opens (creating if needed) `natter.db` in `data_dir` and runs pending migrations.
    pub async fn open(data_dir: &Path) -> Result<Self, StorageError> {
        let file = data_dir.join("natter.db");
        let options = SqliteConnectOptions::new()
            .filename(&file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Deleted messages must be gone from the file, not just unlinked: freed space is
            // overwritten with zeros.
            .pragma("secure_delete", "ON")
            // The writer's checkpoint thread copies the WAL back (see sqlite_writer.rs).
            .pragma("wal_autocheckpoint", "0")
            .pragma("cache_size", "-1024")
            .busy_timeout(BUSY_TIMEOUT);
        Self::with_options(options, 8, &file, false).await
    }

    /// A private in-memory database (unit tests), shared by the pool's one connection and the
    /// writer's through SQLite's shared cache under a unique name.
    pub async fn in_memory() -> Result<Self, StorageError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let uri = format!(
            "file:natter-test-{}-{n}?mode=memory&cache=shared",
            std::process::id()
        );
        let options = SqliteConnectOptions::from_str(&format!("sqlite:{uri}"))?.foreign_keys(true);
        Self::with_options(options, 1, Path::new(&uri), true).await
    }

    async fn with_options(
        options: SqliteConnectOptions,
        max_connections: u32,
        writer_path: &Path,
        shared_cache: bool,
    ) -> Result<Self, StorageError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        migrate(&pool).await?;
        let writer = writer::Writer::start(writer_path)?;
        let readers = std::sync::Arc::new(reader::Readers::new(writer_path, shared_cache));
        Ok(Self {
            pool,
            writer,
            readers,
            path: writer_path.to_owned(),
        })
    }
}

impl SqliteStorage {
    /// Messages from a `SELECT` of [`message_columns!`], in the query's order (`reversed`: in
    /// the opposite order).
    fn read_messages(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
        reversed: bool,
    ) -> Result<Vec<Message>, StorageError> {
        let mut rows: Vec<MessageRow> = self.readers.with(|conn| {
            let mut statement = conn.prepare_cached(sql)?;
            let rows = statement.query_map(params, writer::message_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        if reversed {
            rows.reverse();
        }
        rows.into_iter().map(TryInto::try_into).collect()
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait]
impl Storage for SqliteStorage {
    #[tracing::instrument(skip_all)]
    async fn create_user(&self, new: NewUser) -> Result<UserRecord, StorageError> {
        let row: UserRow = sqlx::query_as(
            "INSERT INTO users (username, display_name, password_hash, created_at)
             VALUES (?, ?, ?, ?)
             RETURNING id, username, display_name, created_at",
        )
        .bind(new.username.as_str())
        .bind(new.display_name.as_str())
        .bind(&new.password_hash)
        .bind(new.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StorageError::UsernameTaken
            } else {
                e.into()
            }
        })?;
        row.try_into()
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    async fn read_user(&self, id: UserId) -> Result<Option<UserRecord>, StorageError> {
        let row: Option<UserRow> =
            sqlx::query_as("SELECT id, username, display_name, created_at FROM users WHERE id = ?")
                .bind(id.get())
                .fetch_optional(&self.pool)
                .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn read_session_user(
        &self,
        session: &str,
        now: i64,
    ) -> Result<Option<(UserRecord, bool)>, StorageError> {
        let row = self.readers.with(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT u.id, u.username, u.display_name, u.created_at, u.share_receipts
                     FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.id = ? AND s.revoked_at IS NULL AND s.expires_at > ?",
                )?
                .query_row(rusqlite::params![session, now], |r| {
                    Ok((reader::user_row(r, 0)?, r.get::<_, bool>(4)?))
                })
                .optional()?)
        })?;
        row.map(|(user, share)| Ok((user.try_into()?, share)))
            .transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn read_user_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<(UserRecord, String)>, StorageError> {
        // Inline, like the socket's reads: on the sqlx pool a sign-in woke a worker thread,
        // which could take the core from the chat's runtime thread (see the writer's
        // `create_session`).
        let row = self.readers.with(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT id, username, display_name, created_at, password_hash
                     FROM users WHERE username = ?",
                )?
                .query_row(rusqlite::params![username.as_str()], |r| {
                    Ok((reader::user_row(r, 0)?, r.get::<_, String>(4)?))
                })
                .optional()?)
        })?;
        row.map(|(user, hash)| Ok((user.try_into()?, hash)))
            .transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn read_user_by_username(
        &self,
        username: &Username,
    ) -> Result<Option<UserRecord>, StorageError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, username, display_name, created_at FROM users WHERE username = ?",
        )
        .bind(username.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn read_users_by_prefix(
        &self,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<UserRecord>, StorageError> {
        // Escape LIKE wildcards: usernames may contain '_'.
        let pattern = format!(
            "{}%",
            prefix
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT id, username, display_name, created_at FROM users
             WHERE username LIKE ? ESCAPE '\\' ORDER BY username LIMIT ?",
        )
        .bind(pattern)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    #[tracing::instrument(skip_all, fields(users = seen.len()))]
    async fn update_users_last_seen(&self, seen: &[(UserId, i64)]) -> Result<(), StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for &(user, at) in seen {
            sqlx::query(
                "UPDATE users SET last_seen_at = MAX(?, COALESCE(last_seen_at, 0)) WHERE id = ?",
            )
            .bind(at)
            .bind(user.get())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    async fn replace_password_hash(
        &self,
        user: UserId,
        old: &str,
        new: &str,
    ) -> Result<(), StorageError> {
        sqlx::query("UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?")
            .bind(new)
            .bind(user.get())
            .bind(old)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %new.user_id))]
    async fn create_session(&self, new: NewSession) -> Result<(), StorageError> {
        self.writer.create_session(new).await
    }

    #[tracing::instrument(skip_all)]
    async fn read_active_session(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<UserId>, StorageError> {
        // Inline: every authenticated request reads it (see `sqlite_reader.rs`).
        let user: Option<i64> = self.readers.with(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT user_id FROM sessions
                     WHERE id = ? AND revoked_at IS NULL AND expires_at > ?",
                )?
                .query_row(rusqlite::params![id, now], |r| r.get(0))
                .optional()?)
        })?;
        Ok(user.map(UserId::new))
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    async fn read_user_signed_in_from(
        &self,
        user: UserId,
        ip: IpAddr,
    ) -> Result<bool, StorageError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sessions WHERE user_id = ? AND created_ip = ? LIMIT 1",
        )
        .bind(user.get())
        .bind(ip.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    #[tracing::instrument(skip_all)]
    async fn update_session_revoked(&self, id: &str, now: i64) -> Result<(), StorageError> {
        sqlx::query("UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    async fn update_user_sessions_revoked(
        &self,
        user: UserId,
        now: i64,
    ) -> Result<u64, StorageError> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user.get())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(skip_all)]
    async fn delete_sessions_ended_before(&self, before: i64) -> Result<u64, StorageError> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE expires_at < ?1 OR (revoked_at IS NOT NULL AND revoked_at < ?1)",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(skip_all)]
    async fn create_room(&self, new: NewRoom) -> Result<RoomRecord, StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row: RoomRow = sqlx::query_as(
            "INSERT INTO rooms AS r (kind, name, topic, visibility, created_at)
             VALUES ('room', ?, ?, ?, ?)
             RETURNING id, kind, name, topic, visibility, created_at, last_seq",
        )
        .bind(new.name.as_str())
        .bind(new.topic.as_str())
        .bind(visibility_str(new.visibility))
        .bind(new.created_at)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO members (room_id, user_id, role, joined_at) VALUES (?, ?, 'owner', ?)",
        )
        .bind(row.id)
        .bind(new.owner.get())
        .bind(new.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        row.try_into()
    }

    #[tracing::instrument(skip_all)]
    async fn create_or_read_dm(
        &self,
        a: UserId,
        b: UserId,
        now: i64,
    ) -> Result<(RoomRecord, bool), StorageError> {
        let key = format!("{}:{}", a.get().min(b.get()), a.get().max(b.get()));
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let created: Option<i64> = sqlx::query_scalar(
            "INSERT INTO rooms (kind, name, topic, visibility, dm_key, created_at)
             VALUES ('dm', NULL, '', 'private', ?, ?)
             ON CONFLICT (dm_key) DO NOTHING
             RETURNING id",
        )
        .bind(&key)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = created {
            for user in [a, b] {
                sqlx::query(
                    "INSERT INTO members (room_id, user_id, role, joined_at) VALUES (?, ?, 'member', ?)",
                )
                .bind(id)
                .bind(user.get())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        let row: RoomRow = sqlx::query_as(concat!(
            "SELECT ",
            room_columns!(),
            " FROM rooms r WHERE r.dm_key = ?"
        ))
        .bind(&key)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((row.try_into()?, created.is_some()))
    }

    #[tracing::instrument(skip_all, fields(room_id = %room, user_id = %user))]
    async fn create_member(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
        now: i64,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO members (room_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(room.get())
        .bind(user.get())
        .bind(role.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(skip_all, fields(room_id = %id))]
    async fn read_room(&self, id: RoomId) -> Result<Option<RoomRecord>, StorageError> {
        let row: Option<RoomRow> = sqlx::query_as(concat!(
            "SELECT ",
            room_columns!(),
            " FROM rooms r WHERE r.id = ?"
        ))
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn read_room_cursors(&self) -> Result<Vec<(RoomId, i64, i64)>, StorageError> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as("SELECT id, last_seq, last_rev FROM rooms")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, seq, rev)| (RoomId::new(id), seq, rev))
            .collect())
    }

    #[tracing::instrument(skip_all, fields(room_id = %room, user_id = %user))]
    async fn read_role(&self, room: RoomId, user: UserId) -> Result<Option<Role>, StorageError> {
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM members WHERE room_id = ? AND user_id = ?")
                .bind(room.get())
                .bind(user.get())
                .fetch_optional(&self.pool)
                .await?;
        role.as_deref().map(parse_role).transpose()
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    async fn read_memberships(
        &self,
        user: UserId,
        only: Option<RoomId>,
    ) -> Result<Vec<MembershipRecord>, StorageError> {
        struct Row {
            room: RoomRow,
            role: String,
            member_count: i64,
            peer: Option<UserRow>,
            last_read_seq: i64,
            muted: bool,
            mentions: i64,
        }
        let rows: Vec<Row> = self.readers.with(|conn| {
            let mut statement = conn.prepare_cached(MEMBERSHIPS)?;
            let rows =
                statement.query_map(rusqlite::params![user.get(), only.map(RoomId::get)], |r| {
                    // By position (see `reader::user_row`): the room's seven columns, then
                    // the membership's, the two counts and the DM peer.
                    let peer = match r.get::<_, Option<i64>>(12)? {
                        Some(_) => Some(reader::user_row(r, 12)?),
                        None => None,
                    };
                    Ok(Row {
                        room: reader::room_row(r, 0)?,
                        role: r.get(7)?,
                        last_read_seq: r.get(8)?,
                        muted: r.get(9)?,
                        mentions: r.get(10)?,
                        member_count: r.get(11)?,
                        peer,
                    })
                })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        rows.into_iter()
            .map(|row| {
                let room: RoomRecord = row.room.try_into()?;
                let read = ReadState {
                    last_read_seq: row.last_read_seq,
                    unread: (room.last_seq - row.last_read_seq).max(0),
                    mentions: row.mentions,
                };
                Ok(MembershipRecord {
                    room,
                    role: parse_role(&row.role)?,
                    member_count: row.member_count,
                    peer: row.peer.map(TryInto::try_into).transpose()?,
                    read,
                    muted: row.muted,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all, fields(user_id = %viewer))]
    async fn read_public_rooms(
        &self,
        viewer: UserId,
    ) -> Result<Vec<PublicRoomRecord>, StorageError> {
        #[derive(FromRow)]
        struct Row {
            #[sqlx(flatten)]
            room: RoomRow,
            member_count: i64,
            joined: bool,
        }
        let rows: Vec<Row> = sqlx::query_as(concat!("SELECT ", room_columns!(), ",
                    r.member_count,
                    EXISTS (SELECT 1 FROM members j WHERE j.room_id = r.id AND j.user_id = ?) AS joined
             FROM rooms r
             WHERE r.kind = 'room' AND r.visibility = 'public'
             ORDER BY r.name COLLATE NOCASE
             LIMIT 500"))
        .bind(viewer.get())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(PublicRoomRecord {
                    room: row.room.try_into()?,
                    member_count: row.member_count,
                    joined: row.joined,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all, fields(room_id = %room))]
    async fn read_members(&self, room: RoomId) -> Result<Vec<MemberRecord>, StorageError> {
        let rows: Vec<MemberRow> =
            sqlx::query_as(concat!(member_select!(), " ORDER BY u.username"))
                .bind(room.get())
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    #[tracing::instrument(skip_all, fields(room_id = %room, user_id = %user))]
    async fn read_member(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<MemberRecord>, StorageError> {
        // The primary key (room_id, user_id): one row, however large the room.
        let row: Option<MemberRow> =
            sqlx::query_as(concat!(member_select!(), " AND m.user_id = ?"))
                .bind(room.get())
                .bind(user.get())
                .fetch_optional(&self.pool)
                .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(skip_all, fields(room_id = %id))]
    async fn update_room(
        &self,
        id: RoomId,
        name: Option<&RoomName>,
        topic: Option<&Topic>,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE rooms SET name = COALESCE(?, name), topic = COALESCE(?, topic) WHERE id = ?",
        )
        .bind(name.map(RoomName::as_str))
        .bind(topic.map(Topic::as_str))
        .bind(id.get())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(room_id = %room, user_id = %user))]
    async fn update_member_role(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE members SET role = ? WHERE room_id = ? AND user_id = ?")
            .bind(role.as_str())
            .bind(room.get())
            .bind(user.get())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(skip_all, fields(room_id = %room, user_id = %user))]
    async fn delete_member(&self, room: RoomId, user: UserId) -> Result<bool, StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let role: Option<String> = sqlx::query_scalar(
            "DELETE FROM members WHERE room_id = ? AND user_id = ? RETURNING role",
        )
        .bind(room.get())
        .bind(user.get())
        .fetch_optional(&mut *tx)
        .await?;
        if role.as_deref() == Some("owner") {
            // A room always has an owner while it has members: the senior admin, else the
            // senior member, takes over.
            sqlx::query(
                "UPDATE members SET role = 'owner'
                 WHERE room_id = ?1 AND user_id = (
                     SELECT user_id FROM members WHERE room_id = ?1
                     ORDER BY CASE role WHEN 'admin' THEN 0 ELSE 1 END, joined_at, user_id
                     LIMIT 1)",
            )
            .bind(room.get())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(role.is_some())
    }

    #[tracing::instrument(skip_all, fields(batch = batch.len()))]
    async fn apply_changes(&self, batch: Vec<Change>) -> Result<Vec<ChangeOutcome>, StorageError> {
        self.writer.apply(batch).await
    }

    #[tracing::instrument(skip_all, fields(room_id = %room))]
    async fn read_messages_changed(
        &self,
        room: RoomId,
        upto_seq: i64,
        after_rev: i64,
        upto_rev: i64,
        limit: i64,
    ) -> Result<Vec<Message>, StorageError> {
        // `m.rev > 0` lets SQLite use the partial index `messages_by_rev`.
        self.read_messages(
            concat!(
                "SELECT ",
                message_columns!(),
                message_from!(),
                "WHERE m.room_id = ? AND m.rev > 0 AND m.rev > ? AND m.rev <= ? AND m.seq <= ?
                 ORDER BY m.rev LIMIT ?"
            ),
            rusqlite::params![room.get(), after_rev, upto_rev, upto_seq, limit],
            false,
        )
    }

    #[tracing::instrument(skip_all, fields(room_id = %room))]
    async fn read_messages_between(
        &self,
        room: RoomId,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<Message>, StorageError> {
        self.read_messages(
            concat!(
                "SELECT ",
                message_columns!(),
                message_from!(),
                "WHERE m.room_id = ? AND m.seq > ? AND m.seq <= ? ORDER BY m.seq LIMIT ?"
            ),
            rusqlite::params![room.get(), after, upto, limit],
            false,
        )
    }

    #[tracing::instrument(skip_all, fields(room_id = %room))]
    async fn read_messages_before(
        &self,
        room: RoomId,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Message>, StorageError> {
        self.read_messages(
            concat!(
                "SELECT ",
                message_columns!(),
                message_from!(),
                "WHERE m.room_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?"
            ),
            rusqlite::params![room.get(), before.unwrap_or(i64::MAX), limit],
            true,
        )
    }

    #[tracing::instrument(skip_all, fields(room_id = %room, user_id = %user))]
    async fn update_last_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: i64,
    ) -> Result<Option<(ReadState, bool)>, StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let moved = sqlx::query(
            "UPDATE members
             SET last_read_seq = MIN(?1, (SELECT last_seq FROM rooms WHERE id = ?2))
             WHERE room_id = ?2 AND user_id = ?3 AND last_read_seq < ?1
               AND last_read_seq < (SELECT last_seq FROM rooms WHERE id = ?2)",
        )
        .bind(seq)
        .bind(room.get())
        .bind(user.get())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT m.last_read_seq, r.last_seq,
                    (SELECT COUNT(*) FROM mentions x
                     WHERE x.user_id = m.user_id AND x.room_id = m.room_id
                       AND x.seq > m.last_read_seq)
             FROM members m JOIN rooms r ON r.id = m.room_id
             WHERE m.room_id = ? AND m.user_id = ?",
        )
        .bind(room.get())
        .bind(user.get())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.map(|(last_read_seq, last_seq, mentions)| {
            let state = ReadState {
                last_read_seq,
                unread: (last_seq - last_read_seq).max(0),
                mentions,
            };
            (state, moved)
        }))
    }

    async fn update_muted(
        &self,
        room: RoomId,
        user: UserId,
        muted: bool,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE members SET muted = ? WHERE room_id = ? AND user_id = ?")
            .bind(muted)
            .bind(room.get())
            .bind(user.get())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn read_share_receipts(&self, user: UserId) -> Result<bool, StorageError> {
        let share: Option<bool> =
            sqlx::query_scalar("SELECT share_receipts FROM users WHERE id = ?")
                .bind(user.get())
                .fetch_optional(&self.pool)
                .await?;
        Ok(share.unwrap_or(true))
    }

    async fn update_share_receipts(&self, user: UserId, share: bool) -> Result<(), StorageError> {
        sqlx::query("UPDATE users SET share_receipts = ? WHERE id = ?")
            .bind(share)
            .bind(user.get())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_push_subscription(
        &self,
        sub: &PushSubscriptionRecord,
        max_per_user: i64,
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id,
                 p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at",
        )
        .bind(sub.user_id.get())
        .bind(&sub.endpoint)
        .bind(&sub.p256dh)
        .bind(&sub.auth)
        .bind(sub.created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM push_subscriptions WHERE user_id = ?1 AND id NOT IN (
                 SELECT id FROM push_subscriptions WHERE user_id = ?1
                 ORDER BY created_at DESC, id DESC LIMIT ?2)",
        )
        .bind(sub.user_id.get())
        .bind(max_per_user)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_push_subscription(
        &self,
        endpoint: &str,
        user: Option<UserId>,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "DELETE FROM push_subscriptions WHERE endpoint = ? AND (?2 IS NULL OR user_id = ?2)",
        )
        .bind(endpoint)
        .bind(user.map(UserId::get))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn read_push_subscriptions(
        &self,
        user: UserId,
    ) -> Result<Vec<PushSubscriptionRecord>, StorageError> {
        let rows: Vec<(i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT user_id, endpoint, p256dh, auth, created_at FROM push_subscriptions
             WHERE user_id = ? ORDER BY id",
        )
        .bind(user.get())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(push_record).collect())
    }

    async fn read_push_users(&self) -> Result<Vec<UserId>, StorageError> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT DISTINCT user_id FROM push_subscriptions")
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(UserId::new).collect())
    }

    async fn read_push_targets(
        &self,
        room: RoomId,
        seq: i64,
        sender: UserId,
    ) -> Result<Vec<PushSubscriptionRecord>, StorageError> {
        let rows: Vec<(i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT p.user_id, p.endpoint, p.p256dh, p.auth, p.created_at
             FROM members m
             JOIN rooms r ON r.id = m.room_id
             JOIN push_subscriptions p ON p.user_id = m.user_id
             WHERE m.room_id = ?1 AND m.user_id != ?3 AND NOT m.muted
               AND (r.kind = 'dm' OR EXISTS (
                   SELECT 1 FROM mentions x
                   WHERE x.user_id = m.user_id AND x.room_id = ?1 AND x.seq = ?2))
             ORDER BY p.id",
        )
        .bind(room.get())
        .bind(seq)
        .bind(sender.get())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(push_record).collect())
    }

    #[tracing::instrument(skip_all, fields(user_id = %upload.owner_id))]
    async fn create_upload(&self, upload: &UploadRecord, quota: i64) -> Result<bool, StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let used: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(stored_size), 0) FROM uploads WHERE owner_id = ?",
        )
        .bind(upload.owner_id.get())
        .fetch_one(&mut *tx)
        .await?;
        if used.saturating_add(upload.stored_size) > quota {
            return Ok(false);
        }
        sqlx::query(concat!(
            "INSERT INTO uploads (",
            upload_columns!(),
            ") VALUES (?, ?, NULL, NULL, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&upload.id)
        .bind(upload.owner_id.get())
        .bind(&upload.name)
        .bind(&upload.content_type)
        .bind(match upload.kind {
            AttachmentKind::Image => "image",
            AttachmentKind::File => "file",
        })
        .bind(upload.size)
        .bind(upload.stored_size)
        .bind(upload.width.map(i64::from))
        .bind(upload.height.map(i64::from))
        .bind(upload.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn read_upload(&self, id: &str) -> Result<Option<UploadRecord>, StorageError> {
        let row: Option<UploadRow> = sqlx::query_as(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn read_upload_usage(&self, owner: UserId) -> Result<i64, StorageError> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(SUM(stored_size), 0) FROM uploads WHERE owner_id = ?",
        )
        .bind(owner.get())
        .fetch_one(&self.pool)
        .await?)
    }

    async fn delete_unused_uploads(&self, before: i64) -> Result<Vec<String>, StorageError> {
        Ok(sqlx::query_scalar(
            "DELETE FROM uploads WHERE message_id IS NULL AND created_at < ? RETURNING id",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn close(&self) {
        self.pool.close().await;
        self.readers.close();
        let path = self.path.clone();
        match tokio::task::spawn_blocking(move || writer::empty_wal(&path)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = ?e, "could not empty the WAL at shutdown"),
            Err(e) => tracing::warn!(error = %e, "could not empty the WAL at shutdown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::NewMessage;

    async fn add_alice(s: &SqliteStorage) -> UserRecord {
        crate::storage::test_data::alice(s).await
    }

    async fn storage_with_alice() -> (SqliteStorage, UserRecord) {
        let s = SqliteStorage::in_memory().await.unwrap();
        let alice = add_alice(&s).await;
        (s, alice)
    }

    /// A rehash replaces the hash it was made from, and nothing that replaced that meanwhile.
    #[tokio::test]
    async fn a_password_hash_is_replaced_only_if_it_is_still_the_old_one() {
        let (s, alice) = storage_with_alice().await;
        let stored = async || {
            s.read_user_credentials(&alice.username)
                .await
                .unwrap()
                .unwrap()
                .1
        };
        s.replace_password_hash(alice.id, "hash", "rehashed")
            .await
            .unwrap();
        assert_eq!(stored().await, "rehashed");
        s.replace_password_hash(alice.id, "hash", "stale")
            .await
            .unwrap();
        assert_eq!(stored().await, "rehashed", "a stale rehash changes nothing");
    }

    /// A database in a file (WAL, the writer's threads), alice, and her room.
    async fn on_disk_with_a_room() -> (tempfile::TempDir, SqliteStorage, UserRecord, RoomRecord) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStorage::open(dir.path()).await.unwrap();
        let (alice, room) = crate::storage::test_data::alice_with_a_room(&s).await;
        (dir, s, alice, room)
    }

    #[tokio::test]
    async fn last_seen_is_written_for_many_users_at_once_and_never_goes_back() {
        let (_dir, s, alice, room) = on_disk_with_a_room().await;
        let seen = |s: SqliteStorage| async move {
            s.read_members(room.id).await.unwrap()[0].last_seen_at
        };
        assert_eq!(seen(s.clone()).await, None);
        // A user id with no account (deleted meanwhile) is skipped, not an error.
        s.update_users_last_seen(&[(alice.id, 50), (UserId::new(999), 60)])
            .await
            .unwrap();
        assert_eq!(seen(s.clone()).await, Some(50));
        s.update_users_last_seen(&[(alice.id, 40)]).await.unwrap();
        assert_eq!(
            seen(s.clone()).await,
            Some(50),
            "an older time does not win"
        );
    }

    /// SQLite's VM steps to list `user`'s rooms (the room list of a `hello`): how much of the
    /// database the query walks, counted, not timed.
    fn membership_steps(s: &SqliteStorage, user: UserId) -> i32 {
        s.readers
            .with(|conn| {
                let mut statement = conn.prepare(MEMBERSHIPS)?;
                let rows = statement
                    .query_map(rusqlite::params![user.get(), None::<i64>], |_| Ok(()))?
                    .count();
                assert_eq!(rows, 2, "alice's room and her DM");
                Ok(statement.get_status(rusqlite::StatementStatus::VmStep))
            })
            .unwrap()
    }

    #[tokio::test]
    async fn listing_a_users_rooms_reads_no_more_when_a_room_grows() {
        let (_dir, s, alice, room) = on_disk_with_a_room().await;
        let bob = s
            .create_user(NewUser {
                username: Username::parse("bob").unwrap(),
                display_name: DisplayName::parse("Bob").unwrap(),
                password_hash: "hash".into(),
                created_at: 1,
            })
            .await
            .unwrap();
        let (dm, _) = s.create_or_read_dm(alice.id, bob.id, 1).await.unwrap();
        let small = membership_steps(&s, alice.id);
        add_members(&s, room.id, "member", 500).await;
        assert_eq!(
            membership_steps(&s, alice.id),
            small,
            "a room's 500 new members were read to list it"
        );
        let list = s.read_memberships(alice.id, None).await.unwrap();
        let peer = |id| {
            let m = list.iter().find(|m| m.room.id == id).unwrap();
            m.peer.as_ref().map(|p| p.id)
        };
        assert_eq!(peer(dm.id), Some(bob.id));
        assert_eq!(peer(room.id), None);
        let group = list.iter().find(|m| m.room.id == room.id).unwrap();
        assert_eq!(group.member_count, 501);
    }

    /// Adds `n` users (`<prefix>0`...) to `room` as members, in SQL; their ids, in order.
    async fn add_members(s: &SqliteStorage, room: RoomId, prefix: &str, n: i64) -> Vec<UserId> {
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
             INSERT INTO users (username, display_name, password_hash, created_at)
             SELECT ? || i, 'Member', 'hash', 1 FROM n",
        )
        .bind(n)
        .bind(prefix)
        .execute(&s.pool)
        .await
        .unwrap();
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM users WHERE username LIKE ? || '%' ORDER BY id")
                .bind(prefix)
                .fetch_all(&s.pool)
                .await
                .unwrap();
        sqlx::query(
            "INSERT INTO members (room_id, user_id, role, joined_at)
             SELECT ?, id, 'member', 1 FROM users WHERE username LIKE ? || '%'",
        )
        .bind(room.get())
        .bind(prefix)
        .execute(&s.pool)
        .await
        .unwrap();
        ids.into_iter().map(UserId::new).collect()
    }

    /// Adds `n` members (`sender0`...) to `room`, each with `earlier` messages already stored
    /// there, and returns their ids.
    async fn senders_with_history(
        s: &SqliteStorage,
        room: RoomId,
        n: i64,
        earlier: i64,
    ) -> Vec<UserId> {
        let ids = add_members(s, room, "sender", n).await;
        // Ids shaped like the web client's (`<unix ms in hex>-<random>`), a second apart.
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
             INSERT INTO messages (room_id, seq, sender_id, client_id, body, created_at)
             SELECT ?, i + 1, (SELECT id FROM users WHERE username = 'sender' || (i % ?)),
                    printf('%011x-%016x', 1700000000000 + i * 1000, abs(random())), 'hi', 1
             FROM n",
        )
        .bind(n * earlier)
        .bind(room.get())
        .bind(n)
        .execute(&s.pool)
        .await
        .unwrap();
        sqlx::query("UPDATE rooms SET last_seq = ? WHERE id = ?")
            .bind(n * earlier)
            .bind(room.get())
            .execute(&s.pool)
            .await
            .unwrap();
        ids
    }

    /// The pages one commit wrote: the WAL is emptied, `changes` applied, and its frames counted.
    async fn pages_written(dir: &Path, s: &SqliteStorage, changes: Vec<Change>) -> u64 {
        let (busy,): (i64,) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(busy, 0, "the WAL could not be emptied");
        let wal = dir.join("natter.db-wal");
        assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
        let outcomes = s.apply_changes(changes).await.unwrap();
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, ChangeOutcome::Stored(_)))
        );
        // A 32-byte header, then a 24-byte header and a page for each frame.
        let len = std::fs::metadata(&wal).unwrap().len();
        (len - 32) / (24 + 4096)
    }

    #[tokio::test]
    async fn one_message_from_each_of_many_senders_is_committed_in_few_pages() {
        const SENDERS: i64 = 100;
        let (dir, s, _alice, room) = on_disk_with_a_room().await;
        // 150 earlier messages each: every sender's keys would fill pages of their own.
        let senders = senders_with_history(&s, room.id, SENDERS, 150).await;
        let now: u64 = 1_800_000_000_000;
        let changes = senders
            .iter()
            .zip(0u64..)
            .map(|(&sender, k)| {
                let client_id = format!(
                    "{:x}-{:016x}",
                    now + k,
                    k.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                );
                let new = NewMessage::parse(room.id, sender, &client_id, "hello", None, vec![], 2)
                    .unwrap();
                Change::Append(new)
            })
            .collect();
        let pages = pages_written(dir.path(), &s, changes).await;
        // The rows (~3 pages), the room's end of the sequence index, the idempotency index's
        // last pages, the senders' read markers, the room's counter and the header: about ten.
        // With a page of the idempotency index per sender it was over a hundred.
        assert!(
            pages < SENDERS as u64 / 4,
            "one commit of {SENDERS} messages wrote {pages} pages"
        );
        // The key still does its job: the same ids again are duplicates, not new messages.
        let again = NewMessage::parse(
            room.id,
            senders[7],
            &format!(
                "{:x}-{:016x}",
                now + 7,
                7u64.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ),
            "hello",
            None,
            vec![],
            3,
        )
        .unwrap();
        let outcome = s.apply_changes(vec![Change::Append(again)]).await.unwrap();
        assert!(matches!(&outcome[..], [ChangeOutcome::Duplicate(m)] if m.created_at == 2));
    }

    /// A database made by the migrations before the idempotency key's new order (20261129000008)
    /// keeps every message, reply and attachment link, and the key's check, when this version
    /// opens it.
    #[tokio::test]
    async fn a_database_from_before_the_key_reorder_upgrades_with_nothing_lost() {
        let dir = tempfile::tempdir().unwrap();
        let old = tempfile::tempdir().unwrap();
        let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for entry in std::fs::read_dir(&migrations).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if name.as_str() < "20261129000008" {
                std::fs::copy(&path, old.path().join(name)).unwrap();
            }
        }
        {
            let options = SqliteConnectOptions::new()
                .filename(dir.path().join("natter.db"))
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .unwrap();
            let before = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
            assert_eq!(before.iter().count(), 7);
            before.run(&pool).await.unwrap();
            sqlx::raw_sql(
                "INSERT INTO users (id, username, display_name, password_hash, created_at)
                     VALUES (1, 'alice', 'Alice', 'hash', 1);
                 INSERT INTO rooms (id, kind, name, visibility, created_at, last_seq)
                     VALUES (1, 'room', 'general', 'public', 1, 2);
                 INSERT INTO members (room_id, user_id, role, joined_at) VALUES (1, 1, 'owner', 1);
                 INSERT INTO messages (id, room_id, seq, sender_id, client_id, body, created_at)
                     VALUES (10, 1, 1, 1, 'c1', 'first', 5);
                 INSERT INTO messages (id, room_id, seq, sender_id, client_id, body, created_at,
                                       reply_to)
                     VALUES (11, 1, 2, 1, 'c2', 'a reply', 6, 10);
                 INSERT INTO uploads (id, owner_id, message_id, room_id, name, content_type, kind,
                                      size, stored_size, created_at)
                     VALUES ('u1', 1, 11, 1, 'cat.png', 'image/png', 'image', 1, 1, 6);",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let s = SqliteStorage::open(dir.path()).await.unwrap();
        // The rebuilt table went through the WAL; the upgrade copied it back and cut it.
        let wal = dir.path().join("natter.db-wal");
        assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
        let alice = UserId::new(1);
        let room = RoomId::new(1);
        let history = s.read_messages_before(room, None, 10).await.unwrap();
        let bodies: Vec<_> = history
            .iter()
            .map(|m| (m.id.get(), m.body.as_str()))
            .collect();
        assert_eq!(bodies, [(10, "first"), (11, "a reply")]);
        assert_eq!(history[1].reply_to.as_ref().map(|r| r.seq), Some(1));
        let upload = s.read_upload("u1").await.unwrap().unwrap();
        assert_eq!(upload.message_id, Some(MessageId::new(11)));
        // The same client id again is the stored message; the next one is seq 3.
        let again = NewMessage::parse(room, alice, "c2", "a reply", None, vec![], 7).unwrap();
        let fresh = NewMessage::parse(room, alice, "c3", "new", None, vec![], 7).unwrap();
        let outcomes = s
            .apply_changes(vec![Change::Append(again), Change::Append(fresh)])
            .await
            .unwrap();
        assert!(matches!(&outcomes[0], ChangeOutcome::Duplicate(m) if m.id.get() == 11));
        assert!(matches!(&outcomes[1], ChangeOutcome::Stored(m) if m.seq == 3));
        // Foreign keys are on again and nothing dangles.
        let dangling = sqlx::query("PRAGMA foreign_key_check")
            .fetch_all(&s.pool)
            .await
            .unwrap();
        assert_eq!(dangling.len(), 0, "rows whose reference is gone");
        let refused = sqlx::query(
            "INSERT INTO messages (room_id, seq, sender_id, client_id, body, created_at)
             VALUES (99, 1, 1, 'c9', 'nowhere', 8)",
        )
        .execute(&s.pool)
        .await;
        assert!(refused.is_err(), "a message in no room was stored");
    }

    #[tokio::test]
    async fn usernames_are_unique_whatever_the_case_in_the_database() {
        let (s, _) = storage_with_alice().await;
        // Bypass the domain type's lower-casing to check the database rule itself.
        let e = sqlx::query("INSERT INTO users (username, display_name, password_hash, created_at) VALUES ('ALICE','x','h',1)")
            .execute(&s.pool)
            .await
            .unwrap_err();
        assert!(is_unique_violation(&e));
    }

    #[tokio::test]
    async fn revoked_and_expired_sessions_are_not_active() {
        let (s, alice) = storage_with_alice().await;
        for (id, expires) in [("live", 100), ("old", 5), ("gone", 100)] {
            s.create_session(NewSession {
                id: id.into(),
                user_id: alice.id,
                created_at: 1,
                expires_at: expires,
                created_ip: "127.0.0.1".parse().unwrap(),
            })
            .await
            .unwrap();
        }
        s.update_session_revoked("gone", 10).await.unwrap();
        assert_eq!(
            s.read_active_session("live", 10).await.unwrap(),
            Some(alice.id)
        );
        assert_eq!(s.read_active_session("old", 10).await.unwrap(), None);
        assert_eq!(s.read_active_session("gone", 10).await.unwrap(), None);
        assert_eq!(
            s.update_user_sessions_revoked(alice.id, 11).await.unwrap(),
            2
        );
        assert_eq!(s.read_active_session("live", 12).await.unwrap(), None);
        assert_eq!(s.delete_sessions_ended_before(50).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_message_waits_for_a_write_lock_held_by_another_connection() {
        let (_dir, s, alice, room) = on_disk_with_a_room().await;
        // Another connection (a sign-in writing its session, say) holds the write lock.
        let mut other = s.pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("UPDATE users SET last_seen_at = 2 WHERE id = ?")
            .bind(alice.id.get())
            .execute(&mut *other)
            .await
            .unwrap();
        let writer = s.clone();
        let message =
            NewMessage::parse(room.id, alice.id, "c1", "hello", None, Vec::new(), 3).unwrap();
        let append =
            tokio::spawn(async move { writer.apply_changes(vec![Change::Append(message)]).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        other.commit().await.unwrap();
        let outcomes = append
            .await
            .unwrap()
            .expect("the writer waited, then stored");
        assert!(matches!(&outcomes[..], [ChangeOutcome::Stored(m)] if m.seq == 1));
    }

    /// The writer builds a stored message from what it wrote instead of reading it back:
    /// every field must still be what history reads (a reply, an attachment, formatting, a
    /// mention, plain text).
    #[tokio::test]
    async fn a_stored_message_is_exactly_what_history_reads_back() {
        let (_dir, s, alice, room) = on_disk_with_a_room().await;
        let upload = UploadRecord {
            id: "u1".into(),
            owner_id: alice.id,
            message_id: None,
            room_id: None,
            name: "cat.png".into(),
            content_type: "image/png".into(),
            kind: AttachmentKind::Image,
            size: 1234,
            stored_size: 2345,
            width: Some(64),
            height: Some(48),
            created_at: 2,
        };
        assert!(s.create_upload(&upload, 1 << 20).await.unwrap());
        let sends = [
            ("c1", "plain words", None, vec![]),
            (
                "c2",
                "**bold** for @alice and @nobody, see https://example.org",
                None,
                vec![],
            ),
            (
                "c3",
                "a reply with a picture",
                Some(1),
                vec!["u1".to_owned()],
            ),
        ];
        let mut stored = Vec::new();
        for (client_id, body, reply_to, attachments) in sends {
            let quoted =
                reply_to.map(|seq| stored.iter().find(|m: &&Message| m.seq == seq).unwrap().id);
            let new = NewMessage::parse(room.id, alice.id, client_id, body, quoted, attachments, 3)
                .unwrap();
            let outcomes = s.apply_changes(vec![Change::Append(new)]).await.unwrap();
            match outcomes.into_iter().next() {
                Some(ChangeOutcome::Stored(m)) => stored.push(m),
                other => panic!("not stored: {other:?}"),
            }
        }
        assert!(stored[1].formatted.is_some() && stored[0].formatted.is_none());
        assert_eq!(stored[2].reply_to.as_ref().map(|r| r.seq), Some(1));
        assert_eq!(stored[2].attachments.len(), 1);
        let history = s.read_messages_before(room.id, None, 10).await.unwrap();
        assert_eq!(history, stored);
    }

    /// Which WAL the database has: changes each time the WAL starts over from its beginning.
    fn wal_generation(dir: &Path) -> Option<u32> {
        writer::wal_generation(&dir.join("natter.db-wal"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_while_other_writes_keep_coming() {
        let (dir, s, _alice, room) = on_disk_with_a_room().await;
        // Two tasks change the room's topic back to back (the pool's connections, not the
        // message writer's) for longer than the WAL may go without starting over.
        let before = wal_generation(dir.path());
        let until =
            std::time::Instant::now() + writer::CHECKPOINT_EVERY * (writer::STUCK_AFTER + 3);
        let s = std::sync::Arc::new(s);
        let editor = |name: &'static str| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut n = 0u32;
                while std::time::Instant::now() < until {
                    n += 1;
                    let topic = Topic::parse(&format!("{name} {n}")).unwrap();
                    s.update_room(room.id, None, Some(&topic)).await.unwrap();
                }
            })
        };
        let (a, b) = (editor("a"), editor("b"));
        a.await.unwrap();
        b.await.unwrap();
        // One more write: a WAL emptied just now gets its new header.
        let topic = Topic::parse("last").unwrap();
        s.update_room(room.id, None, Some(&topic)).await.unwrap();
        assert!(
            wal_generation(dir.path()) != before,
            "the WAL never started over"
        );
        // The database is whole: the last topic is the one read back.
        let read = s.read_room(room.id).await.unwrap().unwrap();
        assert_eq!(read.topic.as_str(), "last");
    }

    #[tokio::test]
    async fn a_closed_database_leaves_no_wal_behind() {
        let (dir, s, alice, room) = on_disk_with_a_room().await;
        let message = NewMessage::parse(room.id, alice.id, "c1", "kept", None, vec![], 2).unwrap();
        s.apply_changes(vec![Change::Append(message)])
            .await
            .unwrap();
        let wal = dir.path().join("natter.db-wal");
        assert!(std::fs::metadata(&wal).unwrap().len() > 0);
        s.close().await;
        drop(s);
        assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
        // Everything is in the database file itself.
        let reopened = SqliteStorage::open(dir.path()).await.unwrap();
        let history = reopened
            .read_messages_before(room.id, None, 10)
            .await
            .unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].body, "kept");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_while_messages_keep_coming() {
        let (dir, s, alice, room) = on_disk_with_a_room().await;
        // Two senders keep the writer's queue full: it commits back to back, with no pause for
        // the background checkpoint to land in, for three checkpoint intervals.
        let before = wal_generation(dir.path());
        let until = std::time::Instant::now() + writer::CHECKPOINT_EVERY * 3;
        let sender = |name: &'static str| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while std::time::Instant::now() < until {
                    let batch = (0..8)
                        .map(|i| {
                            n += 1;
                            let id = format!("{name}-{n}-{i}");
                            Change::Append(
                                NewMessage::parse(room.id, alice.id, &id, "hi", None, vec![], 2)
                                    .unwrap(),
                            )
                        })
                        .collect();
                    s.apply_changes(batch).await.unwrap();
                }
                n
            })
        };
        let (a, b) = (sender("a"), sender("b"));
        let sent = a.await.unwrap() + b.await.unwrap();
        assert!(sent > 0);
        // Without the writer's own checkpoint the WAL only ever grew while the load lasted.
        assert!(
            wal_generation(dir.path()) != before,
            "the WAL never started over"
        );
    }
}
