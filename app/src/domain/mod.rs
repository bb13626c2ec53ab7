//! Domain newtypes. Fields are private; the only way to get a value is `parse`, which enforces
//! the rule, so the rest of the code never re-validates.

mod room;
mod user;

pub use room::{
    ClientMessageId, MessageBody, MessageId, Role, RoomId, RoomKind, RoomName, Topic, Visibility,
};
pub use user::{DisplayName, Password, UserId, Username};

/// Why a value was refused. Each variant maps to one stable [`crate::error::ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error(
        "Usernames are {min} to {max} characters of a-z, 0-9, '_', '.' and '-'.",
        min = Username::MIN_CHARS,
        max = Username::MAX_CHARS
    )]
    InvalidUsername,
    #[error(
        "Display names are 1 to {max} characters, without control characters.",
        max = DisplayName::MAX_CHARS
    )]
    InvalidDisplayName,
    #[error(
        "Passwords are {min} to {max} characters.",
        min = Password::MIN_CHARS,
        max = Password::MAX_CHARS
    )]
    InvalidPassword,
    #[error("Room names are 1 to {max} characters, without control characters.", max = RoomName::MAX_CHARS)]
    InvalidRoomName,
    #[error("Topics are at most {max} characters, on one line.", max = Topic::MAX_CHARS)]
    InvalidTopic,
    #[error(
        "Messages are 1 to {max} characters and not only spaces.",
        max = MessageBody::MAX_CHARS
    )]
    InvalidMessageBody,
    #[error("Client message ids are 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'.")]
    InvalidClientMessageId,
    #[error("A message carries at most {max} attachments.", max = MAX_ATTACHMENTS)]
    TooManyAttachments,
}

/// Most files one message may carry.
pub const MAX_ATTACHMENTS: usize = 10;

impl DomainError {
    pub fn code(&self) -> crate::error::ErrorCode {
        use crate::error::ErrorCode;
        match self {
            DomainError::InvalidUsername => ErrorCode::InvalidUsername,
            DomainError::InvalidDisplayName => ErrorCode::InvalidDisplayName,
            DomainError::InvalidPassword => ErrorCode::InvalidPassword,
            DomainError::InvalidRoomName => ErrorCode::InvalidRoomName,
            DomainError::InvalidTopic => ErrorCode::InvalidTopic,
            DomainError::InvalidMessageBody => ErrorCode::InvalidMessage,
            DomainError::InvalidClientMessageId => ErrorCode::InvalidClientId,
            DomainError::TooManyAttachments => ErrorCode::InvalidMessage,
        }
    }
}
