//! The SQLite message writer: one thread with its own connection (rusqlite) that applies each
//! batch of changes in one `BEGIN IMMEDIATE` transaction, with cached prepared statements. It
//! also stores new sessions (see [`Writer::create_session`]).
//!
//! Why not sqlx here: sqlx runs every SQLite statement on its worker thread and hands the
//! result back to the async task, two context switches per statement. An append is six to
//! eight statements, so the writer spent its time switching: profiled at 5,000 messages/s,
//! 44 % of the server's core was in `finish_task_switch` and SQLite itself under 6 % (see
//! docs/perf.md, S4). Here a whole batch is one hand-off. The hot reads run inline
//! (`sqlite_reader.rs`); the other reads stay on the sqlx pool.
//!
//! The connection is opened after the pool has created the database and run migrations (WAL is
//! a property of the file); it sets the same per-connection pragmas as the pool.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use app::api::{Attachment, Message, Reaction};
use app::domain::{MessageBody, MessageId, Role, RoomId, UserId};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::{MessageRow, UploadRow, corrupt, from_json, parse_role, reply_ref, to_json};
use crate::storage::{
    Change, ChangeOutcome, MAX_REACTION_EMOJI, NewMessage, NewSession, StorageError, UploadRecord,
};

/// Batches waiting for the thread (the message writer sends one at a time anyway).
const QUEUE: usize = 4;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;
/// The writer's page cache, KiB.
const WRITER_CACHE_KIB: u32 = 16 * 1024;

type Reply = oneshot::Sender<Result<Vec<ChangeOutcome>, StorageError>>;

/// What the writer thread is asked to write.
enum Job {
    Changes(Vec<Change>, Reply),
    Session(NewSession, oneshot::Sender<Result<(), StorageError>>),
}

/// How often WAL pages are copied back into the database file (see [`checkpoints`]).
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// A handle on the writer thread; the thread ends when the last handle is dropped.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    /// Dropped with the last handle: stops the checkpoint thread.
    _checkpoints: Arc<std::sync::mpsc::SyncSender<()>>,
}

impl Writer {
    /// Opens a connection to `path` (a file name, or a `file:` URI) and starts the thread.
    pub(super) fn start(path: &Path) -> Result<Self, StorageError> {
        let mut conn = open(path)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Every message touches a page of its room's part of the sequence index (and, from a
        // client whose ids do not begin with the time, a random page of the idempotency
        // index): with SQLite's default 2 MiB, a few hundred active rooms pushed those pages
        // out and read them back at every message (S4a, docs/perf.md). Pages are taken as
        // they are needed, up to this.
        conn.execute_batch(&format!("PRAGMA cache_size = -{};", WRITER_CACHE_KIB))?;
        let caught_up = Arc::new(AtomicBool::new(false));
        let checkpoints = checkpoints(open(path)?, caught_up.clone())?;
        let (jobs, mut queue) = mpsc::channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                while let Some(job) = queue.blocking_recv() {
                    if caught_up.swap(false, Ordering::AcqRel) {
                        checkpoint(&conn, "by the writer");
                    }
                    match job {
                        Job::Changes(changes, reply) => {
                            reply.send(apply(&mut conn, &changes)).ok();
                        }
                        Job::Session(new, reply) => {
                            reply.send(insert_session(&conn, &new)).ok();
                        }
                    }
                }
            })
            .map_err(|e| corrupt(format!("starting the writer thread: {e}")))?;
        Ok(Self {
            jobs,
            _checkpoints: Arc::new(checkpoints),
        })
    }

    pub(super) async fn apply(
        &self,
        changes: Vec<Change>,
    ) -> Result<Vec<ChangeOutcome>, StorageError> {
        let (tx, rx) = oneshot::channel();
        self.run(Job::Changes(changes, tx), rx).await
    }

    /// Stores a new session (a sign-in), in a transaction of its own.
    ///
    /// Why here and not on the sqlx pool: a sign-in's `INSERT` there took SQLite's one write
    /// lock between the message writer's commits, so during a login storm the writer kept
    /// waiting for it (and for its `fsync`), and each statement woke a sqlx worker thread, which
    /// could take the core from the chat's runtime thread while a password hash was ready to
    /// run (S4c, docs/perf.md, eighteenth round). Here sign-ins and batches take turns on one
    /// thread: a sign-in waits for the batch being written, a batch for the sign-ins queued
    /// before it (one small `INSERT` and its `fsync` each).
    pub(super) async fn create_session(&self, new: NewSession) -> Result<(), StorageError> {
        let (tx, rx) = oneshot::channel();
        self.run(Job::Session(new, tx), rx).await
    }

    async fn run<T>(
        &self,
        job: Job,
        done: oneshot::Receiver<Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        let stopped = || StorageError::Corrupt("the writer thread stopped".into());
        self.jobs.send(job).await.map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?
    }
}

