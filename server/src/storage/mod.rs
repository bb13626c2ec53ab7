//! Storage: the only module with SQL in it.
//!
//! The rest of the server talks to [`Storage`], a trait written so that a PostgreSQL
//! implementation (for several nodes) can satisfy it next to [`SqliteStorage`]. Row structs stay
//! private to the implementations; the trait speaks domain and record types.

mod sqlite;

use std::net::IpAddr;

use app::domain::{DisplayName, UserId, Username};
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
}
