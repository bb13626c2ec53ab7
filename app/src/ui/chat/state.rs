//! The client's chat state as signals, and how each server frame changes it.
//!
//! The WebSocket is the only writer of room, message, presence and typing state (`apply`);
//! views only read. HTTP answers (history pages, member lists, the message an edit, delete or
//! reaction returns) merge into the same signals.
//!
//! Messages change after they are stored (edits, deletions, reactions). Each change has a room
//! revision (`rev`); the client keeps the highest one it got from the socket per room and
//! resumes from it, so changes made while it was away arrive in `synced.updated`.

use std::collections::{BTreeMap, HashMap};

use leptos::prelude::*;

use crate::api::{Attachment, Member, Message, RoomSummary, User};
use crate::domain::{RoomId, RoomKind, UserId};
use crate::markdown;
use crate::protocol::{LeftReason, Presence, RoomCursor, ServerFrame};

/// A message the user sent that the server has not confirmed yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub client_id: String,
    pub room_id: RoomId,
    pub body: String,
    pub created_at: f64,
    /// `None` while pending; the reason once it failed (the user may retry).
    pub failed: Option<String>,
    /// The message this one replies to.
    pub reply_to: Option<Message>,
    /// Uploaded files sent with it (their names are shown while sending).
    pub attachments: Vec<Attachment>,
}

crate::json::json_struct!(Outgoing {
    client_id,
    room_id,
    body,
    created_at,
    failed,
    reply_to,
    attachments,
});

/// A file being uploaded for the next message of a room, or uploaded and waiting for Send.
/// The request itself lives in `chat::upload` (it is not `Send`); this is what the view shows.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingUpload {
    /// Local id, also the key of the request in `chat::upload`.
    pub key: u64,
    pub room_id: RoomId,
    pub name: String,
    pub state: UploadState,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UploadState {
    /// Fraction sent, 0 to 1 (`None` until the browser reports a total).
    Uploading(Option<f64>),
    Done(Attachment),
    /// The server's (or the network's) reason, for the chip.
    Failed(String),
}

/// What the client holds of one room: a contiguous run of messages ending at the newest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    pub messages: BTreeMap<i64, Message>,
    /// The highest room revision received over the socket (`synced.last_rev`,
    /// `message_updated`): the `last_rev` of the next `hello`. HTTP answers never raise it: the
    /// socket may still owe us older changes, which a resume from a higher cursor would skip.
    pub last_rev: i64,
    /// The catch-up after the last (re)connect has arrived.
    pub synced: bool,
    pub loading_older: bool,
}

impl Timeline {
    pub fn has_older(&self) -> bool {
        self.messages.keys().next().is_some_and(|first| *first > 1)
    }

    /// Replaces the held copy of `message` (same seq and id) unless the held one is newer, and
    /// refreshes its quote in held replies. A message not held is not inserted (that could
    /// leave a gap in the run), but replies to it still get the new quote.
    fn update(&mut self, message: Message) {
        let held = self
            .messages
            .get(&message.seq)
            .filter(|held| held.id == message.id);
        // Stale (an HTTP answer overtaken by a newer frame), or nothing new.
        if held.is_some_and(|held| held.rev > message.rev || *held == message) {
            return;
        }
        let is_held = held.is_some();
        let excerpt = markdown::excerpt(&message_nodes(&message));
        for m in self.messages.values_mut() {
            if let Some(r) = m.reply_to.as_mut().filter(|r| r.id == message.id) {
                r.excerpt.clone_from(&excerpt);
                r.deleted = message.deleted;
            }
        }
        if is_held {
            self.messages.insert(message.seq, message);
        }
    }
}

/// The nodes a message shows (see `crate::markdown`).
pub fn message_nodes(message: &Message) -> std::borrow::Cow<'_, [markdown::Node]> {
    markdown::nodes(&message.body, message.formatted.as_deref())
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Connection {
    Connecting,
    Open,
    /// Waiting to reconnect; `retry_at` is a `Date.now()` time.
    Waiting {
        retry_at: f64,
        attempt: u32,
    },
}

