//! Storage: the only module with SQL in it.
//!
//! The rest of the server talks to [`Storage`], a trait written so that a PostgreSQL
//! implementation (for several nodes) can satisfy it next to [`SqliteStorage`]. Row structs stay
//! private to the implementations; the trait speaks domain and record types.

mod sqlite;

use std::net::IpAddr;

use app::api::{Attachment, AttachmentKind, Message};
use app::domain::{
    ClientMessageId, DisplayName, DomainError, MAX_ATTACHMENTS, MessageBody, MessageId, Role,
    RoomId, RoomKind, RoomName, Topic, UserId, Username, Visibility,
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
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
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
    pub read: ReadState,
    pub muted: bool,
}

/// One member's read state in one room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadState {
    /// The highest `seq` read.
    pub last_read_seq: i64,
    /// Messages after it (`rooms.last_seq - last_read_seq`).
    pub unread: i64,
    /// Messages after it that mention the member.
    pub mentions: i64,
}

#[derive(Debug, Clone)]
pub struct MemberRecord {
    pub user: UserRecord,
    pub role: Role,
    pub last_seen_at: Option<i64>,
    /// Their read marker, `None` when they do not share read receipts.
    pub last_read_seq: Option<i64>,
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
    /// Validated by the caller: a `MessageBody`, or empty when there are attachments.
    pub body: String,
    pub created_at: i64,
    /// The message this one replies to (must be in the same room).
    pub reply_to: Option<MessageId>,
    /// Upload ids: the sender's own, not used by another message yet.
    pub attachments: Vec<String>,
    /// The usernames the body mentions, and its nodes as clients are sent them (`None` for
    /// plain text): the body's Markdown is parsed here, on the sender's task, rather than on
    /// the message writer's one thread, where it was 8 % of the thread's time at 10,000
    /// messages a second (docs/perf.md, thirteenth round).
    pub mentions: Vec<String>,
    pub formatted: Option<Vec<app::markdown::Node>>,
}

impl NewMessage {
    /// Checks what a client sent: a valid client id, and a valid text, which may be empty
    /// (only spaces) when there are attachments, of which there are at most
    /// [`MAX_ATTACHMENTS`].
    pub fn parse(
        room_id: RoomId,
        sender_id: UserId,
        client_id: &str,
        body: &str,
        reply_to: Option<MessageId>,
        attachments: Vec<String>,
        created_at: i64,
    ) -> Result<Self, DomainError> {
        let client_id = ClientMessageId::parse(client_id)?;
        if attachments.len() > MAX_ATTACHMENTS {
            return Err(DomainError::TooManyAttachments);
        }
        let body = if !attachments.is_empty() && body.trim().is_empty() {
            String::new()
        } else {
            MessageBody::parse(body)?.into()
        };
        let nodes = app::markdown::parse(&body);
        let mentions = app::markdown::mentions_in(&nodes);
        let formatted = app::markdown::formatted(&body, nodes);
        Ok(Self {
            room_id,
            sender_id,
            client_id,
            body,
            created_at,
            reply_to,
            attachments,
            mentions,
            formatted,
        })
    }
}

/// A change to the messages of a room. All of them go through the one message writer, which
/// numbers them (`seq` for new messages, `rev` for changes to existing ones) in commit order.
#[derive(Debug, Clone)]
pub enum Change {
    Append(NewMessage),
    /// The author replaces the text.
    Edit {
        room_id: RoomId,
        message_id: MessageId,
        editor: UserId,
        body: MessageBody,
        at: i64,
    },
    /// The author, or an owner or admin of the room, deletes a message: text, attachments and
    /// reactions are removed from storage; a tombstone keeps the message's place.
    Delete {
        room_id: RoomId,
        message_id: MessageId,
        actor: UserId,
        at: i64,
    },
    /// A member adds (or removes) their reaction.
    React {
        room_id: RoomId,
        message_id: MessageId,
        user: UserId,
        emoji: String,
        add: bool,
    },
}

impl Change {
    pub fn room_id(&self) -> RoomId {
        match self {
            Change::Append(m) => m.room_id,
            Change::Edit { room_id, .. }
            | Change::Delete { room_id, .. }
            | Change::React { room_id, .. } => *room_id,
        }
    }
}

