//! Decoding the server's WebSocket frames, without serde's buffering of tagged enums.
//!
//! [`ServerFrame`] is tagged by a `"type"` field. serde's derived decoder for such enums first
//! copies the whole frame into an intermediate tree and then decodes the variant, and every
//! type inside it (`Message`, `RoomSummary`, `User`, ...), from that tree: a second copy of the
//! decoding code of all those types next to the one the HTTP answers use. It was 125 KB of the
//! 1.7 MB client (about 30 KB of the brotli download). Here the tag is read first and the rest
//! of the object goes straight into the variant's fields, through the same code as the HTTP
//! answers. serde writes the tag of an internally tagged enum first, so every frame the server
//! sends decodes this way; a frame with its tag elsewhere is refused as malformed.
//!
//! The structs below mirror the variants field for field (with the same `default`s). The test
//! at the end round-trips every variant, and `_EVERY_VARIANT` stops the build when a variant
//! is added to the protocol without being added here.

use std::fmt;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, Visitor};

use crate::api::{Member, Message, ReadState, RoomSummary, User};
use crate::domain::{Role, RoomId, Topic, UserId};
use crate::error::ErrorCode;
use crate::protocol::{LeftReason, Presence, Receipt, ServerFrame};

/// Decodes one text frame from the server.
pub fn decode(text: &str) -> Result<ServerFrame, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let frame = de::Deserializer::deserialize_map(&mut de, FrameVisitor)?;
    de.end()?;
    Ok(frame)
}

/// The `"type"` of each variant, as serde spells it (`rename_all = "snake_case"`).
const TYPES: &[&str] = &[
    "ready",
    "synced",
    "message",
    "message_updated",
    "sent",
    "error",
    "presence",
    "typing",
    "read_state",
    "receipts",
    "room_joined",
    "room_updated",
    "role_changed",
    "room_left",
    "member_joined",
    "member_left",
];

/// Fails to compile when `ServerFrame` gains a variant: add it to `TYPES`, a struct below and
/// `FrameVisitor::visit_map`.
const _EVERY_VARIANT: fn(&ServerFrame) -> &'static str = |frame| match frame {
    ServerFrame::Ready { .. } => "ready",
    ServerFrame::Synced { .. } => "synced",
    ServerFrame::Message { .. } => "message",
    ServerFrame::MessageUpdated { .. } => "message_updated",
    ServerFrame::Sent { .. } => "sent",
    ServerFrame::Error { .. } => "error",
    ServerFrame::Presence { .. } => "presence",
    ServerFrame::Typing { .. } => "typing",
    ServerFrame::ReadState(_) => "read_state",
    ServerFrame::Receipts { .. } => "receipts",
    ServerFrame::RoomJoined { .. } => "room_joined",
    ServerFrame::RoomUpdated { .. } => "room_updated",
    ServerFrame::RoleChanged { .. } => "role_changed",
    ServerFrame::RoomLeft { .. } => "room_left",
    ServerFrame::MemberJoined { .. } => "member_joined",
    ServerFrame::MemberLeft { .. } => "member_left",
};

#[derive(Deserialize)]
struct Ready {
    user: User,
    rooms: Vec<RoomSummary>,
}

#[derive(Deserialize)]
struct Synced {
    room_id: RoomId,
    messages: Vec<Message>,
    #[serde(default)]
    updated: Vec<Message>,
    limited: bool,
    #[serde(default)]
    last_rev: i64,
}

/// `message` and `message_updated`.
#[derive(Deserialize)]
struct WithMessage {
    message: Message,
}

#[derive(Deserialize)]
struct Sent {
    client_id: String,
    message: Message,
}

#[derive(Deserialize)]
struct Error {
    code: ErrorCode,
    message: String,
    #[serde(default)]
    client_id: Option<String>,
}

#[derive(Deserialize)]
struct PresenceList {
    users: Vec<Presence>,
}

#[derive(Deserialize)]
struct Typing {
    room_id: RoomId,
    user_id: UserId,
    active: bool,
}

#[derive(Deserialize)]
struct Receipts {
    room_id: RoomId,
    reads: Vec<Receipt>,
}

#[derive(Deserialize)]
struct RoomJoined {
    room: RoomSummary,
}

#[derive(Deserialize)]
struct RoomUpdated {
    room_id: RoomId,
    name: String,
    topic: Topic,
}