fn insert_session(conn: &Connection, new: &NewSession) -> Result<(), StorageError> {
    conn.prepare_cached(
        "INSERT INTO sessions (id, user_id, created_at, expires_at, created_ip)
         VALUES (?, ?, ?, ?, ?)",
    )?
    .execute(params![
        new.id,
        new.user_id.get(),
        new.created_at,
        new.expires_at,
        new.created_ip.to_string(),
    ])?;
    Ok(())
}

/// A connection with the pragmas every Natter connection has. Automatic checkpoints are off:
/// they would run inside whichever commit crosses the threshold (1,000 pages), stalling the
/// message writer for the copy and an extra fsync; [`checkpoints`] runs them instead.
fn open(path: &Path) -> Result<Connection, StorageError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    // SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries: one commit
    // on another connection (a sign-in writing its session) cost the message writer tens of
    // milliseconds (S4c, docs/perf.md). Retry every 100 µs instead, up to the busy timeout.
    conn.busy_handler(Some(retry_soon))?;
    plan_once(&conn)?;
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;
         PRAGMA wal_autocheckpoint = 0;",
    )?;
    Ok(conn)
}

/// Keeps a cached statement's query plan whatever values are bound to it.
///
/// The bundled SQLite is built with `SQLITE_ENABLE_STAT4`: a statement whose plan could depend
/// on a bound value (`m.seq < ?`) is parsed and planned again every time a new value is bound,
/// which defeats the statement cache (seen in `perf` during S1: `sqlite3Reprepare` under every
/// history read). Natter never runs `ANALYZE`, so there are no statistics for such a plan to
/// use; the query planner stability guarantee turns the re-planning off.
pub(super) fn plan_once(conn: &Connection) -> Result<(), StorageError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// How long the writer waits between tries for a write lock another connection holds.
const BUSY_RETRY: Duration = Duration::from_micros(100);

/// A busy handler: wait [`BUSY_RETRY`] and try again, for up to [`super::BUSY_TIMEOUT`].
fn retry_soon(tries: i32) -> bool {
    let waited = BUSY_RETRY * u32::try_from(tries).unwrap_or(0);
    if waited >= super::BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(BUSY_RETRY);
    true
}

/// Checkpoints in a row after which a WAL that has not started over is emptied (see
/// [`checkpoints`]).
pub(super) const STUCK_AFTER: u32 = 5;
/// Frames (pages) a stuck WAL must hold before it is emptied: SQLite's own automatic
/// checkpoint threshold, 4 MiB of 4 KiB pages.
const STUCK_FRAMES: i64 = 1000;
/// What a stuck WAL gets (see [`checkpoints`]).
const STUCK_THEN: Then = Then::Restart;