#[derive(Clone, Copy)]
pub struct Chat {
    pub me: RwSignal<Option<User>>,
    pub rooms: RwSignal<Vec<RoomSummary>>,
    pub timelines: RwSignal<HashMap<RoomId, Timeline>>,
    pub outbox: RwSignal<Vec<Outgoing>>,
    pub presence: RwSignal<HashMap<UserId, Presence>>,
    /// Who is typing where, with the time (ms) the indicator expires.
    pub typing: RwSignal<HashMap<RoomId, HashMap<UserId, f64>>>,
    pub users: RwSignal<HashMap<UserId, User>>,
    /// Member lists of the rooms whose list was loaded, kept current by member frames.
    pub members: RwSignal<HashMap<RoomId, Vec<Member>>>,
    /// The emoji list, once fetched (see `chat::emoji`).
    pub emoji: RwSignal<Option<std::sync::Arc<Vec<crate::api::EmojiEntry>>>>,
    pub emoji_loading: RwSignal<bool>,
    pub connection: RwSignal<Connection>,
    /// A message for the user that is not tied to a form (e.g. "you were removed from X").
    pub notice: RwSignal<Option<String>>,
    /// Files attached (or being attached) to the next message, per room.
    pub uploads: RwSignal<Vec<PendingUpload>>,
    /// Read receipts: how far each member who shares them has read, per room (from member
    /// lists and `receipt` frames).
    pub receipts: RwSignal<HashMap<RoomId, HashMap<UserId, i64>>>,
    /// The conversation on screen (set by the room view), for in-app notices.
    pub active_room: RwSignal<Option<RoomId>>,
    /// In-app notices of new messages in other conversations, newest last.
    pub toasts: RwSignal<Vec<Toast>>,
}

/// "Alice in #general: lunch?" shown for a moment when a message arrives elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct Toast {
    pub id: u64,
    pub room_id: RoomId,
    pub title: String,
    pub text: String,
}

/// In-app notices shown at once, at most.
pub const MAX_TOASTS: usize = 3;

/// How long a typing indicator lives without a refresh.
pub const TYPING_TTL_MS: f64 = 6000.0;

pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

impl Chat {
    pub fn new() -> Self {
        Self {
            me: RwSignal::new(None),
            rooms: RwSignal::new(Vec::new()),
            timelines: RwSignal::new(HashMap::new()),
            outbox: RwSignal::new(Vec::new()),
            presence: RwSignal::new(HashMap::new()),
            typing: RwSignal::new(HashMap::new()),
            users: RwSignal::new(HashMap::new()),
            members: RwSignal::new(HashMap::new()),
            emoji: RwSignal::new(None),
            emoji_loading: RwSignal::new(false),
            connection: RwSignal::new(Connection::Connecting),
            notice: RwSignal::new(None),
            uploads: RwSignal::new(Vec::new()),
            receipts: RwSignal::new(HashMap::new()),
            active_room: RwSignal::new(None),
            toasts: RwSignal::new(Vec::new()),
        }
    }

    /// Shows an in-app notice for a new message from someone else in a conversation that is
    /// not on screen (or while the tab is hidden), unless the room is muted.
    fn notice_new_message(&self, message: &Message) {
        let Some(room) = self
            .rooms
            .with_untracked(|r| r.iter().find(|r| r.id == message.room_id).cloned())
        else {
            return;
        };
        let on_screen =
            self.active_room.get_untracked() == Some(room.id) && super::socket::tab_visible();
        if room.muted || on_screen || message.deleted {
            return;
        }
        let who = self.name_of(message.sender_id);
        let title = match room.kind {
            RoomKind::Dm => who,
            RoomKind::Room => format!("{who} in #{}", room.name),
        };
        let plain = markdown::plain_text(&message_nodes(message));
        let mut text: String = plain.trim().chars().take(120).collect();
        if text.is_empty() {
            text = match message.attachments.len() {
                0 => String::new(),
                1 => "sent a file".into(),
                n => format!("sent {n} files"),
            };
        }
        let id = message.id.get() as u64;
        self.toasts.update(|t| {
            t.retain(|x| x.room_id != room.id);
            t.push(Toast {
                id,
                room_id: room.id,
                title,
                text,
            });
            while t.len() > MAX_TOASTS {
                t.remove(0);
            }
        });
        let chat = *self;
        set_timeout(
            move || {
                chat.toasts.try_update(|t| t.retain(|x| x.id != id));
            },
            std::time::Duration::from_secs(6),
        );
    }

