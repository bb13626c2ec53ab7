//! The hub: who is connected, which connection follows which room, and fan-out.
//!
//! Each room has a channel holding its newest published position (sequence number of the newest
//! message, revision of the newest change) and its subscribers. Publishing and subscribing a
//! connection both happen under the room's lock, which is what makes resume gapless and
//! duplicate-free: a subscriber is handed a catch-up marker `(after, upto]` and is enqueued
//! every later message and change, in order, in the same outbox.
//!
//! Locks are std `Mutex`/`RwLock` held for map operations and `try_send`s only, never across
//! an `.await`. Order when both are needed: `users` before a room's lock.
//!
//! Frames are serialized once by the caller and shared (`Utf8Bytes` is reference-counted) by
//! every recipient. A subscriber whose outbox is full is too slow: it is closed (it resumes
//! from its cursor later) instead of stalling the room or growing memory.
//!
//! Presence changes and read receipts are not sent one by one: each room collects them
//! (latest per user) and a flusher sends one frame per room every [`BATCH_EVERY`] at most, in
//! chunks of [`BATCH_ENTRIES`]. A reconnect storm of N members of one room then costs about N
//! entries per member instead of N frames per member (N² frames: 12.6 million for 5,000, see
//! docs/perf.md), and a busy room's readers cause one receipts frame per tick, not one per read.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use app::domain::{RoomId, UserId};
use app::protocol::{Presence, Receipt, ServerFrame, close_code};
use axum::extract::ws::Utf8Bytes;

use super::outbox::{Queue, Refused};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub type ConnId = u64;

/// Presence and receipt batches go out this often at most.
pub const BATCH_EVERY: Duration = Duration::from_millis(250);
/// Entries per presence or receipts frame at most: frames stay small (a socket keeps the
/// capacity of the largest frame it ever wrote, see docs/perf.md).
pub const BATCH_ENTRIES: usize = 100;

/// A position in a room: every message up to `seq`, every change up to `rev`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub seq: i64,
    pub rev: i64,
}

/// What a connection's writer task is asked to send.
#[derive(Debug)]
pub enum Outgoing {
    /// A serialized `ServerFrame`, possibly shared with other connections.
    Frame(Utf8Bytes),
    /// Load and send the room's messages and changes in `(after, upto]` as a `synced` frame;
    /// `after: None` means the client holds nothing of the room yet.
    CatchUp {
        room: RoomId,
        after: Option<Cursor>,
        upto: Cursor,
    },
    /// A binary frame (only the test echo route sends these).
    Binary(bytes::Bytes),
    /// A WebSocket ping (heartbeat).
    Ping,
}

pub fn encode(frame: &ServerFrame) -> Utf8Bytes {
    // Our frame types only hold strings, numbers and ids: serialization cannot fail.
    serde_json::to_string(frame)
        .unwrap_or_else(|_| {
            String::from(r#"{"type":"error","code":"internal","message":"encoding failed"}"#)
        })
        .into()
}

/// A handle on one WebSocket connection, cheap to clone.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    pub id: ConnId,
    pub user: UserId,
    pub session: Arc<str>,
    shared: Arc<Shared>,
}

/// What a connection's handles and its writer share: one allocation per connection.
#[derive(Debug)]
struct Shared {
    outbox: Queue,
    /// The tab reported itself hidden (`visibility` frame): it does not count as seeing
    /// notifications.
    hidden: std::sync::atomic::AtomicBool,
    /// The user does not share read receipts: they get none either.
    no_receipts: std::sync::atomic::AtomicBool,
    token: CancellationToken,
    code: AtomicU16,
    reason: Mutex<&'static str>,
}

/// The writer's end of a connection's outbox. Dropping it closes the outbox: frames sent to the
/// connection afterwards are refused, and queued ones dropped.
#[derive(Debug)]
pub struct Outbox {
    shared: Arc<Shared>,
}

/// Nothing is queued.
#[derive(Debug)]
pub struct Empty;

