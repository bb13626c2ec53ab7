//! JSON bodies of the HTTP API (`/api/...`), shared by the server and the client.
//! docs/protocol.md shows each with an example.
//!
//! Requests carry raw strings: the server parses them into domain types so that a rule broken
//! gets its own error code instead of a generic deserialization failure.

use serde::{Deserialize, Serialize};

use crate::domain::{DisplayName, UserId, Username};

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