#[derive(Deserialize)]
struct RoleChanged {
    room_id: RoomId,
    role: Role,
}

#[derive(Deserialize)]
struct RoomLeft {
    room_id: RoomId,
    reason: LeftReason,
}

#[derive(Deserialize)]
struct MemberJoined {
    room_id: RoomId,
    member: Member,
}

#[derive(Deserialize)]
struct MemberLeft {
    room_id: RoomId,
    user_id: UserId,
}

struct FrameVisitor;

impl<'de> Visitor<'de> for FrameVisitor {
    type Value = ServerFrame;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a server frame with its \"type\" first")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ServerFrame, A::Error> {
        if map.next_key::<String>()?.as_deref() != Some("type") {
            return Err(de::Error::missing_field("type"));
        }
        let kind: String = map.next_value()?;
        let rest = MapAccessDeserializer::new(map);
        Ok(match kind.as_str() {
            "ready" => {
                let Ready { user, rooms } = Ready::deserialize(rest)?;
                ServerFrame::Ready { user, rooms }
            }
            "synced" => {
                let f = Synced::deserialize(rest)?;
                ServerFrame::Synced {
                    room_id: f.room_id,
                    messages: f.messages,
                    updated: f.updated,
                    limited: f.limited,
                    last_rev: f.last_rev,
                }
            }
            "message" => ServerFrame::Message {
                message: WithMessage::deserialize(rest)?.message,
            },
            "message_updated" => ServerFrame::MessageUpdated {
                message: WithMessage::deserialize(rest)?.message,
            },
            "sent" => {
                let Sent { client_id, message } = Sent::deserialize(rest)?;
                ServerFrame::Sent { client_id, message }
            }
            "error" => {
                let Error {
                    code,
                    message,
                    client_id,
                } = Error::deserialize(rest)?;
                ServerFrame::Error {
                    code,
                    message,
                    client_id,
                }
            }
            "presence" => ServerFrame::Presence {
                users: PresenceList::deserialize(rest)?.users,
            },
            "typing" => {
                let Typing {
                    room_id,
                    user_id,
                    active,
                } = Typing::deserialize(rest)?;
                ServerFrame::Typing {
                    room_id,
                    user_id,
                    active,
                }
            }
            "read_state" => ServerFrame::ReadState(ReadState::deserialize(rest)?),
            "receipts" => {
                let Receipts { room_id, reads } = Receipts::deserialize(rest)?;
                ServerFrame::Receipts { room_id, reads }
            }
            "room_joined" => ServerFrame::RoomJoined {
                room: RoomJoined::deserialize(rest)?.room,
            },
            "room_updated" => {
                let RoomUpdated {
                    room_id,
                    name,
                    topic,
                } = RoomUpdated::deserialize(rest)?;
                ServerFrame::RoomUpdated {
                    room_id,
                    name,
                    topic,
                }
            }
            "role_changed" => {
                let RoleChanged { room_id, role } = RoleChanged::deserialize(rest)?;
                ServerFrame::RoleChanged { room_id, role }
            }
            "room_left" => {
                let RoomLeft { room_id, reason } = RoomLeft::deserialize(rest)?;
                ServerFrame::RoomLeft { room_id, reason }
            }
            "member_joined" => {
                let MemberJoined { room_id, member } = MemberJoined::deserialize(rest)?;
                ServerFrame::MemberJoined { room_id, member }
            }
            "member_left" => {
                let MemberLeft { room_id, user_id } = MemberLeft::deserialize(rest)?;
                ServerFrame::MemberLeft { room_id, user_id }
            }
            other => return Err(de::Error::unknown_variant(other, TYPES)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Vec<ServerFrame> {
        let user: User = serde_json::from_value(serde_json::json!({
            "id": 7, "username": "alice", "display_name": "Alice", "created_at": 1
        }))
        .unwrap();
        let room: RoomSummary = serde_json::from_value(serde_json::json!({
            "id": 3, "kind": "room", "name": "general", "topic": "hi", "visibility": "public",
            "role": "owner", "member_count": 2, "last_seq": 9, "last_read_seq": 4,
            "mentions": 1, "muted": false,
            "peer": {"id": 8, "username": "bob", "display_name": "Bob", "created_at": 2}
        }))
        .unwrap();
        let message: Message = serde_json::from_value(serde_json::json!({
            "id": 11, "room_id": 3, "seq": 9, "rev": 2, "sender_id": 7, "client_id": "c-1",
            "body": "hello **there**", "created_at": 1700000000000i64, "edited_at": 3,
            "deleted": true, "reactions": [{"emoji": "👍", "users": [7, 8]}],
            "reply_to": {"id": 10, "seq": 8, "sender_id": 8, "excerpt": "hi"},
            "attachments": [{"id": "ab", "name": "a.png", "content_type": "image/png",
                "size": 12, "kind": "image", "width": 4, "height": 5, "url": "/media/ab",
                "thumb_url": "/media/ab/thumb"}]
        }))
        .unwrap();
        let member: Member = serde_json::from_value(serde_json::json!({
            "user": {"id": 8, "username": "bob", "display_name": "Bob", "created_at": 2},
            "role": "member", "online": true, "last_seen_at": null, "last_read_seq": 6
        }))
        .unwrap();
        let (room_id, user_id) = (room.id, user.id);
        vec![
            ServerFrame::Ready {
                user: user.clone(),
                rooms: vec![room.clone()],
            },
            ServerFrame::Synced {
                room_id,
                messages: vec![message.clone()],
                updated: vec![message.clone()],
                limited: true,
                last_rev: 5,
            },
            ServerFrame::Synced {
                room_id,
                messages: vec![],
                updated: vec![],
                limited: false,
                last_rev: 0,
            },
            ServerFrame::Message {
                message: message.clone(),
            },
            ServerFrame::MessageUpdated {
                message: message.clone(),
            },
            ServerFrame::Sent {
                client_id: "c-1".into(),
                message,
            },
            ServerFrame::Error {
                code: ErrorCode::RateLimited,
                message: "slow down".into(),
                client_id: Some("c-2".into()),
            },
            ServerFrame::Error {
                code: ErrorCode::BadRequest,
                message: "no".into(),
                client_id: None,
            },
            ServerFrame::Presence {
                users: vec![Presence {
                    user_id,
                    online: false,
                    last_seen_at: Some(5),
                }],
            },
            ServerFrame::Typing {
                room_id,
                user_id,
                active: true,
            },
            ServerFrame::ReadState(ReadState {
                room_id,
                last_read_seq: 4,
                unread: 5,
                mentions: 1,
            }),
            ServerFrame::Receipts {
                room_id,
                reads: vec![Receipt {
                    user_id,
                    last_read_seq: 3,
                }],
            },
            ServerFrame::RoomJoined { room },
            ServerFrame::RoomUpdated {
                room_id,
                name: "random".into(),
                topic: serde_json::from_value(serde_json::json!("a topic")).unwrap(),
            },
            ServerFrame::RoleChanged {
                room_id,
                role: Role::Admin,
            },
            ServerFrame::RoomLeft {
                room_id,
                reason: LeftReason::Kicked,
            },
            ServerFrame::MemberJoined { room_id, member },
            ServerFrame::MemberLeft { room_id, user_id },
        ]
    }

    #[test]
    fn every_frame_the_server_writes_decodes_to_itself() {
        let mut seen = std::collections::HashSet::new();
        for frame in frames() {
            let text = serde_json::to_string(&frame).unwrap();
            assert_eq!(decode(&text).unwrap(), frame, "{text}");
            assert_eq!(
                decode(&text).unwrap(),
                serde_json::from_str::<ServerFrame>(&text).unwrap()
            );
            seen.insert(_EVERY_VARIANT(&frame));
        }
        assert_eq!(seen.len(), TYPES.len());
        assert!(TYPES.iter().all(|t| seen.contains(t)));
    }

    #[test]
    fn defaults_apply_as_in_the_derived_decoder() {
        let text = r#"{"type":"synced","room_id":3,"messages":[],"limited":false}"#;
        assert_eq!(
            decode(text).unwrap(),
            serde_json::from_str::<ServerFrame>(text).unwrap()
        );
    }

    #[test]
    fn unknown_types_and_trailing_garbage_are_errors() {
        assert!(decode(r#"{"type":"nope"}"#).is_err());
        assert!(decode(r#"{"type":"member_left","room_id":1,"user_id":2} x"#).is_err());
        assert!(decode(r#"{"room_id":1,"type":"member_left","user_id":2}"#).is_err());
        assert!(decode("[]").is_err());
    }
}