impl Outbox {
    /// The next frame to write, waiting for one.
    pub async fn recv(&self) -> Outgoing {
        self.shared.outbox.pop().await
    }

    pub fn try_recv(&self) -> Result<Outgoing, Empty> {
        self.shared.outbox.try_pop().ok_or(Empty)
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.shared.outbox.close();
    }
}

impl ConnHandle {
    /// A new connection's handle, and its outbox of at most `limit` frames.
    pub fn new(id: ConnId, user: UserId, session: Arc<str>, limit: usize) -> (Self, Outbox) {
        let shared = Arc::new(Shared {
            outbox: Queue::new(limit),
            hidden: std::sync::atomic::AtomicBool::new(false),
            no_receipts: std::sync::atomic::AtomicBool::new(false),
            token: CancellationToken::new(),
            code: AtomicU16::new(0),
            reason: Mutex::new(""),
        });
        let outbox = Outbox {
            shared: shared.clone(),
        };
        (
            Self {
                id,
                user,
                session,
                shared,
            },
            outbox,
        )
    }

    /// Queues `out`; a full outbox closes the connection as too slow. `false` if not queued.
    pub fn send(&self, out: Outgoing) -> bool {
        match self.shared.outbox.push(out) {
            Ok(()) => true,
            Err(Refused::Full) => {
                self.close(close_code::SLOW_CONSUMER, "too slow: reconnect and resume");
                false
            }
            Err(Refused::Closed) => false,
        }
    }

    /// Queues `out`, waiting while the outbox is full (for sockets where the peer's own pace
    /// is the right back-pressure, like the echo route).
    pub async fn send_wait(&self, out: Outgoing) -> bool {
        self.shared.outbox.push_wait(out).await
    }

    pub fn send_frame(&self, frame: &ServerFrame) -> bool {
        self.send(Outgoing::Frame(encode(frame)))
    }

    /// Asks the connection to close with `code`; the first reason given wins.
    pub fn close(&self, code: u16, reason: &'static str) {
        if self
            .shared
            .code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            *self.shared.reason.lock().unwrap_or_else(|p| p.into_inner()) = reason;
        }
        self.shared.token.cancel();
    }

    pub fn closed(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.shared.token.cancelled()
    }

    pub fn set_hidden(&self, hidden: bool) {
        self.shared.hidden.store(hidden, Ordering::Relaxed);
    }

    pub fn set_shares_receipts(&self, share: bool) {
        self.shared.no_receipts.store(!share, Ordering::Relaxed);
    }

    pub fn shares_receipts(&self) -> bool {
        !self.shared.no_receipts.load(Ordering::Relaxed)
    }

    pub fn is_hidden(&self) -> bool {
        self.shared.hidden.load(Ordering::Relaxed)
    }

    /// Whether [`close`](Self::close) was called: an atomic load (the token's own check takes
    /// a lock), cheap enough for every frame written.
    pub fn is_closing(&self) -> bool {
        self.shared.code.load(Ordering::Acquire) != 0
    }

    /// The close code and reason asked for, if any.
    pub fn close_reason(&self) -> Option<(u16, &'static str)> {
        let code = self.shared.code.load(Ordering::Acquire);
        (code != 0).then(|| {
            (
                code,
                *self.shared.reason.lock().unwrap_or_else(|p| p.into_inner()),
            )
        })
    }
}

#[derive(Default)]
struct RoomChannel {
    last: Cursor,
    subs: HashMap<ConnId, ConnHandle>,
    /// Presence changes and receipts waiting for the next flush (boxed: most rooms have none).
    pending: Option<Box<Pending>>,
}

/// What a room's followers are told at the next flush: the latest per user.
#[derive(Default)]
struct Pending {
    presence: HashMap<UserId, Presence>,
    receipts: HashMap<UserId, i64>,
}

/// A user's connections and the rooms each follows. Vectors, not maps: a user has a handful
/// of connections (at most `ws_per_user`), and an empty hash map costs ~400 bytes per online
/// user at its first insert (heaptrack, S1 in docs/perf.md).
#[derive(Default)]
struct UserConns {
    conns: Vec<(ConnHandle, Vec<RoomId>)>,
}

