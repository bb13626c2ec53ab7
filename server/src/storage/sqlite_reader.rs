//! Reads on the hot paths (every request's session, a sign-in's credentials, opening a socket,
//! catching up, history pages), run inline on the calling thread with a rusqlite connection
//! from a small idle list.
//!
//! Why inline: each of these reads is one indexed query that takes a few microseconds with the
//! pages cached, while sqlx hands every statement to its worker thread and the rows back, at
//! least two context switches per query and more for a result of many rows. Opening a socket
//! ran four such queries; profiled during S1 (docs/perf.md), 30 % of the server's core went to
//! those switches and their wake-ups, more than to the queries. In WAL mode a reader never
//! waits for the writer, so a read here does not block on a lock; what it can wait for is the
//! disk on a page-cache miss, the same wait a `read()` of an uncached file would cost the
//! worker. Every read here is bounded (a point lookup, a user's rooms, at most
//! [`RESUME_MAX`](crate::realtime::connection::RESUME_MAX) + 1 messages). Other reads stay on
//! the sqlx pool.
//!
//! A connection is taken from the idle list for one read and put back after it. A read never
//! yields, so no more connections are in use at once than there are threads running reads;
//! at most [`IDLE`] are kept.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, Row};

use super::{RoomRow, UserRow};
use crate::storage::StorageError;

/// Idle connections kept for the next read.
const IDLE: usize = 8;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 32;

pub(super) struct Readers {
    path: PathBuf,
    /// An in-memory database shared through SQLite's shared cache (tests): readers there read
    /// uncommitted data instead of taking table locks the writer would wait for.
    shared_cache: bool,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(path: &Path, shared_cache: bool) -> Self {
        Self {
            path: path.to_owned(),
            shared_cache,
            idle: Mutex::new(Vec::with_capacity(IDLE)),
        }
    }

    /// Runs `read` on an idle connection (opening one if none is idle).
    pub(super) fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let idle = self.lock().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = read(&conn);
        let mut idle = self.lock();
        if idle.len() < IDLE {
            idle.push(conn);
        }
        result
    }

    /// Closes the idle connections (shutdown).
    pub(super) fn close(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // The list holds no invariant a panic could break: a poisoned lock is still usable.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn open(&self) -> Result<Connection, StorageError> {
        // Read-write but `query_only`: a read-only connection could not create the WAL index
        // if it were the first to open the file.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        super::writer::plan_once(&conn)?;
        conn.busy_timeout(super::BUSY_TIMEOUT)?;
        conn.execute_batch("PRAGMA cache_size = -1024; PRAGMA query_only = ON;")?;
        if self.shared_cache {
            conn.execute_batch("PRAGMA read_uncommitted = ON;")?;
        }
        Ok(conn)
    }
}

/// A user from the row's columns `at`, `at + 1`, ... in the order of
/// `id, username, display_name, created_at`. By position: looking a column up by name
/// compares it with every column's name (~2 % of S1's opening of a socket, docs/perf.md).
pub(super) fn user_row(r: &Row<'_>, at: usize) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(at)?,
        username: r.get(at + 1)?,
        display_name: r.get(at + 2)?,
        created_at: r.get(at + 3)?,
    })
}

/// A room from the row's columns `at`, `at + 1`, ... in the order of `room_columns!`.
pub(super) fn room_row(r: &Row<'_>, at: usize) -> rusqlite::Result<RoomRow> {
    Ok(RoomRow {
        id: r.get(at)?,
        kind: r.get(at + 1)?,
        name: r.get(at + 2)?,
        topic: r.get(at + 3)?,
        visibility: r.get(at + 4)?,
        created_at: r.get(at + 5)?,
        last_seq: r.get(at + 6)?,
    })
}