    /// Puts back what was kept offline (before the socket connects): rooms, the newest
    /// messages, the outbox. `hello` then resumes from these cursors.
    pub fn restore(&self, snap: super::offline::Snapshot) {
        if !self.alive() {
            return;
        }
        self.users.update(|u| {
            for user in snap.users {
                u.entry(user.id).or_insert(user);
            }
        });
        if self.rooms.with_untracked(Vec::is_empty) {
            self.rooms.set(snap.rooms);
        }
        self.timelines.update(|t| {
            for saved in snap.timelines {
                let tl = t.entry(saved.room_id).or_default();
                if tl.messages.is_empty() {
                    tl.last_rev = saved.last_rev;
                    tl.messages = saved.messages.into_iter().map(|m| (m.seq, m)).collect();
                }
            }
        });
        self.outbox.update(|o| {
            for p in snap.outbox {
                if !o.iter().any(|x| x.client_id == p.client_id) {
                    o.push(p);
                }
            }
        });
    }

    /// Messages after the user's read marker in a room (their own move the marker).
    pub fn unread(&self, room: &RoomSummary) -> i64 {
        (room.last_seq - room.last_read_seq).max(0)
    }

    /// Unread messages in rooms that are not muted: the tab title and app badge.
    pub fn unread_total(&self) -> i64 {
        self.rooms.with(|rooms| {
            rooms
                .iter()
                .filter(|r| !r.muted)
                .map(|r| self.unread(r))
                .sum()
        })
    }

    /// The user has seen `room` up to `seq`: moves the marker here at once and tells the
    /// server (which tells the user's other tabs). Only forward.
    pub fn mark_read(&self, room: RoomId, seq: i64) {
        if !self.alive() {
            return;
        }
        let moved = self.rooms.with_untracked(|rooms| {
            rooms
                .iter()
                .find(|r| r.id == room)
                .is_some_and(|r| seq > r.last_read_seq)
        });
        if !moved {
            return;
        }
        self.rooms.update(|rooms| {
            if let Some(r) = rooms.iter_mut().find(|r| r.id == room) {
                r.last_read_seq = seq;
                if seq >= r.last_seq {
                    r.mentions = 0;
                }
            }
        });
        super::socket::send(&crate::protocol::ClientFrame::Read { room_id: room, seq });
    }