/// Copies the WAL back into the database every [`CHECKPOINT_EVERY`] on a thread of its own
/// (`PASSIVE`: it never blocks the writer or readers), then sets `caught_up` for the writer.
/// Stops when the returned sender is dropped.
///
/// Why the writer finishes the job: SQLite starts the WAL over from its beginning only when a
/// write transaction begins with every frame copied back. Under steady traffic the writer
/// always commits more while this thread copies, so that moment never came: in S2 (1,000
/// messages a second) the WAL grew by ~21 MB a second for as long as the load lasted, and
/// every commit appended to an ever longer file (docs/perf.md, seventh round). The writer
/// therefore runs one more `PASSIVE` checkpoint before its next batch: it copies only what was
/// committed during this one (milliseconds' worth), and with nothing committed in between,
/// its next transaction starts the WAL over.
///
/// Writes that are not messages (sign-ups, sessions, joins, read markers) go through other
/// connections, which do not take that turn: under a steady stream of them the WAL never
/// started over either (building the bench's 5,000-user fixture left a 99 MB WAL beside a 2 MB
/// database, and every start after it read the whole WAL back: docs/perf.md, eleventh round).
/// So when the WAL has not started over for [`STUCK_AFTER`] checkpoints in a row and holds more
/// than [`STUCK_FRAMES`], this thread runs a `RESTART` checkpoint: it waits for the current
/// writer and for readers still in the WAL (the busy handler's short retries), copies the few
/// frames the `PASSIVE` one left, and the next write starts the WAL over. Not `TRUNCATE`:
/// cutting a WAL of tens of megabytes held the write lock for ~96 ms where `RESTART` took
/// ~2 ms (5,000 sign-ups and their rooms, one run each: docs/perf.md, eleventh round); the file
/// keeps its size and is emptied at shutdown.
fn checkpoints(
    conn: Connection,
    caught_up: Arc<AtomicBool>,
) -> Result<std::sync::mpsc::SyncSender<()>, StorageError> {
    let (stop, stopped) = std::sync::mpsc::sync_channel::<()>(1);
    let wal = wal_path(&conn);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let mut generation = wal.as_deref().and_then(wal_generation);
            let mut unchanged = 0;
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(CHECKPOINT_EVERY)
            {
                let frames = catch_up(&conn);
                if frames.is_some_and(|frames| frames > 0) {
                    caught_up.store(true, Ordering::Release);
                }
                let now = wal.as_deref().and_then(wal_generation);
                unchanged = if now == generation { unchanged + 1 } else { 0 };
                generation = now;
                if unchanged >= STUCK_AFTER && frames.is_some_and(|f| f > STUCK_FRAMES) {
                    start_over(&conn, STUCK_THEN, "the WAL had not started over");
                    generation = wal.as_deref().and_then(wal_generation);
                    unchanged = 0;
                }
            }
        })
        .map_err(|e| corrupt(format!("starting the checkpoint thread: {e}")))?;
    Ok(stop)
}

/// Background checkpoints run back to back until one finds fewer than this many new frames.
const CAUGHT_UP_FRAMES: i64 = 64;
/// At most this many in a row (under a load that outpaces them, they would never stop).
const CATCH_UP_PASSES: u32 = 4;

/// `PASSIVE` checkpoints until the WAL holds at most [`CAUGHT_UP_FRAMES`] frames not yet
/// copied (or [`CATCH_UP_PASSES`] ran): the frames in the WAL, as [`checkpoint`] answers.
///
/// Each pass copies what was committed while the one before ran. The writer's own turn
/// (see [`checkpoints`]) then copies only the last few frames before its next batch, and
/// that batch waits for it: one pass, at 10,000 messages a second, copied ~20,000 frames in
/// 17-31 ms, and the writer's turn after it 3.5-12 ms (docs/perf.md, thirteenth round).
fn catch_up(conn: &Connection) -> Option<i64> {
    let mut frames = checkpoint(conn, "in the background")?;
    for _ in 1..CATCH_UP_PASSES {
        let next = checkpoint(conn, "in the background")?;
        // Fewer frames than before: the WAL started over in between.
        let new = next - frames;
        frames = next;
        if new < CAUGHT_UP_FRAMES {
            break;
        }
    }
    Some(frames)
}

/// The WAL file of `conn`'s main database (`None` for an in-memory one).
fn wal_path(conn: &Connection) -> Option<std::path::PathBuf> {
    conn.path()
        .filter(|p| !p.is_empty())
        .map(|p| std::path::PathBuf::from(format!("{p}-wal")))
}

/// Which WAL this is: its header's first salt, which SQLite adds one to each time the WAL
/// starts over from its beginning, whichever connection restarts it (the header's checkpoint
/// sequence number is counted per connection). `None` when there is no WAL or no header yet.
pub(super) fn wal_generation(wal: &Path) -> Option<u32> {
    use std::io::Read;
    let mut header = [0u8; 20];
    std::fs::File::open(wal)
        .ok()?
        .read_exact(&mut header)
        .ok()?;
    Some(u32::from_be_bytes([
        header[16], header[17], header[18], header[19],
    ]))
}