/// What became of one change of a batch.
#[derive(Debug, Clone)]
pub enum ChangeOutcome {
    /// A new message, stored now with the next sequence number of its room.
    Stored(Message),
    /// The sender had already stored this client id: here is the original.
    Duplicate(Message),
    /// An existing message changed, with the next revision of its room. `removed_uploads` are
    /// the ids of uploads whose files must now be removed (a deletion).
    Updated {
        message: Message,
        removed_uploads: Vec<String>,
    },
    /// Nothing to change (the reaction was already there, the message already deleted...).
    Unchanged(Message),
    /// The user is not a member of the room (any more).
    NotMember,
    /// `reply_to`, or the message to change, is not a message of that room.
    NoSuchMessage,
    /// A member, but not allowed to (someone else's message).
    Forbidden,
    /// The message is deleted: it cannot be edited or reacted to.
    Gone,
    /// The message has as many different reactions as allowed.
    TooManyReactions,
    /// An attachment id is unknown, someone else's, or already used.
    BadAttachment,
}

/// An uploaded file.
#[derive(Debug, Clone)]
pub struct UploadRecord {
    pub id: String,
    pub owner_id: UserId,
    /// Set once a message uses it.
    pub message_id: Option<MessageId>,
    pub room_id: Option<RoomId>,
    pub name: String,
    pub content_type: String,
    pub kind: AttachmentKind,
    pub size: i64,
    /// Bytes on disk with the thumbnail: what counts against the owner's quota.
    pub stored_size: i64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub created_at: i64,
}

impl UploadRecord {
    /// As messages and `POST /api/uploads` show it.
    pub fn attachment(&self) -> Attachment {
        let image = self.kind == AttachmentKind::Image;
        Attachment {
            id: self.id.clone(),
            name: self.name.clone(),
            content_type: self.content_type.clone(),
            size: self.size,
            kind: self.kind,
            width: self.width,
            height: self.height,
            url: format!("/media/{}", self.id),
            thumb_url: image.then(|| format!("/media/{}/thumb", self.id)),
        }
    }
}

/// A browser's Web Push subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscriptionRecord {
    pub user_id: UserId,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub created_at: i64,
}

