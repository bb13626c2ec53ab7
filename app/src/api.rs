//! JSON bodies of the HTTP API (`/api/...`), shared by the server and the client.
//! docs/protocol.md shows each with an example.
//!
//! Requests carry raw strings: the server parses them into domain types so that a rule broken
//! gets its own error code instead of a generic deserialization failure.

use serde::{Deserialize, Serialize};

use crate::domain::{
    ClientMessageId, DisplayName, MessageId, Role, RoomId, RoomKind, RoomName, Topic, UserId,
    Username, Visibility,
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
    /// The viewer's read marker: the highest `seq` they have read.
    #[serde(default)]
    pub last_read_seq: i64,
    /// Messages after the marker.
    #[serde(default)]
    pub unread: i64,
    /// Messages after the marker that mention the viewer.
    #[serde(default)]
    pub mentions: i64,
    /// The viewer muted the room (no notifications; the count still shows).
    #[serde(default)]
    pub muted: bool,
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
    /// Their read marker (read receipts). Absent when they, or you, do not share receipts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_seq: Option<i64>,
}

/// `POST /api/rooms/{id}/read`: the viewer has read up to `seq`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadRequest {
    pub seq: i64,
}

/// The viewer's read state in one room (answer to `POST /api/rooms/{id}/read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadState {
    pub room_id: RoomId,
    pub last_read_seq: i64,
    pub unread: i64,
    pub mentions: i64,
}

/// `PUT /api/rooms/{id}/mute`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MuteRequest {
    pub muted: bool,
}

/// `GET`/`PATCH /api/settings`: the user's own settings. `PATCH` fields are optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Show others how far you have read (and see how far they have). On by default; off
    /// hides both ways, as WhatsApp does.
    pub share_receipts: bool,
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
    /// Markdown text. Empty when the message is deleted, or when it only carries attachments.
    pub body: String,
    /// `body` parsed by the server into formatting nodes (`crate::markdown::Node`); absent when
    /// the body is plain text (one paragraph of lines), which is then shown as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<Vec<crate::markdown::Node>>,
    /// Server time of storage, unix milliseconds.
    pub created_at: i64,
    /// The room revision of this message's last change (edit, delete, reaction); 0 if none.
    /// See `protocol::RoomCursor::last_rev`.
    #[serde(default)]
    pub rev: i64,
    /// When the text was last edited, unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    /// Deleted: text, attachments and reactions are gone from storage.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    /// The message this one replies to, with a short excerpt for the quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyRef>,
    /// Files and images, in the order the sender attached them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Emoji reactions, in the order each emoji was first used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One emoji on a message and who reacted with it (oldest first); the count is `users.len()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub emoji: String,
    pub users: Vec<UserId>,
}

/// A quoted message: enough to show the quote and jump to the original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyRef {
    pub id: MessageId,
    pub seq: i64,
    pub sender_id: UserId,
    /// The start of the original's text (up to 160 characters).
    pub excerpt: String,
    /// The original was deleted since (the excerpt is then empty).
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
}

/// How a file is shown: images inline (thumbnail, lightbox), anything else as a download card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    /// PNG, JPEG, GIF or WebP, checked, re-encoded without metadata, with a thumbnail.
    Image,
    File,
}

/// An uploaded file: `POST /api/uploads` answers one; messages carry them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Server-generated (32 hex digits); the file's name on disk has nothing from the client.
    pub id: String,
    /// The original file name, for display and downloads only.
    pub name: String,
    /// The media type it is served with.
    pub content_type: String,
    /// Bytes (after re-encoding, for images).
    pub size: i64,
    pub kind: AttachmentKind,
    /// Image dimensions in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Where to fetch it: `/media/{id}` (members of the room only).
    pub url: String,
    /// Images: a small version, at most 400 × 400, `/media/{id}/thumb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumb_url: Option<String>,
}

/// `PATCH /api/rooms/{id}/messages/{message_id}`: the author changes the text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EditMessageRequest {
    pub body: String,
}

/// `POST /api/rooms/{id}/messages` (bots and scripts; browsers send over the WebSocket).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostMessageRequest {
    pub client_id: String,
    #[serde(default)]
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<MessageId>,
    /// Ids of the sender's own uploads not yet used in a message (at most 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
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