/// How a full checkpoint ends (see [`start_over`]).
#[derive(Debug, Clone, Copy)]
enum Then {
    /// The next write starts the WAL over from its beginning; the file keeps its size.
    Restart,
    /// The file is also cut to zero bytes.
    Truncate,
}

/// Copies every frame of the WAL back (waiting for the writer and for readers still in the
/// WAL, through the busy handler) so that the WAL starts over, and with [`Then::Truncate`]
/// empties the file. Logged, never fatal: the WAL is as durable as the database, only longer.
fn start_over(conn: &Connection, then: Then, why: &'static str) {
    let started = std::time::Instant::now();
    let sql = match then {
        Then::Restart => "PRAGMA wal_checkpoint(RESTART)",
        Then::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    match conn.query_row(sql, [], |r| r.get::<_, i64>(0)) {
        Ok(0) => tracing::info!(
            why,
            ?then,
            micros = started.elapsed().as_micros() as u64,
            "WAL started over"
        ),
        Ok(_) => tracing::warn!(why, "WAL not started over: the database stayed busy"),
        Err(e) => tracing::warn!(why, error = %e, "WAL not started over"),
    }
}

/// At shutdown, with nothing left to write: copies the WAL back and empties it, so that the next
/// start has no WAL to read back (SQLite rebuilds its index from the whole file on open).
pub(super) fn empty_wal(path: &Path) -> Result<(), StorageError> {
    let conn = open(path)?;
    start_over(&conn, Then::Truncate, "shutting down");
    Ok(())
}

/// A `PASSIVE` checkpoint on `conn`: the number of frames the WAL held, or `None` on failure
/// (logged; the next one tries again).
fn checkpoint(conn: &Connection, by: &'static str) -> Option<i64> {
    let started = std::time::Instant::now();
    // SQLite answers (busy, frames in the WAL, frames copied back).
    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    });
    match done {
        Ok((frames, copied)) => {
            tracing::debug!(
                by,
                frames,
                copied,
                micros = started.elapsed().as_micros() as u64,
                "WAL checkpoint"
            );
            Some(frames)
        }
        Err(e) => {
            tracing::warn!(by, error = %e, "WAL checkpoint failed");
            None
        }
    }
}

/// Applies `changes` in one transaction: all or nothing.
fn apply(conn: &mut Connection, changes: &[Change]) -> Result<Vec<ChangeOutcome>, StorageError> {
    // IMMEDIATE: take the write lock up front, so the reads below cannot be invalidated by
    // another writer (a deferred transaction would fail with SQLITE_BUSY_SNAPSHOT).
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(changes.len());
    for change in changes {
        let outcome = match change {
            Change::Append(new) => append(&tx, new)?,
            Change::Edit {
                room_id,
                message_id,
                editor,
                body,
                at,
            } => edit(&tx, *room_id, *message_id, *editor, body, *at)?,
            Change::Delete {
                room_id,
                message_id,
                actor,
                at,
            } => delete(&tx, *room_id, *message_id, *actor, *at)?,
            Change::React {
                room_id,
                message_id,
                user,
                emoji,
                add,
            } => react(&tx, *room_id, *message_id, *user, emoji, *add)?,
        };
        outcomes.push(outcome);
    }
    tx.commit()?;
    Ok(outcomes)
}

/// A row of [`message_columns!`], read by position (in the macro's order): looking columns up
/// by name costs a scan of the column names for each of the 17 (seen in `perf` during S4a).
pub(super) fn message_row(r: &Row<'_>) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        id: r.get(0)?,
        room_id: r.get(1)?,
        seq: r.get(2)?,
        sender_id: r.get(3)?,
        client_id: r.get(4)?,
        body: r.get(5)?,
        created_at: r.get(6)?,
        rev: r.get(7)?,
        edited_at: r.get(8)?,
        deleted_at: r.get(9)?,
        reactions: r.get(10)?,
        attachments: r.get(11)?,
        reply_id: r.get(12)?,
        reply_seq: r.get(13)?,
        reply_sender_id: r.get(14)?,
        reply_body: r.get(15)?,
        reply_deleted_at: r.get(16)?,
    })
}

