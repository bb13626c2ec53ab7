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

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use app::domain::{RoomId, UserId};
use app::protocol::{ServerFrame, close_code};
use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub type ConnId = u64;

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
    outbox: mpsc::Sender<Outgoing>,
    closing: Arc<Closing>,
}

#[derive(Debug, Default)]
struct Closing {
    /// The tab reported itself hidden (`visibility` frame): it does not count as seeing
    /// notifications.
    hidden: std::sync::atomic::AtomicBool,
    /// The user does not share read receipts: they get none either.
    no_receipts: std::sync::atomic::AtomicBool,
    token: CancellationToken,
    code: AtomicU16,
    reason: Mutex<&'static str>,
}

impl ConnHandle {
    pub fn new(
        id: ConnId,
        user: UserId,
        session: Arc<str>,
        outbox: mpsc::Sender<Outgoing>,
    ) -> Self {
        Self {
            id,
            user,
            session,
            outbox,
            closing: Arc::default(),
        }
    }

    /// Queues `out`; a full outbox closes the connection as too slow. `false` if not queued.
    pub fn send(&self, out: Outgoing) -> bool {
        match self.outbox.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(close_code::SLOW_CONSUMER, "too slow: reconnect and resume");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues `out`, waiting while the outbox is full (for sockets where the peer's own pace
    /// is the right back-pressure, like the echo route).
    pub async fn send_wait(&self, out: Outgoing) -> bool {
        self.outbox.send(out).await.is_ok()
    }

    pub fn send_frame(&self, frame: &ServerFrame) -> bool {
        self.send(Outgoing::Frame(encode(frame)))
    }

    /// Asks the connection to close with `code`; the first reason given wins.
    pub fn close(&self, code: u16, reason: &'static str) {
        if self
            .closing
            .code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            *self
                .closing
                .reason
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = reason;
        }
        self.closing.token.cancel();
    }

    pub fn closed(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.closing.token.cancelled()
    }

    pub fn set_hidden(&self, hidden: bool) {
        self.closing.hidden.store(hidden, Ordering::Relaxed);
    }

    pub fn set_shares_receipts(&self, share: bool) {
        self.closing.no_receipts.store(!share, Ordering::Relaxed);
    }

    pub fn shares_receipts(&self) -> bool {
        !self.closing.no_receipts.load(Ordering::Relaxed)
    }

    pub fn is_hidden(&self) -> bool {
        self.closing.hidden.load(Ordering::Relaxed)
    }

    pub fn is_closing(&self) -> bool {
        self.closing.token.is_cancelled()
    }

    /// The close code and reason asked for, if any.
    pub fn close_reason(&self) -> Option<(u16, &'static str)> {
        let code = self.closing.code.load(Ordering::Acquire);
        (code != 0).then(|| {
            (
                code,
                *self
                    .closing
                    .reason
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
            )
        })
    }
}

#[derive(Default)]
struct RoomChannel {
    last: Cursor,
    subs: HashMap<ConnId, ConnHandle>,
}

#[derive(Default)]
struct UserConns {
    conns: HashMap<ConnId, (ConnHandle, HashSet<RoomId>)>,
}

#[derive(Default)]
pub struct Hub {
    rooms: RwLock<HashMap<RoomId, Arc<Mutex<RoomChannel>>>>,
    users: Mutex<HashMap<UserId, UserConns>>,
    next_id: AtomicU64,
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
                        subs: HashMap::new(),
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
        entry.conns.insert(conn.id, (conn.clone(), HashSet::new()));
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
            let rooms = entry
                .conns
                .remove(&conn.id)
                .map(|(_, rooms)| rooms.into_iter().collect::<Vec<_>>())
                .unwrap_or_default();
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
            .is_some_and(|u| u.conns.values().any(|(c, _)| !c.is_hidden()))
    }

