//! When each user was last connected ("last seen"), recorded as their last socket ends and
//! written to the database in batches.
//!
//! Why batches: "last seen" is advice shown beside an offline member, not data a client was
//! promised, and it changes for every user at once when many sockets end together (a server
//! stopping, a network cut). Written one row per socket, each end was its own `fsync`'d
//! transaction, all queued behind the single SQLite writer lock that messages need too: a
//! server with 5,000 open sockets took 1.4 s to stop on a fast disk, and would take ~10 s where
//! an `fsync` takes 2 ms (docs/perf.md, seventeenth round). Here
//! an end costs a map insert; a background task writes what has gathered once a second in one
//! transaction per [`CHUNK`] users, and the server writes the rest after the last socket ended,
//! before it closes the database. Until written, readers see the pending value through
//! [`LastSeen::get`].
//!
//! Bounded: one entry per user (a later end replaces an earlier one), and a user is only added
//! by one of their sockets ending, so the map never holds more users than have accounts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use app::domain::UserId;
use tokio_util::sync::CancellationToken;

use crate::storage::Storage;

/// How often gathered ends are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Users written per transaction at most.
pub const CHUNK: usize = 1000;

#[derive(Default)]
pub struct LastSeen {
    pending: Mutex<HashMap<UserId, i64>>,
}

impl LastSeen {
    /// `user`'s last socket ended at `at` (ms since the epoch).
    pub fn record(&self, user: UserId, at: i64) {
        let mut pending = self.lock();
        let seen = pending.entry(user).or_insert(at);
        *seen = (*seen).max(at);
    }

    /// A time recorded for `user` and not yet written.
    pub fn get(&self, user: UserId) -> Option<i64> {
        self.lock().get(&user).copied()
    }

    /// Writes what has gathered. An entry leaves the map only once written (so readers see it
    /// in one place or the other), and only if no newer time was recorded meanwhile; what fails
    /// to be written stays for the next try. Returns how many users were written.
    pub async fn flush(&self, storage: &dyn Storage) -> usize {
        let gathered: Vec<(UserId, i64)> = self.lock().iter().map(|(&u, &at)| (u, at)).collect();
        let mut written = 0;
        for chunk in gathered.chunks(CHUNK) {
            match storage.update_users_last_seen(chunk).await {
                Ok(()) => {
                    written += chunk.len();
                    let mut pending = self.lock();
                    for (user, at) in chunk {
                        if pending.get(user) == Some(at) {
                            pending.remove(user);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = ?e, users = chunk.len(), "could not record last seen");
                }
            }
        }
        written
    }

    /// Writes what has gathered every [`FLUSH_EVERY`] until `shutdown`. The last ends of a
    /// stopping server come after that: [`flush`](Self::flush) them once the sockets are done.
    pub async fn run(self: Arc<Self>, storage: Arc<dyn Storage>, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(FLUSH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            if !self.lock().is_empty() {
                self.flush(storage.as_ref()).await;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<UserId, i64>> {
        // A map of plain values: a panic elsewhere cannot leave it half-updated.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_kept_once_with_their_latest_time() {
        let seen = LastSeen::default();
        let alice = UserId::new(1);
        seen.record(alice, 20);
        seen.record(alice, 10);
        seen.record(UserId::new(2), 5);
        assert_eq!(seen.get(alice), Some(20));
        assert_eq!(seen.lock().len(), 2);
        assert_eq!(seen.get(UserId::new(3)), None);
    }

    #[tokio::test]
    async fn a_flush_writes_what_gathered_and_leaves_the_map_empty() {
        use crate::storage::SqliteStorage;
        use crate::storage::test_data::alice_with_a_room;
        let storage = SqliteStorage::in_memory().await.unwrap();
        let (alice, room) = alice_with_a_room(&storage).await;
        let seen = LastSeen::default();
        seen.record(alice.id, 10);
        // A user deleted meanwhile has no row to update: not an error.
        seen.record(UserId::new(999), 20);
        assert_eq!(seen.flush(&storage).await, 2);
        assert!(seen.lock().is_empty());
        assert_eq!(seen.flush(&storage).await, 0);
        let members = storage.read_members(room.id).await.unwrap();
        assert_eq!(members[0].last_seen_at, Some(10));
    }
}