/// A row of [`upload_columns!`], read by position (in the macro's order).
fn upload_row(r: &Row<'_>) -> rusqlite::Result<UploadRow> {
    Ok(UploadRow {
        id: r.get(0)?,
        owner_id: r.get(1)?,
        message_id: r.get(2)?,
        room_id: r.get(3)?,
        name: r.get(4)?,
        content_type: r.get(5)?,
        kind: r.get(6)?,
        size: r.get(7)?,
        stored_size: r.get(8)?,
        width: r.get(9)?,
        height: r.get(10)?,
        created_at: r.get(11)?,
    })
}

fn read_message(
    conn: &Connection,
    room: RoomId,
    id: MessageId,
) -> Result<Option<MessageRow>, StorageError> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT ",
            message_columns!(),
            message_from!(),
            "WHERE m.id = ? AND m.room_id = ?"
        ))?
        .query_row(params![id.get(), room.get()], message_row)
        .optional()?)
}

fn read_role_in(
    conn: &Connection,
    room: RoomId,
    user: UserId,
) -> Result<Option<Role>, StorageError> {
    let role: Option<String> = conn
        .prepare_cached("SELECT role FROM members WHERE room_id = ? AND user_id = ?")?
        .query_row(params![room.get(), user.get()], |r| r.get(0))
        .optional()?;
    role.as_deref().map(parse_role).transpose()
}

/// A room's counters: the sequence number of its messages, the revision of changes to them.
#[derive(Clone, Copy)]
enum Counter {
    Seq,
    Rev,
}

/// The room's next value of `counter`, taken.
///
/// An `UPDATE` and a `SELECT` rather than one `UPDATE ... RETURNING`: SQLite gathers returned
/// rows in a temporary table, created and dropped with its own page cache at every call (seen
/// in `perf` during S4a, where it ran for every message).
fn take_next(conn: &Connection, counter: Counter, room: RoomId) -> Result<i64, StorageError> {
    let (bump, read) = match counter {
        Counter::Seq => (
            "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = ?",
            "SELECT last_seq FROM rooms WHERE id = ?",
        ),
        Counter::Rev => (
            "UPDATE rooms SET last_rev = last_rev + 1 WHERE id = ?",
            "SELECT last_rev FROM rooms WHERE id = ?",
        ),
    };
    if conn.prepare_cached(bump)?.execute(params![room.get()])? == 0 {
        return Err(corrupt("a message's room vanished"));
    }
    Ok(conn
        .prepare_cached(read)?
        .query_row(params![room.get()], |r| r.get(0))?)
}

/// The state of a message after a change, re-read so it is exactly what history shows.
fn changed(conn: &Connection, room: RoomId, id: MessageId) -> Result<Message, StorageError> {
    read_message(conn, room, id)?
        .ok_or_else(|| corrupt("changed message vanished"))?
        .try_into()
}

/// Most mentions recorded per message (the rest of a long list of names is just text).
const MAX_MENTIONS: usize = 20;

/// Records who `names` (the usernames a body mentions) are among the room's members (never
/// the author).
fn record_mentions(
    conn: &Connection,
    room: RoomId,
    seq: i64,
    author: UserId,
    names: &[String],
) -> Result<(), StorageError> {
    let mut names: Vec<&String> = names.iter().collect();
    names.sort();
    names.dedup();
    for name in names.iter().take(MAX_MENTIONS) {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO mentions (user_id, room_id, seq)
             SELECT u.id, m.room_id, ? FROM users u
             JOIN members m ON m.user_id = u.id AND m.room_id = ?
             WHERE u.username = ? AND u.id != ?",
        )?
        .execute(params![seq, room.get(), name.to_lowercase(), author.get()])?;
    }
    Ok(())
}

fn forget_mentions(conn: &Connection, room: RoomId, seq: i64) -> Result<(), StorageError> {
    conn.prepare_cached("DELETE FROM mentions WHERE room_id = ? AND seq = ?")?
        .execute(params![room.get(), seq])?;
    Ok(())
}