impl UserConns {
    fn get_mut(&mut self, id: ConnId) -> Option<&mut (ConnHandle, Vec<RoomId>)> {
        self.conns.iter_mut().find(|(c, _)| c.id == id)
    }

    fn remove(&mut self, id: ConnId) -> Option<(ConnHandle, Vec<RoomId>)> {
        let at = self.conns.iter().position(|(c, _)| c.id == id)?;
        Some(self.conns.swap_remove(at))
    }
}

#[derive(Default)]
pub struct Hub {
    rooms: RwLock<HashMap<RoomId, Arc<Mutex<RoomChannel>>>>,
    users: Mutex<HashMap<UserId, UserConns>>,
    /// Open connections, all users together.
    total: AtomicUsize,
    /// Counts `unsubscribe_user` calls (someone left or was removed from a room): lets `hello`
    /// skip re-reading memberships when nobody left while it subscribed.
    departures: AtomicU64,
    next_id: AtomicU64,
    /// Rooms with something pending, each once.
    dirty: Mutex<Vec<RoomId>>,
    /// Wakes the flusher when the first room becomes dirty.
    dirty_notify: Notify,
}

/// Refused because the user has too many open connections.
#[derive(Debug)]
pub struct TooManyConnections;

impl Hub {
    /// Seeds the hub with every room's newest position.
    pub fn new(cursors: impl IntoIterator<Item = (RoomId, Cursor)>) -> Self {
        let hub = Self::default();
        {
            let mut rooms = hub.rooms.write().unwrap_or_else(|p| p.into_inner());
            for (room, last) in cursors {
                rooms.insert(
                    room,
                    Arc::new(Mutex::new(RoomChannel {
                        last,
                        ..RoomChannel::default()
                    })),
                );
            }
        }
        hub
    }

    pub fn next_conn_id(&self) -> ConnId {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The room's channel if it exists. Lookups never create one: a client naming made-up
    /// room ids must not grow the map.
    fn existing(&self, room: RoomId) -> Option<Arc<Mutex<RoomChannel>>> {
        self.rooms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&room)
            .cloned()
    }

