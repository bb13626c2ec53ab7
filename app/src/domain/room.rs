//! Rooms, messages and their rules.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::DomainError;

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            pub fn new(raw: i64) -> Self {
                Self(raw)
            }

            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

int_id!(
    /// A room or DM conversation. Server-assigned.
    RoomId
);
int_id!(
    /// A stored message. Server-assigned.
    MessageId
);

/// A room's name: trimmed, 1-64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomName(String);

impl RoomName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let name = input.trim();
        let len = name.chars().count();
        if len == 0 || len > Self::MAX_CHARS || name.chars().any(char::is_control) {
            return Err(DomainError::InvalidRoomName);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RoomName {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        Self::parse(&s)
    }
}

impl From<RoomName> for String {
    fn from(n: RoomName) -> String {
        n.0
    }
}

/// A room's topic: trimmed, at most 250 characters, no control characters; may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Topic(String);

impl Topic {
    pub const MAX_CHARS: usize = 250;

    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let topic = input.trim();
        if topic.chars().count() > Self::MAX_CHARS || topic.chars().any(char::is_control) {
            return Err(DomainError::InvalidTopic);
        }
        Ok(Self(topic.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Topic {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        Self::parse(&s)
    }
}

impl From<Topic> for String {
    fn from(t: Topic) -> String {
        t.0
    }
}

/// A message's text: 1-4,000 characters (Unicode scalar values), not only whitespace. Newlines
/// and tabs are kept; other control characters are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageBody(String);

impl MessageBody {
    pub const MAX_CHARS: usize = 4000;

    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let len = input.chars().count();
        if input.trim().is_empty() || len > Self::MAX_CHARS {
            return Err(DomainError::InvalidMessageBody);
        }
        if input
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(DomainError::InvalidMessageBody);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MessageBody {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        Self::parse(&s)
    }
}

impl From<MessageBody> for String {
    fn from(b: MessageBody) -> String {
        b.0
    }
}

/// The sender's own id for a message (a UUID, usually): 1-64 characters of
/// `[A-Za-z0-9_-]`. Sending twice with the same id stores the message once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientMessageId(String);

impl ClientMessageId {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let ok = !input.is_empty()
            && input.len() <= Self::MAX_CHARS
            && input
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(DomainError::InvalidClientMessageId);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClientMessageId {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        Self::parse(&s)
    }
}

impl From<ClientMessageId> for String {
    fn from(c: ClientMessageId) -> String {
        c.0
    }
}

/// What a member may do in a room. Owners and admins rename, set the topic and kick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn can_moderate(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// A group room, or a 1:1 direct-message conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    Room,
    Dm,
}

/// Public rooms can be found and joined by anyone; private ones only by invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Public,
    Private,
}

macro_rules! display_as_str {
    ($($name:ident),*) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

display_as_str!(RoomName, Topic, MessageBody, ClientMessageId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_bodies_are_1_to_4000_characters_and_not_blank() {
        assert!(MessageBody::parse("hi").is_ok());
        assert!(MessageBody::parse(&"é".repeat(4000)).is_ok());
        assert!(MessageBody::parse(&"a".repeat(4001)).is_err());
        assert!(MessageBody::parse("").is_err());
        assert!(MessageBody::parse(" \n\t ").is_err());
    }

    #[test]
    fn message_bodies_keep_newlines_but_refuse_other_control_characters() {
        assert_eq!(MessageBody::parse("a\n\tb").unwrap().as_str(), "a\n\tb");
        assert!(MessageBody::parse("a\u{0}b").is_err());
        assert!(MessageBody::parse("a\u{1b}[31mb").is_err());
    }

    #[test]
    fn client_message_ids_are_short_and_plain() {
        assert!(ClientMessageId::parse("3f2c0a3e-8a1b-4c55-9d3e-1f0e5b7a9c21").is_ok());
        assert!(ClientMessageId::parse("").is_err());
        assert!(ClientMessageId::parse(&"a".repeat(65)).is_err());
        assert!(ClientMessageId::parse("a b").is_err());
    }

    #[test]
    fn room_names_and_topics_are_trimmed_and_limited() {
        assert_eq!(RoomName::parse("  general ").unwrap().as_str(), "general");
        assert!(RoomName::parse(" ").is_err());
        assert!(RoomName::parse(&"r".repeat(65)).is_err());
        assert!(Topic::parse("").is_ok());
        assert!(Topic::parse(&"t".repeat(251)).is_err());
        assert!(Topic::parse("two\nlines").is_err());
    }

    #[test]
    fn deserializing_enforces_the_rules() {
        assert!(serde_json::from_str::<MessageBody>("\"\"").is_err());
        assert!(serde_json::from_str::<RoomName>("\"ok\"").is_ok());
    }
}
