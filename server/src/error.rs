//! `ApiError`: everything a handler can fail with, and how each failure looks to a client.
//!
//! Internal failures keep their cause chain for the log and show the client only
//! `{"error":{"code":"internal",...}}`.

use std::time::Duration;

use app::domain::DomainError;
use app::error::{ErrorBody, ErrorCode};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Invalid(#[from] DomainError),
    #[error("{0}")]
    BadRequest(String),
    #[error("password is too common")]
    PasswordTooCommon,
    #[error("username taken")]
    UsernameTaken,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("unauthorized")]
    Unauthorized,
    #[error("cross-site request refused")]
    CrossSite,
    #[error("not found")]
    NotFound,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("too many connections")]
    TooManyConnections,
    #[error("payload too large")]
    PayloadTooLarge,
    /// An upload over a size or pixel limit; says which.
    #[error("upload too large: {0}")]
    UploadTooLarge(String),
    #[error("quota exceeded")]
    QuotaExceeded(String),
    /// The bytes are not what the upload claims to be.
    #[error("type mismatch: {0}")]
    TypeMismatch(String),
    #[error("invalid upload: {0}")]
    InvalidUpload(&'static str),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("too many requests")]
    TooManyRequests { retry_after: Duration },
    #[error("server busy")]
    Busy,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::UsernameTaken => ApiError::UsernameTaken,
            other => ApiError::Internal(other.into()),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::BadRequest(_) | ApiError::PasswordTooCommon => {
                StatusCode::BAD_REQUEST
            }
            ApiError::UsernameTaken => StatusCode::CONFLICT,
            ApiError::InvalidCredentials | ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::CrossSite => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyConnections => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge
            | ApiError::UploadTooLarge(_)
            | ApiError::QuotaExceeded(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TypeMismatch(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::InvalidUpload(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (code, message): (ErrorCode, String) = match self {
            ApiError::Invalid(e) => (e.code(), e.to_string()),
            ApiError::BadRequest(why) => (ErrorCode::BadRequest, why.clone()),
            ApiError::PasswordTooCommon => (
                ErrorCode::PasswordTooCommon,
                "This password is one of the most common ones; choose another.".into(),
            ),
            ApiError::UsernameTaken => (
                ErrorCode::UsernameTaken,
                "This username is already taken.".into(),
            ),
            ApiError::InvalidCredentials => (
                ErrorCode::InvalidCredentials,
                "Wrong username or password.".into(),
            ),
            ApiError::Unauthorized => (
                ErrorCode::Unauthorized,
                "You are not signed in, or your session has ended.".into(),
            ),
            ApiError::CrossSite => (
                ErrorCode::CrossSiteRequest,
                "Cross-site requests are not allowed.".into(),
            ),
            ApiError::NotFound => (
                ErrorCode::NotFound,
                "Not found (or not visible to you).".into(),
            ),
            ApiError::Forbidden(why) => (ErrorCode::Forbidden, (*why).into()),
            ApiError::Conflict(why) => (ErrorCode::Conflict, (*why).into()),
            ApiError::TooManyConnections => (
                ErrorCode::TooManyConnections,
                "Too many open connections for this account; close some tabs.".into(),
            ),
            ApiError::PayloadTooLarge => (
                ErrorCode::PayloadTooLarge,
                "The request body is too large.".into(),
            ),
            ApiError::UploadTooLarge(why) => (ErrorCode::PayloadTooLarge, why.clone()),
            ApiError::QuotaExceeded(why) => (ErrorCode::QuotaExceeded, why.clone()),
            ApiError::TypeMismatch(why) => (ErrorCode::UnsupportedMediaType, why.clone()),
            ApiError::InvalidUpload(why) => (ErrorCode::InvalidUpload, (*why).into()),
            ApiError::UnsupportedMediaType => (
                ErrorCode::UnsupportedMediaType,
                "Send the body as JSON with Content-Type: application/json.".into(),
            ),
            ApiError::TooManyRequests { retry_after } => (
                ErrorCode::TooManyRequests,
                format!(
                    "Too many attempts. Try again in {}.",
                    human_duration(*retry_after)
                ),
            ),
            ApiError::Busy => (
                ErrorCode::ServerBusy,
                "The server is busy; try again in a moment.".into(),
            ),
            ApiError::Internal(_) => (
                ErrorCode::Internal,
                "Something went wrong on our side.".into(),
            ),
        };
        ErrorBody::new(code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = ?e, "request failed");
        }
        let mut response = (self.status(), Json(self.body())).into_response();
        if let ApiError::TooManyRequests { retry_after } = &self {
            let secs = retry_after.as_secs().max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

fn human_duration(d: Duration) -> String {
    let secs = d.as_secs().max(1);
    if secs < 60 {
        format!("{secs} s")
    } else {
        format!("{} min", secs.div_ceil(60))
    }
}