    /// Who has read message `seq` of `room`, by their receipts (the user excluded).
    pub fn seen_by(&self, room: RoomId, seq: i64) -> Vec<UserId> {
        let me = self.me.with(|me| me.as_ref().map(|m| m.id));
        self.receipts.with(|r| {
            r.get(&room)
                .map(|users| {
                    users
                        .iter()
                        .filter(|(user, read)| Some(**user) != me && **read >= seq)
                        .map(|(user, _)| *user)
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// Whether the signals still exist. Timers and HTTP answers can arrive after the user
    /// signed out (the chat state is disposed with the signed-in layout); they must then do
    /// nothing instead of touching disposed signals (which panics).
    pub fn alive(&self) -> bool {
        self.rooms.try_with_untracked(|_| ()).is_some()
    }

    /// Where the client stands in each room, for `hello`.
    pub fn cursors(&self) -> Vec<RoomCursor> {
        self.timelines.with_untracked(|t| {
            t.iter()
                .filter_map(|(room, tl)| {
                    tl.messages.keys().next_back().map(|last| RoomCursor {
                        room_id: *room,
                        last_seq: *last,
                        last_rev: tl.last_rev,
                    })
                })
                .collect()
        })
    }

    pub fn room(&self, id: RoomId) -> Option<RoomSummary> {
        self.rooms
            .with(|rooms| rooms.iter().find(|r| r.id == id).cloned())
    }

    pub fn is_online(&self, user: UserId) -> bool {
        if self.me.with(|me| me.as_ref().is_some_and(|m| m.id == user)) {
            return self.connection.get() == Connection::Open;
        }
        self.presence
            .with(|p| p.get(&user).is_some_and(|p| p.online))
    }

    pub fn name_of(&self, user: UserId) -> String {
        self.users.with(|u| {
            u.get(&user)
                .map(|u| u.display_name.to_string())
                .unwrap_or_else(|| format!("user {user}"))
        })
    }

    /// A room's member list as loaded over HTTP.
    pub fn set_members(&self, room: RoomId, members: Vec<Member>) {
        if !self.alive() {
            return;
        }
        self.remember_members(&members);
        self.receipts.update(|r| {
            let room_receipts = r.entry(room).or_default();
            for m in &members {
                if let Some(read) = m.last_read_seq {
                    let held = room_receipts.entry(m.user.id).or_insert(read);
                    *held = (*held).max(read);
                }
            }
        });
        self.members.update(|m| {
            m.insert(room, members);
        });
    }

    pub fn remember_members(&self, members: &[Member]) {
        self.users.update(|u| {
            for m in members {
                u.insert(m.user.id, m.user.clone());
            }
        });
        self.presence.update(|p| {
            for m in members {
                p.insert(
                    m.user.id,
                    Presence {
                        user_id: m.user.id,
                        online: m.online,
                        last_seen_at: m.last_seen_at,
                    },
                );
            }
        });
    }

    /// Older history from `GET /messages?before=`.
    pub fn prepend(&self, room: RoomId, messages: Vec<Message>) {
        if !self.alive() {
            return;
        }
        self.timelines.update(|t| {
            let tl = t.entry(room).or_default();
            tl.loading_older = false;
            for m in messages {
                // A change that came over the socket meanwhile may be newer than this page.
                if tl.messages.get(&m.seq).is_some_and(|held| held.rev > m.rev) {
                    continue;
                }
                tl.messages.insert(m.seq, m);
            }
        });
    }

    /// A message's new state: from a `message_updated` frame (`from_socket`), or from the
    /// answer to our own edit, delete or reaction (shown at once; the frame follows).
    pub fn update_message(&self, message: Message, from_socket: bool) {
        if !self.alive() {
            return;
        }
        let room = message.room_id;
        let rev = message.rev;
        self.timelines.update(|t| {
            let Some(tl) = t.get_mut(&room) else { return };
            tl.update(message);
            if from_socket {
                tl.last_rev = tl.last_rev.max(rev);
            }
        });
    }

    fn insert_message(&self, message: Message) {
        let room = message.room_id;
        let seq = message.seq;
        let sender = message.sender_id;
        self.typing.update(|t| {
            if let Some(r) = t.get_mut(&room) {
                r.remove(&sender);
            }
        });
        let mine = self
            .me
            .with_untracked(|me| me.as_ref().is_some_and(|m| m.id == sender));
        if mine {
            let client_id = message.client_id.as_str().to_owned();
            self.outbox
                .update(|o| o.retain(|p| p.client_id != client_id));
        }
        self.timelines.update(|t| {
            t.entry(room).or_default().messages.insert(seq, message);
        });
        let my_name = self
            .me
            .with_untracked(|me| me.as_ref().map(|m| m.username.to_string()));
        let mentions_me = !mine
            && my_name.is_some_and(|name| {
                self.timelines.with_untracked(|t| {
                    t.get(&room)
                        .and_then(|tl| tl.messages.get(&seq))
                        .is_some_and(|m| markdown::mentions_in(&message_nodes(m)).contains(&name))
                })
            });
        let is_new = self.rooms.with_untracked(|rooms| {
            rooms
                .iter()
                .find(|r| r.id == room)
                .is_some_and(|r| seq > r.last_seq)
        });
        self.rooms.update(|rooms| {
            if let Some(r) = rooms.iter_mut().find(|r| r.id == room) {
                let new = seq > r.last_seq;
                r.last_seq = r.last_seq.max(seq);
                if mine {
                    // Writing moves the read marker (the server does the same).
                    r.last_read_seq = r.last_read_seq.max(seq);
                    r.mentions = 0;
                } else if new && mentions_me && seq > r.last_read_seq {
                    r.mentions += 1;
                }
            }
        });
        if !mine
            && is_new
            && let Some(m) = self
                .timelines
                .with_untracked(|t| t.get(&room).and_then(|tl| tl.messages.get(&seq)).cloned())
        {
            self.notice_new_message(&m);
        }
    }

    fn upsert_room(&self, room: RoomSummary) {
        if let Some(peer) = &room.peer {
            let peer = peer.clone();
            self.users.update(|u| {
                u.insert(peer.id, peer);
            });
        }
        self.rooms
            .update(|rooms| match rooms.iter_mut().find(|r| r.id == room.id) {
                Some(existing) => *existing = room,
                None => rooms.push(room),
            });
    }

    /// Applies one frame from the server.
    pub fn apply(&self, frame: ServerFrame) {
        if !self.alive() {
            return;
        }
        match frame {
            ServerFrame::Ready { user, rooms } => {
                self.users.update(|u| {
                    u.insert(user.id, user.clone());
                    for r in &rooms {
                        if let Some(peer) = &r.peer {
                            u.insert(peer.id, peer.clone());
                        }
                    }
                });
                self.me.set(Some(user));
                // Who is online follows in `presence` frames: everyone else is offline.
                self.presence.update(|p| p.retain(|_, p| !p.online));
                self.timelines.update(|t| {
                    t.retain(|id, _| rooms.iter().any(|r| r.id == *id));
                    for tl in t.values_mut() {
                        tl.synced = false;
                    }
                });
                self.rooms.set(rooms);
            }
            ServerFrame::Synced {
                room_id,
                messages,
                updated,
                limited,
                last_rev,
            } => {
                self.timelines.update(|t| {
                    let tl = t.entry(room_id).or_default();
                    if limited {
                        tl.messages.clear();
                        tl.last_rev = 0;
                    }
                    for m in messages {
                        tl.messages.insert(m.seq, m);
                    }
                    for m in updated {
                        tl.update(m);
                    }
                    // New messages may quote held ones that changed; their excerpts are
                    // current already (the server writes them when it sends).
                    tl.last_rev = tl.last_rev.max(last_rev);
                    tl.synced = true;
                });
                let newest = self.timelines.with_untracked(|t| {
                    t.get(&room_id)
                        .and_then(|tl| tl.messages.keys().next_back().copied())
                });
                if let Some(newest) = newest {
                    self.rooms.update(|rooms| {
                        if let Some(r) = rooms.iter_mut().find(|r| r.id == room_id) {
                            r.last_seq = r.last_seq.max(newest);
                        }
                    });
                }
                // Our own messages that were stored before the connection dropped: confirmed.
                let me = self.me.with_untracked(|me| me.as_ref().map(|m| m.id));
                let stored: Vec<String> = self.timelines.with_untracked(|t| {
                    t.get(&room_id)
                        .map(|tl| {
                            tl.messages
                                .values()
                                .filter(|m| Some(m.sender_id) == me)
                                .map(|m| m.client_id.as_str().to_owned())
                                .collect()
                        })
                        .unwrap_or_default()
                });
                self.outbox.update(|o| {
                    o.retain(|p| p.room_id != room_id || !stored.contains(&p.client_id))
                });
            }
            ServerFrame::Message { message } => self.insert_message(message),
            ServerFrame::MessageUpdated { message } => self.update_message(message, true),
            ServerFrame::Sent { message, .. } => self.insert_message(message),
            ServerFrame::Error {
                message, client_id, ..
            } => match client_id {
                Some(id) => self.outbox.update(|o| {
                    if let Some(p) = o.iter_mut().find(|p| p.client_id == id) {
                        p.failed = Some(message);
                    }
                }),
                None => self.notice.set(Some(message)),
            },
            ServerFrame::Presence { users } => self.presence.update(|map| {
                for p in users {
                    map.insert(p.user_id, p);
                }
            }),
            ServerFrame::Typing {
                room_id,
                user_id,
                active,
            } => self.typing.update(|t| {
                let room = t.entry(room_id).or_default();
                if active {
                    room.insert(user_id, now_ms() + TYPING_TTL_MS);
                } else {
                    room.remove(&user_id);
                }
            }),
            ServerFrame::ReadState(state) => self.rooms.update(|rooms| {
                if let Some(r) = rooms
                    .iter_mut()
                    .find(|r| r.id == state.room_id && state.last_read_seq >= r.last_read_seq)
                {
                    r.last_read_seq = state.last_read_seq;
                    r.mentions = state.mentions;
                }
            }),
            ServerFrame::Receipts { room_id, reads } => self.receipts.update(|r| {
                let room = r.entry(room_id).or_default();
                for read in reads {
                    let held = room.entry(read.user_id).or_insert(0);
                    *held = (*held).max(read.last_read_seq);
                }
            }),
            ServerFrame::RoomJoined { room } => self.upsert_room(room),
            ServerFrame::RoomUpdated {
                room_id,
                name,
                topic,
            } => self.rooms.update(|rooms| {
                if let Some(r) = rooms.iter_mut().find(|r| r.id == room_id) {
                    if r.kind == RoomKind::Room {
                        r.name = name;
                    }
                    r.topic = topic;
                }
            }),
            ServerFrame::RoleChanged { room_id, role } => self.rooms.update(|rooms| {
                if let Some(r) = rooms.iter_mut().find(|r| r.id == room_id) {
                    r.role = role;
                }
            }),
            ServerFrame::RoomLeft { room_id, reason } => {
                let name = self.room(room_id).map(|r| r.name).unwrap_or_default();
                self.rooms.update(|rooms| rooms.retain(|r| r.id != room_id));
                self.timelines.update(|t| {
                    t.remove(&room_id);
                });
                self.members.update(|m| {
                    m.remove(&room_id);
                });
                self.outbox.update(|o| o.retain(|p| p.room_id != room_id));
                self.uploads.update(|u| u.retain(|p| p.room_id != room_id));
                if reason == LeftReason::Kicked {
                    self.notice
                        .set(Some(format!("You were removed from {name}.")));
                }
            }
            ServerFrame::MemberJoined { room_id, member } => {
                self.remember_members(std::slice::from_ref(&member));
                self.members.update(|m| {
                    if let Some(list) = m.get_mut(&room_id) {
                        list.retain(|x| x.user.id != member.user.id);
                        list.push(member);
                        list.sort_by(|a, b| a.user.username.as_str().cmp(b.user.username.as_str()));
                    }
                });
                self.rooms.update(|rooms| {
                    if let Some(r) = rooms.iter_mut().find(|r| r.id == room_id) {
                        r.member_count += 1;
                    }
                });
            }
            ServerFrame::MemberLeft { room_id, user_id } => {
                self.members.update(|m| {
                    if let Some(list) = m.get_mut(&room_id) {
                        list.retain(|x| x.user.id != user_id);
                    }
                });
                self.rooms.update(|rooms| {
                    if let Some(r) = rooms.iter_mut().find(|r| r.id == room_id) {
                        r.member_count = (r.member_count - 1).max(0);
                    }
                });
            }
        }
    }

    /// Drops typing indicators whose time is up.
    pub fn expire_typing(&self) {
        if !self.alive() {
            return;
        }
        let now = now_ms();
        let stale = self
            .typing
            .with_untracked(|t| t.values().any(|r| r.values().any(|exp| *exp <= now)));
        if stale {
            self.typing.update(|t| {
                for r in t.values_mut() {
                    r.retain(|_, exp| *exp > now);
                }
            });
        }
    }
}

impl Default for Chat {
    fn default() -> Self {
        Self::new()
    }
}

pub fn use_chat() -> Chat {
    expect_context::<Chat>()
}
