//! The one error shape a client may see:
//! `{"error":{"code":"stable_code","message":"human text"}}`.
//!
//! `code` is a contract (clients branch on it, docs/protocol.md lists them); `message` is for
//! people and may change. Internals (SQL, paths, stack traces) never appear in either.

use serde::{Deserialize, Serialize};

/// Every error code the API returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON or misses a field (400).
    BadRequest,
    /// Username breaks the rules (400).
    InvalidUsername,
    /// Display name breaks the rules (400).
    InvalidDisplayName,
    /// Password length outside 8-128 characters (400).
    InvalidPassword,
    /// Room name breaks the rules (400).
    InvalidRoomName,
    /// Topic breaks the rules (400).
    InvalidTopic,
    /// Message text empty, over 4,000 characters, or with control characters (400 / error frame).
    InvalidMessage,
    /// Client message id breaks the rules (400 / error frame).
    InvalidClientId,
    /// Password is on the list of common passwords (400).
    PasswordTooCommon,
    /// Username already registered, in any letter case (409).
    UsernameTaken,
    /// Unknown username or wrong password: deliberately the same (401).
    InvalidCredentials,
    /// No session, or an invalid, expired or revoked one (401).
    Unauthorized,
    /// State-changing request from another site (403).
    CrossSiteRequest,
    /// Unknown route, or a room/user that does not exist or that you may not see (404).
    NotFound,
    /// You are a member, but your role does not allow this (403).
    Forbidden,
    /// The action conflicts with the current state, e.g. the owner leaving (409).
    Conflict,
    /// WebSocket frame that is not valid JSON of a known type (error frame).
    BadFrame,
    /// Too many WebSocket frames too fast (error frame, then close 1008).
    RateLimited,
    /// Too many open WebSockets for this user (429 on upgrade).
    TooManyConnections,
    /// Body larger than the endpoint accepts, or an image over the pixel limit (413).
    PayloadTooLarge,
    /// The upload would take the user's files over their storage quota (413).
    QuotaExceeded,
    /// An upload that claims to be an image but cannot be read as one, or has too many
    /// frames (400).
    InvalidUpload,
    /// State-changing request without `Content-Type: application/json`, or an upload whose
    /// bytes are not of the type it claims (415).
    UnsupportedMediaType,
    /// Throttled; retry after the `Retry-After` header's seconds (429).
    TooManyRequests,
    /// The server is saturated; retry shortly (503).
    ServerBusy,
    /// Something failed on the server; details are in its log, not here (500).
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_documented_shape() {
        let body = ErrorBody::new(ErrorCode::UsernameTaken, "taken");
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"error": {"code": "username_taken", "message": "taken"}})
        );
    }
}
