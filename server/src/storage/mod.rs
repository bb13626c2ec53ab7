//! Storage: the only module with SQL in it.
//!
//! The rest of the server talks to [`Storage`], a trait written so that a PostgreSQL
//! implementation (for several nodes) can satisfy it next to [`SqliteStorage`]. Row structs stay
//! private to the implementations; the trait speaks domain and record types.

mod sqlite;

use std::net::IpAddr;

use app::api::Message;
use app::domain::{
    ClientMessageId, DisplayName, MessageBody, Role, RoomId, RoomKind, RoomName, Topic, UserId,
    Username, Visibility,
};
use async_trait::async_trait;

pub use sqlite::SqliteStorage;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("username already taken")]
    UsernameTaken,
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// A user record as the server sees it (never sent as is: see `app::api::User`).
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: UserId,
    pub username: Username,
    pub display_name: DisplayName,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub display_name: DisplayName,
    pub password_hash: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub user_id: UserId,
    pub created_at: i64,
    pub expires_at: i64,
    pub created_ip: IpAddr,
}

#[derive(Debug, Clone)]
pub struct RoomRecord {
    pub id: RoomId,
    pub kind: RoomKind,
    /// `None` for DMs.
    pub name: Option<RoomName>,
    pub topic: Topic,
    pub visibility: Visibility,
    pub created_at: i64,
    pub last_seq: i64,
}

#[derive(Debug, Clone)]
pub struct NewRoom {
    pub name: RoomName,
    pub topic: Topic,
    pub visibility: Visibility,
    pub owner: UserId,
    pub created_at: i64,
}

/// A room as seen by one of its members.
#[derive(Debug, Clone)]
pub struct MembershipRecord {
    pub room: RoomRecord,
    pub role: Role,
    pub member_count: i64,
    /// For a DM: the other member.
    pub peer: Option<UserRecord>,
}

#[derive(Debug, Clone)]
pub struct MemberRecord {
    pub user: UserRecord,
    pub role: Role,
    pub last_seen_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct PublicRoomRecord {
    pub room: RoomRecord,
    pub member_count: i64,
    pub joined: bool,
}

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room_id: RoomId,
    pub sender_id: UserId,
    pub client_id: ClientMessageId,
    pub body: MessageBody,
    pub created_at: i64,
    /// The message this one replies to (must be in the same room).
    pub reply_to: Option<app::domain::MessageId>,
}

/// What became of one message of a batch.
#[derive(Debug, Clone)]
pub enum AppendOutcome {
    /// Stored now, with the next sequence number of its room.
    Stored(Message),
    /// The sender had already stored this client id: here is the original.
    Duplicate(Message),
    /// The sender is not a member of the room (any more).
    NotMember,
    /// `reply_to` names no message of that room.
    NoSuchReplyTarget,
}

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    // --- users ---
    /// Fails with [`StorageError::UsernameTaken`] when the name exists in any letter case.
    async fn create_user(&self, new: NewUser) -> Result<UserRecord, StorageError>;
    async fn read_user(&self, id: UserId) -> Result<Option<UserRecord>, StorageError>;
    /// The user and their password hash, for login.
    async fn read_user_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<(UserRecord, String)>, StorageError>;

    async fn read_user_by_username(
        &self,
        username: &Username,
    ) -> Result<Option<UserRecord>, StorageError>;
    /// Users whose username starts with `prefix`, alphabetically, at most `limit`.
    async fn read_users_by_prefix(
        &self,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<UserRecord>, StorageError>;
    async fn update_user_last_seen(&self, user: UserId, at: i64) -> Result<(), StorageError>;
    /// Everyone who shares at least one room or DM with `user` (not `user`), with last-seen.
    async fn read_contacts(&self, user: UserId)
    -> Result<Vec<(UserId, Option<i64>)>, StorageError>;

    // --- sessions ---
    async fn create_session(&self, new: NewSession) -> Result<(), StorageError>;
    /// The owner of session `id` if it is neither revoked nor expired at `now`.
    async fn read_active_session(&self, id: &str, now: i64)
    -> Result<Option<UserId>, StorageError>;
    /// Whether the user ever signed in from `ip` (a session, live or not, still on record).
    async fn read_user_signed_in_from(
        &self,
        user: UserId,
        ip: IpAddr,
    ) -> Result<bool, StorageError>;
    async fn update_session_revoked(&self, id: &str, now: i64) -> Result<(), StorageError>;
    async fn update_user_sessions_revoked(
        &self,
        user: UserId,
        now: i64,
    ) -> Result<u64, StorageError>;
    /// Removes sessions that ended before `before`; returns how many.
    async fn delete_sessions_ended_before(&self, before: i64) -> Result<u64, StorageError>;

    // --- rooms and members ---
    /// Creates a room with `owner` as its owner.
    async fn create_room(&self, new: NewRoom) -> Result<RoomRecord, StorageError>;
    /// The DM between `a` and `b`, created with both as members if it does not exist yet.
    /// `true` when it was created by this call.
    async fn create_or_read_dm(
        &self,
        a: UserId,
        b: UserId,
        now: i64,
    ) -> Result<(RoomRecord, bool), StorageError>;
    /// Adds a member; `false` when they already were one.
    async fn create_member(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
        now: i64,
    ) -> Result<bool, StorageError>;
    async fn read_room(&self, id: RoomId) -> Result<Option<RoomRecord>, StorageError>;
    /// Every room's id and newest sequence number (to seed the real-time hub).
    async fn read_room_seqs(&self) -> Result<Vec<(RoomId, i64)>, StorageError>;
    async fn read_role(&self, room: RoomId, user: UserId) -> Result<Option<Role>, StorageError>;
    /// The user's rooms and DMs, or just `only` among them.
    async fn read_memberships(
        &self,
        user: UserId,
        only: Option<RoomId>,
    ) -> Result<Vec<MembershipRecord>, StorageError>;
    async fn read_public_rooms(
        &self,
        viewer: UserId,
    ) -> Result<Vec<PublicRoomRecord>, StorageError>;
    async fn read_members(&self, room: RoomId) -> Result<Vec<MemberRecord>, StorageError>;
    async fn update_room(
        &self,
        id: RoomId,
        name: Option<&RoomName>,
        topic: Option<&Topic>,
    ) -> Result<(), StorageError>;
    /// Changes a member's role; `false` when they are not a member.
    async fn update_member_role(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
    ) -> Result<bool, StorageError>;
    /// Removes a member; `false` when they were not one.
    async fn delete_member(&self, room: RoomId, user: UserId) -> Result<bool, StorageError>;

    // --- messages ---
    /// Stores a batch in ONE transaction (one fsync for all: group commit). Each message gets
    /// the next sequence number of its room, unless its (sender, client id) exists already or
    /// its sender is not a member. Outcomes are in the order of `batch`.
    async fn append_messages(
        &self,
        batch: &[NewMessage],
    ) -> Result<Vec<AppendOutcome>, StorageError>;
    /// Messages with `after < seq <= upto`, ascending, at most `limit`.
    async fn read_messages_between(
        &self,
        room: RoomId,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<Message>, StorageError>;
    /// The `limit` messages just before `before` (or the newest), ascending.
    async fn read_messages_before(
        &self,
        room: RoomId,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Message>, StorageError>;
}