    /// The room's channel, created if needed: only for rooms that exist in storage.
    fn channel(&self, room: RoomId) -> Arc<Mutex<RoomChannel>> {
        if let Some(c) = self
            .rooms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&room)
        {
            return c.clone();
        }
        self.rooms
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(room)
            .or_default()
            .clone()
    }

    /// Registers a connection. `Ok(true)` when it is the user's first (they came online).
    pub fn connect(&self, conn: &ConnHandle, cap: usize) -> Result<bool, TooManyConnections> {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let entry = users.entry(conn.user).or_default();
        if entry.conns.len() >= cap {
            return Err(TooManyConnections);
        }
        let first = entry.conns.is_empty();
        if entry.get_mut(conn.id).is_none() {
            entry.conns.push((conn.clone(), Vec::new()));
            self.total.fetch_add(1, Ordering::Relaxed);
        }
        Ok(first)
    }

    /// Unregisters a connection and unsubscribes it everywhere. Returns the rooms it followed
    /// and whether the user has no connection left (they went offline).
    pub fn disconnect(&self, conn: &ConnHandle) -> (Vec<RoomId>, bool) {
        let (rooms, last) = {
            let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
            let Some(entry) = users.get_mut(&conn.user) else {
                return (Vec::new(), false);
            };
            let rooms = match entry.remove(conn.id) {
                Some((_, rooms)) => {
                    self.total.fetch_sub(1, Ordering::Relaxed);
                    rooms
                }
                None => Vec::new(),
            };
            let last = entry.conns.is_empty();
            if last {
                users.remove(&conn.user);
            }
            (rooms, last)
        };
        for room in &rooms {
            if let Some(channel) = self.existing(*room) {
                channel
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .subs
                    .remove(&conn.id);
            }
        }
        (rooms, last)
    }

    pub fn is_online(&self, user: UserId) -> bool {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&user)
    }

    /// Whether a notification would be seen in a tab already: the user has a connection that
    /// is not hidden (a tab in the background reports itself hidden).
    pub fn has_visible_tab(&self, user: UserId) -> bool {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user)
            .is_some_and(|u| u.conns.iter().any(|(c, _)| !c.is_hidden()))
    }

    pub fn user_conns(&self, user: UserId) -> Vec<ConnHandle> {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user)
            .map(|u| u.conns.iter().map(|(c, _)| c.clone()).collect())
            .unwrap_or_default()
    }

    pub fn total_connections(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    pub fn connection_count(&self, user: UserId) -> usize {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user)
            .map_or(0, |u| u.conns.len())
    }

    /// Follows `room` on `conn`: queues the catch-up `(after, last published]` and every later
    /// message and change, atomically with respect to publishing.
    pub fn subscribe(&self, room: RoomId, conn: &ConnHandle, after: Option<Cursor>) {
        {
            let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
            match users.get_mut(&conn.user).and_then(|u| u.get_mut(conn.id)) {
                Some((_, rooms)) => {
                    if !rooms.contains(&room) {
                        rooms.push(room);
                    }
                }
                None => return, // already disconnected
            }
        }
        let channel = self.channel(room);
        let mut channel = channel.lock().unwrap_or_else(|p| p.into_inner());
        if conn.send(Outgoing::CatchUp {
            room,
            after,
            upto: channel.last,
        }) {
            channel.subs.insert(conn.id, conn.clone());
        }
    }

    pub fn is_subscribed(&self, room: RoomId, conn: ConnId) -> bool {
        self.existing(room).is_some_and(|channel| {
            channel
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .subs
                .contains_key(&conn)
        })
    }

    /// A room came into existence (its sequence starts at 0).
    pub fn add_room(&self, room: RoomId) {
        self.channel(room);
    }

    /// Fans out a stored message. Called in commit order by the single message writer.
    pub fn publish_message(&self, room: RoomId, seq: i64, frame: Utf8Bytes) {
        self.publish(room, frame, |last| last.seq = last.seq.max(seq));
    }

    /// Fans out a change to a stored message (its `message_updated` frame), in commit order.
    pub fn publish_update(&self, room: RoomId, rev: i64, frame: Utf8Bytes) {
        self.publish(room, frame, |last| last.rev = last.rev.max(rev));
    }

    fn publish(&self, room: RoomId, frame: Utf8Bytes, advance: impl FnOnce(&mut Cursor)) {
        let channel = self.channel(room);
        let mut channel = channel.lock().unwrap_or_else(|p| p.into_inner());
        advance(&mut channel.last);
        channel
            .subs
            .retain(|_, sub| sub.send(Outgoing::Frame(frame.clone())) || !sub.is_closing());
    }

    /// Sends `frame` to everyone following `room`, except connections of `except`.
    pub fn broadcast(&self, room: RoomId, frame: &ServerFrame, except: Option<UserId>) {
        let Some(channel) = self.existing(room) else {
            return;
        };
        let bytes = encode(frame);
        let channel = channel.lock().unwrap_or_else(|p| p.into_inner());
        for sub in channel.subs.values() {
            if Some(sub.user) != except {
                sub.send(Outgoing::Frame(bytes.clone()));
            }
        }
    }

    /// Queues `user`'s presence for the followers of each of `rooms` (next flush).
    pub fn announce_presence(&self, rooms: &[RoomId], presence: &Presence) {
        for room in rooms {
            self.queue(*room, |p| {
                p.presence.insert(presence.user_id, presence.clone());
            });
        }
    }

    /// Queues a read receipt for the room's followers who share receipts (next flush).
    pub fn queue_receipt(&self, room: RoomId, reader: UserId, last_read_seq: i64) {
        self.queue(room, |p| {
            let seq = p.receipts.entry(reader).or_insert(last_read_seq);
            *seq = (*seq).max(last_read_seq);
        });
    }

    fn queue(&self, room: RoomId, add: impl FnOnce(&mut Pending)) {
        let Some(channel) = self.existing(room) else {
            return;
        };
        let mut channel = channel.lock().unwrap_or_else(|p| p.into_inner());
        let first = channel.pending.is_none();
        add(channel.pending.get_or_insert_default());
        drop(channel);
        if first {
            let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
            dirty.push(room);
            if dirty.len() == 1 {
                self.dirty_notify.notify_one();
            }
        }
    }

    /// Sends every room's pending presence and receipts. Returns the frames queued.
    pub fn flush(&self) -> usize {
        let rooms = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner()));
        let mut sent = 0;
        for room in rooms {
            let Some(channel) = self.existing(room) else {
                continue;
            };
            let mut channel = channel.lock().unwrap_or_else(|p| p.into_inner());
            let Some(pending) = channel.pending.take() else {
                continue;
            };
            let presence: Vec<Presence> = pending.presence.into_values().collect();
            for chunk in presence.chunks(BATCH_ENTRIES) {
                let frame = encode(&ServerFrame::Presence {
                    users: chunk.to_vec(),
                });
                for sub in channel
                    .subs
                    .values()
                    .filter(|s| !only(chunk, s.user, |p| p.user_id))
                {
                    sent += usize::from(sub.send(Outgoing::Frame(frame.clone())));
                }
            }
            let reads: Vec<Receipt> = pending
                .receipts
                .into_iter()
                .map(|(user_id, last_read_seq)| Receipt {
                    user_id,
                    last_read_seq,
                })
                .collect();
            for chunk in reads.chunks(BATCH_ENTRIES) {
                let frame = encode(&ServerFrame::Receipts {
                    room_id: room,
                    reads: chunk.to_vec(),
                });
                for sub in channel
                    .subs
                    .values()
                    .filter(|s| s.shares_receipts() && !only(chunk, s.user, |r| r.user_id))
                {
                    sent += usize::from(sub.send(Outgoing::Frame(frame.clone())));
                }
            }
        }
        sent
    }

    /// Flushes pending presence and receipts every [`BATCH_EVERY`] while there are any; sleeps
    /// otherwise. Runs until `shutdown`.
    pub async fn run_flusher(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.dirty_notify.notified() => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(BATCH_EVERY) => {}
            }
            self.flush();
        }
    }

    /// The users following any of `rooms` (they are online and said `hello`), without `except`.
    pub fn online_in(&self, rooms: &[RoomId], except: UserId) -> Vec<UserId> {
        let mut seen = HashSet::new();
        for room in rooms {
            let Some(channel) = self.existing(*room) else {
                continue;
            };
            let channel = channel.lock().unwrap_or_else(|p| p.into_inner());
            seen.extend(channel.subs.values().map(|s| s.user));
        }
        seen.remove(&except);
        let mut users: Vec<UserId> = seen.into_iter().collect();
        users.sort_unstable();
        users
    }

    /// How many times anyone was unsubscribed from a room so far (see `departures`).
    pub fn departures(&self) -> u64 {
        self.departures.load(Ordering::Acquire)
    }

    /// Stops every connection of `user` following `room` at once; returns them.
    pub fn unsubscribe_user(&self, room: RoomId, user: UserId) -> Vec<ConnHandle> {
        self.departures.fetch_add(1, Ordering::AcqRel);
        let conns = {
            let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
            match users.get_mut(&user) {
                Some(u) => u
                    .conns
                    .iter_mut()
                    .map(|(c, rooms)| {
                        rooms.retain(|r| *r != room);
                        c.clone()
                    })
                    .collect::<Vec<_>>(),
                None => Vec::new(),
            }
        };
        if let Some(channel) = self.existing(room) {
            let mut channel = channel.lock().unwrap_or_else(|p| p.into_inner());
            for c in &conns {
                channel.subs.remove(&c.id);
            }
        }
        conns
    }

    /// Stops one connection following `room`.
    pub fn unsubscribe_conn(&self, room: RoomId, conn: &ConnHandle) {
        {
            let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, rooms)) = users.get_mut(&conn.user).and_then(|u| u.get_mut(conn.id)) {
                rooms.retain(|r| *r != room);
            }
        }
        if let Some(channel) = self.existing(room) {
            channel
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .subs
                .remove(&conn.id);
        }
    }

    /// Closes every connection opened with `session`.
    pub fn close_session(&self, session: &str) {
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        for u in users.values() {
            for (c, _) in &u.conns {
                if &*c.session == session {
                    c.close(close_code::SESSION_ENDED, "session ended");
                }
            }
        }
    }

    /// Closes every connection of `user`.
    pub fn close_user(&self, user: UserId) {
        for c in self.user_conns(user) {
            c.close(close_code::SESSION_ENDED, "session ended");
        }
    }

    /// Closes every connection (server shutdown).
    pub fn close_all(&self, code: u16, reason: &'static str) {
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        for u in users.values() {
            for (c, _) in &u.conns {
                c.close(code, reason);
            }
        }
    }
}