    pub fn user_conns(&self, user: UserId) -> Vec<ConnHandle> {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user)
            .map(|u| u.conns.values().map(|(c, _)| c.clone()).collect())
            .unwrap_or_default()
    }

    pub fn total_connections(&self) -> usize {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|u| u.conns.len())
            .sum()
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
            match users
                .get_mut(&conn.user)
                .and_then(|u| u.conns.get_mut(&conn.id))
            {
                Some((_, rooms)) => {
                    rooms.insert(room);
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

    /// Sends a read receipt to the room's followers who share receipts, except the reader.
    pub fn broadcast_receipt(&self, room: RoomId, frame: &ServerFrame, reader: UserId) {
        let Some(channel) = self.existing(room) else {
            return;
        };
        let bytes = encode(frame);
        let channel = channel.lock().unwrap_or_else(|p| p.into_inner());
        for sub in channel.subs.values() {
            if sub.user != reader && sub.shares_receipts() {
                sub.send(Outgoing::Frame(bytes.clone()));
            }
        }
    }

    /// Sends `frame` once to every connection following any of `rooms`, except `except`'s.
    pub fn broadcast_to_rooms(&self, rooms: &[RoomId], frame: &ServerFrame, except: UserId) {
        let bytes = encode(frame);
        let mut seen = HashSet::new();
        for room in rooms {
            let Some(channel) = self.existing(*room) else {
                continue;
            };
            let channel = channel.lock().unwrap_or_else(|p| p.into_inner());
            for sub in channel.subs.values() {
                if sub.user != except && seen.insert(sub.id) {
                    sub.send(Outgoing::Frame(bytes.clone()));
                }
            }
        }
    }

    /// Stops every connection of `user` following `room` at once; returns them.
    pub fn unsubscribe_user(&self, room: RoomId, user: UserId) -> Vec<ConnHandle> {
        let conns = {
            let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
            match users.get_mut(&user) {
                Some(u) => u
                    .conns
                    .values_mut()
                    .map(|(c, rooms)| {
                        rooms.remove(&room);
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
            if let Some((_, rooms)) = users
                .get_mut(&conn.user)
                .and_then(|u| u.conns.get_mut(&conn.id))
            {
                rooms.remove(&room);
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
            for (c, _) in u.conns.values() {
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
            for (c, _) in u.conns.values() {
                c.close(code, reason);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(hub: &Hub, user: i64, cap: usize) -> (ConnHandle, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(cap);
        let c = ConnHandle::new(hub.next_conn_id(), UserId::new(user), "s".into(), tx);
        hub.connect(&c, 8).unwrap();
        (c, rx)
    }

    #[test]
    fn a_subscriber_gets_a_catch_up_marker_then_every_later_message_in_order() {
        let room = RoomId::new(1);
        let hub = Hub::new([(room, Cursor { seq: 5, rev: 3 })]);
        let (c, mut rx) = conn(&hub, 1, 16);
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
        let (late, mut late_rx) = conn(&hub, 2, 16);
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
        let (fast, mut fast_rx) = conn(&hub, 2, 64);
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

    #[test]
    fn presence_follows_the_first_and_last_connection() {
        let hub = Hub::new([]);
        let (tx, _rx) = mpsc::channel(4);
        let a = ConnHandle::new(1, UserId::new(1), "s".into(), tx.clone());
        let b = ConnHandle::new(2, UserId::new(1), "s".into(), tx);
        assert!(hub.connect(&a, 2).unwrap());
        assert!(!hub.connect(&b, 2).unwrap());
        let (tx, _rx) = mpsc::channel(4);
        let c = ConnHandle::new(3, UserId::new(1), "s".into(), tx);
        assert!(hub.connect(&c, 2).is_err(), "cap of 2");
        assert!(!hub.disconnect(&a).1);
        assert!(hub.is_online(UserId::new(1)));
        assert!(hub.disconnect(&b).1);
        assert!(!hub.is_online(UserId::new(1)));
    }
}
