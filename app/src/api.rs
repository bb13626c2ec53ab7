//! JSON bodies of the HTTP API (`/api/...`), shared by the server and the client.
//! docs/protocol.md shows each with an example.
//!
//! Requests carry raw strings: the server parses them into domain types so that a rule broken
//! gets its own error code instead of a generic deserialization failure.

use serde::{Deserialize, Serialize};

use crate::domain::{
    ClientMessageId, DisplayName, MessageBody, MessageId, Role, RoomId, RoomKind, RoomName, Topic,
    UserId, Username, Visibility,
};

/// `POST /api/auth/signup`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupRequest {
    pub username: String,
    pub password: String,
    /// Optional; defaults to the username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// `POST /api/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// A user as other users and the user themself see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub display_name: DisplayName,
    /// Unix time in milliseconds.
    pub created_at: i64,
}

/// Answer to signup and login. The same token is also set as the HttpOnly session cookie;
/// the body copy is for bots and non-browser clients (`Authorization: Bearer <token>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthResponse {
    pub user: User,
    pub token: String,
    /// When the session ends, unix time in milliseconds.
    pub expires_at: i64,
}

/// `GET /api/auth/session`: the browser's start-up probe. Always 200 (a signed-out visitor is
/// not an error, and a 401 would put a red line in the console of every fresh page).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionResponse {
    pub user: Option<User>,
}

/// `POST /api/rooms`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRoomRequest {
    pub name: String,
    #[serde(default)]
    pub topic: String,
    #[serde(default)]
    pub visibility: Visibility,
}

/// `PATCH /api/rooms/{id}`: owners and admins. Absent fields are left as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateRoomRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// `POST /api/rooms/{id}/members` (invite) and `POST /api/dms` (open a DM).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRef {
    pub username: String,
}

/// `PUT /api/rooms/{id}/members/{user_id}`: the owner makes a member an admin or back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetRoleRequest {
    pub role: Role,
}

/// A room as one of its members sees it (the sidebar entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    pub id: RoomId,
    pub kind: RoomKind,
    /// For a DM: the other person's display name.
    pub name: String,
    pub topic: Topic,
    pub visibility: Visibility,
    /// The viewer's role.
    pub role: Role,
    /// Sequence number of the newest message (0 when empty).
    pub last_seq: i64,
    pub member_count: i64,
    /// For a DM: the other person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<User>,
}

/// `GET /api/rooms/public`: a public room anyone may join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicRoom {
    pub id: RoomId,
    pub name: RoomName,
    pub topic: Topic,
    pub member_count: i64,
    pub joined: bool,
}

/// A member of a room with their role and presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user: User,
    pub role: Role,
    pub online: bool,
    /// Unix ms of the last disconnect; `None` while online or never seen.
    pub last_seen_at: Option<i64>,
}

/// A stored message, as history and the live stream carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub room_id: RoomId,
    /// Position in the room: 1, 2, 3... with no gaps; one order for everyone.
    pub seq: i64,
    pub sender_id: UserId,
    /// The sender's id for the message (for idempotent retries and optimistic UI).
    pub client_id: ClientMessageId,
    pub body: MessageBody,
    /// Server time of storage, unix milliseconds.
    pub created_at: i64,
    /// The message this one replies to, with a short excerpt for the quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyRef>,
}

/// A quoted message: enough to show the quote and jump to the original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyRef {
    pub id: MessageId,
    pub seq: i64,
    pub sender_id: UserId,
    /// The start of the original's text (up to 160 characters).
    pub excerpt: String,
}

/// `GET /api/rooms/{id}/messages?before=<seq>&limit=<n>`: newest first page when `before` is
/// absent. Messages are in ascending `seq` order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryPage {
    pub messages: Vec<Message>,
    /// Whether older messages exist before the first one here.
    pub has_more: bool,
}

/// One emoji of `GET /emoji.json` (fetched by the client only when first needed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmojiEntry {
    /// The emoji itself.
    pub e: String,
    /// Its name, e.g. "grinning face".
    pub n: String,
    /// GitHub-style shortcodes without colons, e.g. "grinning".
    pub s: Vec<String>,
    /// Its category, e.g. "Smileys & Emotion".
    pub g: String,
}