fn append(conn: &Connection, new: &NewMessage) -> Result<ChangeOutcome, StorageError> {
    let existing = conn
        .prepare_cached(concat!(
            "SELECT ",
            message_columns!(),
            message_from!(),
            "WHERE m.sender_id = ? AND m.client_id = ?"
        ))?
        .query_row(
            params![new.sender_id.get(), new.client_id.as_str()],
            message_row,
        )
        .optional()?;
    if let Some(row) = existing {
        return Ok(ChangeOutcome::Duplicate(row.try_into()?));
    }
    if read_role_in(conn, new.room_id, new.sender_id)?.is_none() {
        return Ok(ChangeOutcome::NotMember);
    }
    let quoted = match new.reply_to {
        Some(id) => match read_message(conn, new.room_id, id)? {
            Some(row) => Some(row),
            None => return Ok(ChangeOutcome::NoSuchMessage),
        },
        None => None,
    };
    let mut attachments = Vec::with_capacity(new.attachments.len());
    for id in &new.attachments {
        let row = conn
            .prepare_cached(concat!(
                "SELECT ",
                upload_columns!(),
                " FROM uploads WHERE id = ? AND owner_id = ? AND message_id IS NULL"
            ))?
            .query_row(params![id, new.sender_id.get()], upload_row)
            .optional()?;
        match row {
            Some(row) if !attachments.iter().any(|a: &Attachment| &a.id == id) => {
                attachments.push(UploadRecord::try_from(row)?.attachment());
            }
            _ => return Ok(ChangeOutcome::BadAttachment),
        }
    }
    let seq = take_next(conn, Counter::Seq, new.room_id)?;
    conn.prepare_cached(
        "INSERT INTO messages (room_id, seq, sender_id, client_id, body, created_at, reply_to,
                               attachments)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        new.room_id.get(),
        seq,
        new.sender_id.get(),
        new.client_id.as_str(),
        &new.body,
        new.created_at,
        new.reply_to.map(MessageId::get),
        to_json(&attachments)?,
    ])?;
    let id = conn.last_insert_rowid();
    record_mentions(conn, new.room_id, seq, new.sender_id, &new.mentions)?;
    // Writing in a room means having read it up to here.
    conn.prepare_cached(
        "UPDATE members SET last_read_seq = MAX(last_read_seq, ?) WHERE room_id = ? AND user_id = ?",
    )?
    .execute(params![seq, new.room_id.get(), new.sender_id.get()])?;
    for a in &attachments {
        conn.prepare_cached("UPDATE uploads SET message_id = ?, room_id = ? WHERE id = ?")?
            .execute(params![id, new.room_id.get(), &a.id])?;
    }
    // The message as history will read it back (a test holds the two equal), built from what
    // was just written instead of read again.
    Ok(ChangeOutcome::Stored(Message {
        id: MessageId::new(id),
        room_id: new.room_id,
        seq,
        sender_id: new.sender_id,
        client_id: new.client_id.clone(),
        formatted: new.formatted.clone(),
        body: new.body.clone(),
        created_at: new.created_at,
        rev: 0,
        edited_at: None,
        deleted: false,
        reply_to: quoted.map(|q| {
            reply_ref(
                q.id,
                q.seq,
                q.sender_id,
                Some(&q.body),
                q.deleted_at.is_some(),
            )
        }),
        attachments,
        reactions: Vec::new(),
    }))
}

/// The message a change is about, with the actor's role: or why there is nothing to change
/// (not a member of the room, no such message in it).
fn change_target(
    conn: &Connection,
    room: RoomId,
    id: MessageId,
    actor: UserId,
) -> Result<Result<(Role, MessageRow), ChangeOutcome>, StorageError> {
    let Some(role) = read_role_in(conn, room, actor)? else {
        return Ok(Err(ChangeOutcome::NotMember));
    };
    match read_message(conn, room, id)? {
        Some(row) => Ok(Ok((role, row))),
        None => Ok(Err(ChangeOutcome::NoSuchMessage)),
    }
}

