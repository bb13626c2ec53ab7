//! The embedded SQLite implementation of [`Storage`]: one file in the data dir, WAL mode,
//! `synchronous=FULL` (an acknowledged write survives power loss), foreign keys on, and a busy
//! timeout so concurrent writers wait instead of failing.

use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use app::domain::{DisplayName, UserId, Username};
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};

use super::{NewSession, NewUser, Storage, StorageError, UserRecord};

#[derive(Clone)]
pub struct SqliteStorage {
    pool: SqlitePool,
}

#[derive(FromRow)]
struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    created_at: i64,
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StorageError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        let corrupt = |e: app::domain::DomainError| StorageError::Corrupt(e.to_string());
        Ok(UserRecord {
            id: UserId::new(row.id),
            username: Username::parse(&row.username).map_err(corrupt)?,
            display_name: DisplayName::parse(&row.display_name).map_err(corrupt)?,
            created_at: row.created_at,
        })
    }
}

impl SqliteStorage {
    /// Opens (creating if needed) `natter.db` in `data_dir` and runs pending migrations.
    pub async fn open(data_dir: &Path) -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join("natter.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        Self::with_options(options, 8).await
    }

    /// A private in-memory database (unit tests). One connection: each would get its own DB.
    pub async fn in_memory() -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        Self::with_options(options, 1).await
    }

    async fn with_options(
        options: SqliteConnectOptions,
        max_connections: u32,
    ) -> Result<Self, StorageError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait]
impl Storage for SqliteStorage {
    #[tracing::instrument(skip_all)]
    async fn create_user(&self, new: NewUser) -> Result<UserRecord, StorageError> {
        let row: UserRow = sqlx::query_as(
            "INSERT INTO users (username, display_name, password_hash, created_at)
             VALUES (?, ?, ?, ?)
             RETURNING id, username, display_name, created_at",
        )
        .bind(new.username.as_str())
        .bind(new.display_name.as_str())
        .bind(&new.password_hash)
        .bind(new.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StorageError::UsernameTaken
            } else {
                e.into()
            }
        })?;
        row.try_into()
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    async fn read_user(&self, id: UserId) -> Result<Option<UserRecord>, StorageError> {
        let row: Option<UserRow> =
            sqlx::query_as("SELECT id, username, display_name, created_at FROM users WHERE id = ?")
                .bind(id.get())
                .fetch_optional(&self.pool)
                .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn read_user_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<(UserRecord, String)>, StorageError> {
        #[derive(FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: UserRow,
            password_hash: String,
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, username, display_name, created_at, password_hash
             FROM users WHERE username = ?",
        )
        .bind(username.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.user.try_into()?, r.password_hash)))
            .transpose()
    }

    #[tracing::instrument(skip_all, fields(user_id = %new.user_id))]
    async fn create_session(&self, new: NewSession) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, expires_at, created_ip)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&new.id)
        .bind(new.user_id.get())
        .bind(new.created_at)
        .bind(new.expires_at)
        .bind(new.created_ip.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn read_active_session(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<UserId>, StorageError> {
        let user: Option<i64> = sqlx::query_scalar(
            "SELECT user_id FROM sessions
             WHERE id = ? AND revoked_at IS NULL AND expires_at > ?",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(user.map(UserId::new))
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    async fn read_user_signed_in_from(
        &self,
        user: UserId,
        ip: IpAddr,
    ) -> Result<bool, StorageError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sessions WHERE user_id = ? AND created_ip = ? LIMIT 1",
        )
        .bind(user.get())
        .bind(ip.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    #[tracing::instrument(skip_all)]
    async fn update_session_revoked(&self, id: &str, now: i64) -> Result<(), StorageError> {
        sqlx::query("UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    async fn update_user_sessions_revoked(
        &self,
        user: UserId,
        now: i64,
    ) -> Result<u64, StorageError> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user.get())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(skip_all)]
    async fn delete_sessions_ended_before(&self, before: i64) -> Result<u64, StorageError> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE expires_at < ?1 OR (revoked_at IS NOT NULL AND revoked_at < ?1)",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn storage_with_alice() -> (SqliteStorage, UserRecord) {
        let s = SqliteStorage::in_memory().await.unwrap();
        let alice = s
            .create_user(NewUser {
                username: Username::parse("alice").unwrap(),
                display_name: DisplayName::parse("Alice").unwrap(),
                password_hash: "hash".into(),
                created_at: 1,
            })
            .await
            .unwrap();
        (s, alice)
    }

    #[tokio::test]
    async fn usernames_are_unique_whatever_the_case_in_the_database() {
        let (s, _) = storage_with_alice().await;
        // Bypass the domain type's lower-casing to check the database rule itself.
        let e = sqlx::query("INSERT INTO users (username, display_name, password_hash, created_at) VALUES ('ALICE','x','h',1)")
            .execute(&s.pool)
            .await
            .unwrap_err();
        assert!(is_unique_violation(&e));
    }

    #[tokio::test]
    async fn revoked_and_expired_sessions_are_not_active() {
        let (s, alice) = storage_with_alice().await;
        for (id, expires) in [("live", 100), ("old", 5), ("gone", 100)] {
            s.create_session(NewSession {
                id: id.into(),
                user_id: alice.id,
                created_at: 1,
                expires_at: expires,
                created_ip: "127.0.0.1".parse().unwrap(),
            })
            .await
            .unwrap();
        }
        s.update_session_revoked("gone", 10).await.unwrap();
        assert_eq!(
            s.read_active_session("live", 10).await.unwrap(),
            Some(alice.id)
        );
        assert_eq!(s.read_active_session("old", 10).await.unwrap(), None);
        assert_eq!(s.read_active_session("gone", 10).await.unwrap(), None);
        assert_eq!(
            s.update_user_sessions_revoked(alice.id, 11).await.unwrap(),
            2
        );
        assert_eq!(s.read_active_session("live", 12).await.unwrap(), None);
        assert_eq!(s.delete_sessions_ended_before(50).await.unwrap(), 3);
    }
}