/// Most different emoji on one message.
pub const MAX_REACTION_EMOJI: usize = 20;

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    // --- users ---
    /// Fails with [`StorageError::UsernameTaken`] when the name exists in any letter case.
    async fn create_user(&self, new: NewUser) -> Result<UserRecord, StorageError>;
    async fn read_user(&self, id: UserId) -> Result<Option<UserRecord>, StorageError>;
    /// The user of an active session (as `read_active_session`) and whether they share read
    /// receipts, in one query: what opening a socket needs.
    async fn read_session_user(
        &self,
        session: &str,
        now: i64,
    ) -> Result<Option<(UserRecord, bool)>, StorageError>;
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
    /// Records when each user was last connected (ms), in one transaction.
    async fn update_users_last_seen(&self, seen: &[(UserId, i64)]) -> Result<(), StorageError>;
    /// Stores `new` as `user`'s password hash if the stored one is still `old` (a rehash with
    /// new parameters at sign-in must not undo a change made meanwhile).
    async fn replace_password_hash(
        &self,
        user: UserId,
        old: &str,
        new: &str,
    ) -> Result<(), StorageError>;

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
    /// Every room's id, newest sequence number and revision (to seed the real-time hub).
    async fn read_room_cursors(&self) -> Result<Vec<(RoomId, i64, i64)>, StorageError>;
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
    /// One member of a room (`None`: not a member), without reading the others.
    async fn read_member(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<MemberRecord>, StorageError>;
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
    /// Applies a batch in ONE transaction (one fsync for all: group commit). Each new message
    /// gets the next sequence number of its room, each change to an existing message the next
    /// revision, unless refused (see [`ChangeOutcome`]). Outcomes are in the order of `batch`.
    async fn apply_changes(&self, batch: Vec<Change>) -> Result<Vec<ChangeOutcome>, StorageError>;
    /// Messages with `seq <= upto_seq` whose last change has `after_rev < rev <= upto_rev`,
    /// in `rev` order, at most `limit`.
    async fn read_messages_changed(
        &self,
        room: RoomId,
        upto_seq: i64,
        after_rev: i64,
        upto_rev: i64,
        limit: i64,
    ) -> Result<Vec<Message>, StorageError>;
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

    // --- read state ---
    /// Moves the member's read marker forward to `seq` (never back, never past the room's
    /// newest message). `None` when not a member; otherwise the state after the call and
    /// whether the marker moved.
    async fn update_last_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: i64,
    ) -> Result<Option<(ReadState, bool)>, StorageError>;
    /// Mutes or unmutes the room for the member; `false` when not a member.
    async fn update_muted(
        &self,
        room: RoomId,
        user: UserId,
        muted: bool,
    ) -> Result<bool, StorageError>;
    async fn read_share_receipts(&self, user: UserId) -> Result<bool, StorageError>;
    async fn update_share_receipts(&self, user: UserId, share: bool) -> Result<(), StorageError>;

    // --- push ---
    /// Stores (or re-assigns to `sub.user_id`) the subscription for its endpoint, keeping at
    /// most `max_per_user` per user (the oldest go).
    async fn create_push_subscription(
        &self,
        sub: &PushSubscriptionRecord,
        max_per_user: i64,
    ) -> Result<(), StorageError>;
    /// Removes the subscription with this endpoint (of `user`, or anyone's when `None`).
    async fn delete_push_subscription(
        &self,
        endpoint: &str,
        user: Option<UserId>,
    ) -> Result<bool, StorageError>;
    async fn read_push_subscriptions(
        &self,
        user: UserId,
    ) -> Result<Vec<PushSubscriptionRecord>, StorageError>;
    /// Every user with at least one push subscription.
    async fn read_push_users(&self) -> Result<Vec<UserId>, StorageError>;
    /// Who should hear about message `seq` of `room` by push: the other member of a DM, or the
    /// members it mentions; never the sender, nor members who muted the room. With each, their
    /// subscriptions.
    async fn read_push_targets(
        &self,
        room: RoomId,
        seq: i64,
        sender: UserId,
    ) -> Result<Vec<PushSubscriptionRecord>, StorageError>;

    // --- uploads ---
    /// Stores the record unless the owner's uploads would then take more than `quota` bytes
    /// (`false`).
    async fn create_upload(&self, upload: &UploadRecord, quota: i64) -> Result<bool, StorageError>;
    async fn read_upload(&self, id: &str) -> Result<Option<UploadRecord>, StorageError>;
    /// Bytes the user's uploads take (what the quota counts).
    async fn read_upload_usage(&self, owner: UserId) -> Result<i64, StorageError>;
    /// Removes uploads created before `before` that no message uses; returns their ids.
    async fn delete_unused_uploads(&self, before: i64) -> Result<Vec<String>, StorageError>;

    // --- lifecycle ---
    /// Called once at shutdown, after the last request and socket have ended: leaves the
    /// database clean (for SQLite: the WAL copied back and emptied, so the next start has
    /// nothing to recover).
    async fn close(&self);
}

/// Rows the storage and realtime tests start from.
#[cfg(test)]
pub(crate) mod test_data {
    use app::domain::{DisplayName, RoomName, Topic, Username, Visibility};

    use super::{NewRoom, NewUser, RoomRecord, Storage, UserRecord};

    /// The user `alice` ("Alice").
    pub(crate) async fn alice(s: &dyn Storage) -> UserRecord {
        s.create_user(NewUser {
            username: Username::parse("alice").unwrap(),
            display_name: DisplayName::parse("Alice").unwrap(),
            password_hash: "hash".into(),
            created_at: 1,
        })
        .await
        .unwrap()
    }

    /// `alice` and her public room `general`.
    pub(crate) async fn alice_with_a_room(s: &dyn Storage) -> (UserRecord, RoomRecord) {
        let alice = alice(s).await;
        let room = s
            .create_room(NewRoom {
                name: RoomName::parse("general").unwrap(),
                topic: Topic::default(),
                visibility: Visibility::Public,
                owner: alice.id,
                created_at: 1,
            })
            .await
            .unwrap();
        (alice, room)
    }
}