/// Whether a batch is only about `user` (nothing to tell them: it is their own news).
fn only<T>(chunk: &[T], user: UserId, who: impl Fn(&T) -> UserId) -> bool {
    matches!(chunk, [one] if who(one) == user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(hub: &Hub, user: i64, cap: usize) -> (ConnHandle, Outbox) {
        let (c, rx) = ConnHandle::new(hub.next_conn_id(), UserId::new(user), "s".into(), cap);
        hub.connect(&c, 8).unwrap();
        (c, rx)
    }

    #[test]
    fn a_subscriber_gets_a_catch_up_marker_then_every_later_message_in_order() {
        let room = RoomId::new(1);
        let hub = Hub::new([(room, Cursor { seq: 5, rev: 3 })]);
        let (c, rx) = conn(&hub, 1, 16);
        let after = Cursor { seq: 2, rev: 1 };
        hub.subscribe(room, &c, Some(after));
        hub.publish_message(room, 6, "six".into());
        hub.publish_update(room, 4, "edit".into());
        hub.publish_message(room, 7, "seven".into());
        assert!(matches!(
            rx.try_recv().unwrap(),
            Outgoing::CatchUp {
                after: Some(a),
                upto: Cursor { seq: 5, rev: 3 },
                ..
            } if a == after
        ));
        for expected in ["six", "edit", "seven"] {
            assert!(matches!(rx.try_recv().unwrap(), Outgoing::Frame(f) if f.as_str() == expected));
        }
        // A later subscriber's catch-up starts where the published stream is.
        let (late, late_rx) = conn(&hub, 2, 16);
        hub.subscribe(room, &late, None);
        assert!(matches!(
            late_rx.try_recv().unwrap(),
            Outgoing::CatchUp {
                upto: Cursor { seq: 7, rev: 4 },
                ..
            }
        ));
    }

    #[test]
    fn a_full_outbox_closes_that_connection_only() {
        let room = RoomId::new(1);
        let hub = Hub::new([(room, Cursor::default())]);
        let (slow, _slow_rx) = conn(&hub, 1, 2);
        let (fast, fast_rx) = conn(&hub, 2, 64);
        hub.subscribe(room, &slow, Some(Cursor::default()));
        hub.subscribe(room, &fast, Some(Cursor::default()));
        for seq in 1..=5 {
            hub.publish_message(room, seq, "m".into());
        }
        assert_eq!(
            slow.close_reason().map(|r| r.0),
            Some(close_code::SLOW_CONSUMER)
        );
        assert!(!fast.is_closing());
        let mut got = 0;
        while fast_rx.try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, 6, "catch-up marker and five messages");
    }

    #[test]
    fn looking_up_made_up_rooms_creates_nothing() {
        let hub = Hub::new([(RoomId::new(1), Cursor::default())]);
        for id in 2..1000 {
            assert!(!hub.is_subscribed(RoomId::new(id), 1));
            hub.broadcast(
                RoomId::new(id),
                &ServerFrame::MemberLeft {
                    room_id: RoomId::new(id),
                    user_id: UserId::new(1),
                },
                None,
            );
        }
        assert_eq!(hub.rooms.read().unwrap().len(), 1);
    }

    fn online(user: i64) -> Presence {
        Presence {
            user_id: UserId::new(user),
            online: true,
            last_seen_at: None,
        }
    }

    fn frames(rx: &mut Outbox) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        while let Ok(o) = rx.try_recv() {
            if let Outgoing::Frame(f) = o {
                out.push(serde_json::from_str(f.as_str()).unwrap());
            }
        }
        out
    }

    #[test]
    fn presence_changes_are_batched_per_room_in_chunks() {
        let room = RoomId::new(1);
        let hub = Hub::new([(room, Cursor::default())]);
        let mut socks = Vec::new();
        for user in 1..=250 {
            let (c, rx) = conn(&hub, user, 2048);
            hub.subscribe(room, &c, Some(Cursor::default()));
            hub.announce_presence(&[room], &online(user));
            socks.push((c, rx));
        }
        // User 7 flaps: the latest state wins.
        hub.announce_presence(
            &[room],
            &Presence {
                user_id: UserId::new(7),
                online: false,
                last_seen_at: Some(1),
            },
        );
        assert_eq!(
            hub.flush(),
            250 * 3,
            "three frames (100 + 100 + 50) per socket"
        );
        for (_, rx) in &mut socks {
            let got = frames(rx);
            assert_eq!(got.len(), 3);
            let entries: Vec<&serde_json::Value> = got
                .iter()
                .flat_map(|f| f["users"].as_array().unwrap())
                .collect();
            assert_eq!(entries.len(), 250);
            let seven = entries.iter().find(|e| e["user_id"] == 7).unwrap();
            assert_eq!(seven["online"], false);
        }
        assert_eq!(hub.flush(), 0, "nothing left to send");
    }

    #[test]
    fn receipts_are_batched_to_sharers_and_nobody_hears_only_their_own_news() {
        let room = RoomId::new(1);
        let hub = Hub::new([(room, Cursor::default())]);
        let (reader, mut reader_rx) = conn(&hub, 1, 64);
        let (sharer, mut sharer_rx) = conn(&hub, 2, 64);
        let (private, mut private_rx) = conn(&hub, 3, 64);
        private.set_shares_receipts(false);
        for c in [&reader, &sharer, &private] {
            hub.subscribe(room, c, Some(Cursor::default()));
        }
        for seq in [3, 5, 4] {
            hub.queue_receipt(room, reader.user, seq);
        }
        hub.flush();
        let got = frames(&mut sharer_rx);
        assert_eq!(
            got,
            vec![serde_json::json!({"type": "receipts", "room_id": 1,
                "reads": [{"user_id": 1, "last_read_seq": 5}]})]
        );
        assert!(frames(&mut private_rx).is_empty());
        assert!(frames(&mut reader_rx).is_empty());
    }

    #[test]
    fn presence_follows_the_first_and_last_connection() {
        let hub = Hub::new([]);
        let (a, _a_rx) = ConnHandle::new(1, UserId::new(1), "s".into(), 4);
        let (b, _b_rx) = ConnHandle::new(2, UserId::new(1), "s".into(), 4);
        assert!(hub.connect(&a, 2).unwrap());
        assert!(!hub.connect(&b, 2).unwrap());
        let (c, _c_rx) = ConnHandle::new(3, UserId::new(1), "s".into(), 4);
        assert!(hub.connect(&c, 2).is_err(), "cap of 2");
        assert!(!hub.disconnect(&a).1);
        assert!(hub.is_online(UserId::new(1)));
        assert!(hub.disconnect(&b).1);
        assert!(!hub.is_online(UserId::new(1)));
    }
}