fn edit(
    conn: &Connection,
    room: RoomId,
    id: MessageId,
    editor: UserId,
    body: &MessageBody,
    at: i64,
) -> Result<ChangeOutcome, StorageError> {
    let (_, row) = match change_target(conn, room, id, editor)? {
        Ok(target) => target,
        Err(outcome) => return Ok(outcome),
    };
    if row.sender_id != editor.get() {
        return Ok(ChangeOutcome::Forbidden);
    }
    if row.deleted_at.is_some() {
        return Ok(ChangeOutcome::Gone);
    }
    if row.body == body.as_str() {
        return Ok(ChangeOutcome::Unchanged(row.try_into()?));
    }
    let rev = take_next(conn, Counter::Rev, room)?;
    conn.prepare_cached("UPDATE messages SET body = ?, edited_at = ?, rev = ? WHERE id = ?")?
        .execute(params![body.as_str(), at, rev, id.get()])?;
    forget_mentions(conn, room, row.seq)?;
    record_mentions(
        conn,
        room,
        row.seq,
        editor,
        &app::markdown::mentions(body.as_str()),
    )?;
    Ok(ChangeOutcome::Updated {
        message: changed(conn, room, id)?,
        removed_uploads: Vec::new(),
    })
}

fn delete(
    conn: &Connection,
    room: RoomId,
    id: MessageId,
    actor: UserId,
    at: i64,
) -> Result<ChangeOutcome, StorageError> {
    let (role, row) = match change_target(conn, room, id, actor)? {
        Ok(target) => target,
        Err(outcome) => return Ok(outcome),
    };
    if row.sender_id != actor.get() && !matches!(role, Role::Owner | Role::Admin) {
        return Ok(ChangeOutcome::Forbidden);
    }
    if row.deleted_at.is_some() {
        return Ok(ChangeOutcome::Unchanged(row.try_into()?));
    }
    let rev = take_next(conn, Counter::Rev, room)?;
    conn.prepare_cached(
        "UPDATE messages
         SET body = '', deleted_at = ?, rev = ?, reactions = NULL, attachments = NULL
         WHERE id = ?",
    )?
    .execute(params![at, rev, id.get()])?;
    forget_mentions(conn, room, row.seq)?;
    let removed_uploads = conn
        .prepare_cached("DELETE FROM uploads WHERE message_id = ? RETURNING id")?
        .query_map(params![id.get()], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ChangeOutcome::Updated {
        message: changed(conn, room, id)?,
        removed_uploads,
    })
}

fn react(
    conn: &Connection,
    room: RoomId,
    id: MessageId,
    user: UserId,
    emoji: &str,
    add: bool,
) -> Result<ChangeOutcome, StorageError> {
    let (_, row) = match change_target(conn, room, id, user)? {
        Ok(target) => target,
        Err(outcome) => return Ok(outcome),
    };
    if row.deleted_at.is_some() {
        return Ok(ChangeOutcome::Gone);
    }
    let mut reactions: Vec<Reaction> = from_json(row.reactions.as_deref())?;
    let at = reactions.iter().position(|r| r.emoji == emoji);
    let mine = at.is_some_and(|i| reactions[i].users.contains(&user));
    match (add, at) {
        (true, _) if mine => return Ok(ChangeOutcome::Unchanged(row.try_into()?)),
        (false, _) if !mine => return Ok(ChangeOutcome::Unchanged(row.try_into()?)),
        (true, Some(i)) => reactions[i].users.push(user),
        (true, None) if reactions.len() >= MAX_REACTION_EMOJI => {
            return Ok(ChangeOutcome::TooManyReactions);
        }
        (true, None) => reactions.push(Reaction {
            emoji: emoji.to_owned(),
            users: vec![user],
        }),
        (false, Some(i)) => {
            reactions[i].users.retain(|u| *u != user);
            if reactions[i].users.is_empty() {
                reactions.remove(i);
            }
        }
        (false, None) => return Ok(ChangeOutcome::Unchanged(row.try_into()?)),
    }
    let rev = take_next(conn, Counter::Rev, room)?;
    conn.prepare_cached("UPDATE messages SET reactions = ?, rev = ? WHERE id = ?")?
        .execute(params![to_json(&reactions)?, rev, id.get()])?;
    Ok(ChangeOutcome::Updated {
        message: changed(conn, room, id)?,
        removed_uploads: Vec::new(),
    })
}
