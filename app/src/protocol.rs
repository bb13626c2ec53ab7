//! The WebSocket protocol at `/ws`: every frame either side may send, as JSON text frames
//! tagged by `"type"`. Shared by the server and the client so the two cannot drift apart;
//! docs/protocol.md shows each with an example.
//!
//! A session: connect (authenticated by cookie or bearer token) → the client sends `hello`
//! with the last sequence number it holds per room → the server answers `ready`, then one
//! `synced` per room with exactly the missed messages, then the live stream.

use serde::{Deserialize, Serialize};

use crate::api::{Member, Message, RoomSummary, User};
use crate::domain::{RoomId, UserId};
use crate::error::ErrorCode;

/// The client's position in one room: it holds every message up to `last_seq`, each as of
/// room revision `last_rev`.
///
/// Two counters per room: `seq` numbers new messages; `rev` numbers changes to existing ones
/// (edits, deletions, reactions). Both only grow, and both are assigned by the one writer, so
/// "everything after my cursor" is well defined for either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCursor {
    pub room_id: RoomId,
    pub last_seq: i64,
    /// The highest `rev` the client has seen in the room (`synced.last_rev`, or a
    /// `message_updated`'s `message.rev`). 0, or absent, asks for every change since `last_seq`'s
    /// messages were stored (up to the resume limit).
    #[serde(default)]
    pub last_rev: i64,
}

/// Frames the client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame after connecting. Rooms not listed are treated as new to this client: it gets
    /// their latest page (`limited` when older messages exist).
    Hello {
        #[serde(default)]
        resume: Vec<RoomCursor>,
    },
    /// Post a message. Acknowledged with `sent` only after it is durably stored; sending again
    /// with the same `client_id` returns the original and stores nothing.
    Send {
        room_id: RoomId,
        client_id: String,
        body: String,
        /// Optional: the id of a message of the same room this one replies to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<crate::domain::MessageId>,
        /// Ids of uploads (`POST /api/uploads`) of the sender not used yet, at most 10. With
        /// attachments, `body` may be empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<String>,
    },
    /// The user is (or stopped) typing in a room. Send `active: true` at most every 3 s while
    /// typing; receivers expire it after 6 s on their own.
    Typing { room_id: RoomId, active: bool },
    /// The user has seen the room up to `seq` (forward only). Their other tabs get
    /// `read_state`; members who share receipts get `receipt`.
    Read { room_id: RoomId, seq: i64 },
    /// The tab was hidden or shown (`document.visibilityState`). While a user has a visible
    /// tab, they get no Web Push notifications (they see the message already). Tabs start
    /// visible.
    Visibility { visible: bool },
}

/// Someone's presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub user_id: UserId,
    pub online: bool,
    /// Unix ms of the last disconnect, when offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<i64>,
}

/// How far a member who shares read receipts has read a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub user_id: UserId,
    pub last_read_seq: i64,
}

/// Why the client is no longer in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftReason {
    Left,
    Kicked,
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Answer to `hello`: who you are, your rooms and DMs. The `synced` frames of your rooms
    /// follow, then `presence` frames listing who of the people sharing a room with you is
    /// online (everyone not listed is offline).
    Ready { user: User, rooms: Vec<RoomSummary> },
    /// The messages of a room after the client's cursor, in order. `limited: true` means the
    /// gap was too large: these are only the newest, and the client should drop what it holds
    /// for the room and page back through history.
    /// `updated` holds the messages at or before the cursor's `last_seq` that changed after its
    /// `last_rev` (edited, deleted, reacted to), in their current state: replace them by id.
    /// `last_rev` is the room's revision these reflect: the client's new `last_rev`.
    Synced {
        room_id: RoomId,
        messages: Vec<Message>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        updated: Vec<Message>,
        limited: bool,
        #[serde(default)]
        last_rev: i64,
    },
    /// A new message in one of your rooms (also your own, from any tab).
    Message { message: Message },
    /// A message changed (edited, deleted, reacted to): its whole current state, to replace
    /// the one held by id. `message.rev` is the room's new revision.
    MessageUpdated { message: Message },
    /// Your `send` is stored (or was already: same `client_id`).
    Sent { client_id: String, message: Message },
    /// A frame of yours was refused. `client_id` is set when it was a `send`.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    /// People who share a room with you came online or went offline. Changes are batched:
    /// at most one frame per room every 250 ms, at most 100 entries per frame (later entries
    /// win). Also sent after `hello` with everyone online.
    Presence { users: Vec<Presence> },
    /// Someone is typing (or stopped) in one of your rooms.
    Typing {
        room_id: RoomId,
        user_id: UserId,
        active: bool,
    },
    /// Your read marker in a room moved (from this tab or another of yours).
    ReadState(crate::api::ReadState),
    /// Members who share read receipts have read the room up to `last_read_seq`. Only sent
    /// to users who share receipts themselves. Batched like `presence` (one frame per room
    /// every 250 ms at most, 100 entries per frame); may include your own.
    Receipts {
        room_id: RoomId,
        reads: Vec<Receipt>,
    },
    /// You are now in a room (you created, joined, were invited, or opened a DM). Its messages
    /// follow in a `synced` frame.
    RoomJoined { room: RoomSummary },
    /// A room's name or topic changed.
    RoomUpdated {
        room_id: RoomId,
        name: String,
        topic: crate::domain::Topic,
    },
    /// Your role in a room changed (the owner made you an admin, or a member again).
    RoleChanged {
        room_id: RoomId,
        role: crate::domain::Role,
    },
    /// You are no longer in this room; its events stop now.
    RoomLeft { room_id: RoomId, reason: LeftReason },
    /// Someone joined a room you are in.
    MemberJoined { room_id: RoomId, member: Member },
    /// Someone left or was removed from a room you are in.
    MemberLeft { room_id: RoomId, user_id: UserId },
}

/// WebSocket close codes the server uses besides the standard ones.
pub mod close_code {
    /// The client did not read fast enough; reconnect and resume.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// The session was logged out or expired; sign in again.
    pub const SESSION_ENDED: u16 = 4001;
    /// The first frame was not `hello` in time.
    pub const NO_HELLO: u16 = 4002;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_tagged_by_type_in_snake_case() {
        let f: ClientFrame =
            serde_json::from_str(r#"{"type":"send","room_id":1,"client_id":"c1","body":"hi"}"#)
                .unwrap();
        assert!(matches!(f, ClientFrame::Send { .. }));
        let hello: ClientFrame = serde_json::from_str(r#"{"type":"hello"}"#).unwrap();
        assert_eq!(hello, ClientFrame::Hello { resume: vec![] });
        let out = serde_json::to_value(ServerFrame::Presence {
            users: vec![Presence {
                user_id: UserId::new(3),
                online: true,
                last_seen_at: None,
            }],
        })
        .unwrap();
        assert_eq!(
            out,
            serde_json::json!({"type": "presence", "users": [{"user_id": 3, "online": true}]})
        );
    }
}
