//! The client's JSON against serde's derives (the server's JSON), type by type.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::*;

/// Every variant of a unit enum, listed by `json_enum!`.
pub trait Variants: Sized + 'static {
    const ALL: &'static [Self];
}

/// What serde writes reads back equal here, and what is written here reads back equal through
/// serde. Equal means: serde writes both the same (not every type is `PartialEq`).
#[track_caller]
fn both_ways<T>(value: &T)
where
    T: Serialize + DeserializeOwned + FromJson + ToJson + Debug,
{
    let by_serde = serde_json::to_string(value).unwrap();
    let read_here: T = decode(&by_serde).unwrap_or_else(|e| panic!("{e}: {by_serde}"));
    assert_eq!(
        serde_json::to_value(&read_here).unwrap(),
        serde_json::to_value(value).unwrap(),
        "read here: {by_serde}"
    );
    let written_here = encode(value);
    let read_by_serde: T =
        serde_json::from_str(&written_here).unwrap_or_else(|e| panic!("{e}: {written_here}"));
    assert_eq!(
        serde_json::to_value(&read_by_serde).unwrap(),
        serde_json::to_value(value).unwrap(),
        "written here: {written_here}"
    );
}

/// Decodes `value` (JSON written by hand) both here and with serde; both must agree.
#[track_caller]
fn reads_like_serde<T>(value: serde_json::Value)
where
    T: Serialize + DeserializeOwned + FromJson + Debug,
{
    let text = value.to_string();
    let by_serde: T = serde_json::from_str(&text).unwrap();
    let here: T = decode(&text).unwrap();
    assert_eq!(
        serde_json::to_value(&here).unwrap(),
        serde_json::to_value(&by_serde).unwrap(),
        "{text}"
    );
}

fn enum_matches_serde<T>()
where
    T: Variants + Serialize + DeserializeOwned + FromJson + ToJson + PartialEq + Debug,
{
    for variant in T::ALL {
        assert_eq!(variant.to_json(), serde_json::to_value(variant).unwrap());
        both_ways(variant);
    }
    assert!(T::from_json(json!("no_such_variant")).is_err());
    assert!(T::from_json(json!(1)).is_err());
}

fn from<T: DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).unwrap()
}

fn alice() -> User {
    from(json!({"id": 7, "username": "alice", "display_name": "Alice", "created_at": 1}))
}

fn room() -> RoomSummary {
    from(json!({
        "id": 3, "kind": "room", "name": "general", "topic": "hi", "visibility": "public",
        "role": "owner", "member_count": 2, "last_seq": 9, "last_read_seq": 4,
        "unread": 5, "mentions": 1, "muted": true,
        "peer": {"id": 8, "username": "bob", "display_name": "Bob", "created_at": 2}
    }))
}

fn message() -> Message {
    from(json!({
        "id": 11, "room_id": 3, "seq": 9, "rev": 2, "sender_id": 7, "client_id": "c-1",
        "body": "hello **there** @bob",
        "formatted": crate::markdown::parse(
            "**hi** _x_ ~~y~~ @bob\n[x](https://e.org) `c`\n\n> q\n\n1. one\n\n```\nx\n```"),
        "created_at": 1700000000000i64, "edited_at": 3,
        "deleted": true, "reactions": [{"emoji": "👍", "users": [7, 8]}],
        "reply_to": {"id": 10, "seq": 8, "sender_id": 8, "excerpt": "hi", "deleted": true},
        "attachments": [
            {"id": "ab", "name": "a.png", "content_type": "image/png", "size": 12,
             "kind": "image", "width": 4, "height": 5, "url": "/media/ab",
             "thumb_url": "/media/ab/thumb"},
            {"id": "cd", "name": "a.pdf", "content_type": "application/pdf", "size": 3,
             "kind": "file", "url": "/media/cd"}
        ]
    }))
}

/// A message with every optional field absent.
fn bare_message() -> Message {
    from(json!({
        "id": 12, "room_id": 3, "seq": 10, "sender_id": 7, "client_id": "c-2",
        "body": "plain", "created_at": 5
    }))
}

fn member() -> Member {
    from(json!({
        "user": {"id": 8, "username": "bob", "display_name": "Bob", "created_at": 2},
        "role": "member", "online": true, "last_seen_at": null, "last_read_seq": 6
    }))
}

fn server_frames() -> Vec<ServerFrame> {
    let (user, room, message, member) = (alice(), room(), message(), member());
    let (room_id, user_id) = (room.id, user.id);
    vec![
        ServerFrame::Ready {
            user: user.clone(),
            rooms: vec![room.clone()],
        },
        ServerFrame::Synced {
            room_id,
            messages: vec![message.clone(), bare_message()],
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
            users: vec![
                Presence {
                    user_id,
                    online: false,
                    last_seen_at: Some(5),
                },
                Presence {
                    user_id,
                    online: true,
                    last_seen_at: None,
                },
            ],
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
            topic: from(json!("a topic")),
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
fn every_frame_the_server_writes_reads_back_equal() {
    let mut seen = std::collections::BTreeSet::new();
    for frame in server_frames() {
        let text = serde_json::to_string(&frame).unwrap();
        assert_eq!(decode::<ServerFrame>(&text).unwrap(), frame, "{text}");
        seen.insert(server_frame_type(&frame));
    }
    // 16 variants: `server_frame_type` names each one (it does not build otherwise).
    assert_eq!(seen.len(), 16, "a variant has no example above: {seen:?}");
}

#[test]
fn frames_read_with_their_tag_anywhere_and_defaults_as_serde_does() {
    reads_like_serde::<ServerFrame>(json!({"room_id": 3, "type": "member_left", "user_id": 2}));
    reads_like_serde::<ServerFrame>(
        json!({"type": "synced", "room_id": 3, "messages": [], "limited": false}),
    );
    reads_like_serde::<ServerFrame>(
        json!({"type": "error", "code": "bad_frame", "message": "?", "extra": [1, {"x": 2}]}),
    );
}

#[test]
fn every_frame_the_client_writes_reads_back_equal_on_the_server() {
    let room_id = RoomId::new(3);
    let frames = [
        ClientFrame::Hello { resume: vec![] },
        ClientFrame::Hello {
            resume: vec![RoomCursor {
                room_id,
                last_seq: 9,
                last_rev: 2,
            }],
        },
        ClientFrame::Send {
            room_id,
            client_id: "c-1".into(),
            body: "hi".into(),
            reply_to: Some(MessageId::new(4)),
            attachments: vec!["ab".into(), "cd".into()],
        },
        ClientFrame::Send {
            room_id,
            client_id: "c-2".into(),
            body: String::new(),
            reply_to: None,
            attachments: vec![],
        },
        ClientFrame::Typing {
            room_id,
            active: true,
        },
        ClientFrame::Read { room_id, seq: 8 },
        ClientFrame::Visibility { visible: false },
    ];
    for frame in frames {
        let text = encode(&frame);
        assert_eq!(
            serde_json::from_str::<ClientFrame>(&text).unwrap(),
            frame,
            "{text}"
        );
    }
}

#[test]
fn api_bodies_match_serde_both_ways() {
    let (user, room, message, member) = (alice(), room(), message(), member());
    both_ways(&user);
    both_ways(&room);
    both_ways(&RoomSummary {
        peer: None,
        ..room.clone()
    });
    both_ways(&message);
    both_ways(&bare_message());
    both_ways(&member);
    both_ways(&Member {
        last_seen_at: Some(9),
        last_read_seq: None,
        ..member
    });
    both_ways(&AuthResponse {
        user: user.clone(),
        token: "t".into(),
        expires_at: 9,
    });
    both_ways(&SessionResponse {
        user: Some(user.clone()),
    });
    both_ways(&SessionResponse { user: None });
    both_ways(&HistoryPage {
        messages: vec![message, bare_message()],
        has_more: true,
    });
    both_ways(&vec![from::<PublicRoom>(json!({
        "id": 1, "name": "general", "topic": "", "member_count": 3, "joined": false
    }))]);
    both_ways(&ReadState {
        room_id: RoomId::new(1),
        last_read_seq: 2,
        unread: 3,
        mentions: 4,
    });
    both_ways(&Settings {
        share_receipts: true,
    });
    both_ways(&vec![EmojiEntry {
        e: "😀".into(),
        n: "grinning face".into(),
        s: vec!["grinning".into()],
        g: "Smileys & Emotion".into(),
    }]);
    both_ways(&ErrorBody::new(ErrorCode::UsernameTaken, "taken"));
}

#[test]
fn request_bodies_match_serde_both_ways() {
    both_ways(&SignupRequest {
        username: "alice".into(),
        password: "pw".into(),
        display_name: Some("Alice".into()),
    });
    both_ways(&SignupRequest {
        username: "alice".into(),
        password: "pw".into(),
        display_name: None,
    });
    both_ways(&LoginRequest {
        username: "alice".into(),
        password: "pw".into(),
    });
    both_ways(&CreateRoomRequest {
        name: "r".into(),
        topic: "t".into(),
        visibility: Visibility::Private,
    });
    both_ways(&UpdateRoomRequest {
        name: None,
        topic: Some("t".into()),
    });
    both_ways(&UserRef {
        username: "bob".into(),
    });
    both_ways(&EditMessageRequest { body: "b".into() });
    both_ways(&MuteRequest { muted: true });
}

#[test]
fn absent_defaults_read_as_serde_reads_them() {
    reads_like_serde::<RoomSummary>(json!({
        "id": 3, "kind": "dm", "name": "Bob", "topic": "", "visibility": "private",
        "role": "member", "member_count": 2, "last_seq": 0
    }));
    reads_like_serde::<Message>(json!({
        "id": 12, "room_id": 3, "seq": 10, "sender_id": 7, "client_id": "c-2",
        "body": "", "created_at": 5, "formatted": null, "edited_at": null, "reply_to": null
    }));
    reads_like_serde::<ReplyRef>(json!({"id": 1, "seq": 1, "sender_id": 1, "excerpt": ""}));
    reads_like_serde::<CreateRoomRequest>(json!({"name": "r"}));
    reads_like_serde::<RoomCursor>(json!({"room_id": 1, "last_seq": 2}));
}

#[test]
fn unit_enums_are_serdes_strings() {
    enum_matches_serde::<Role>();
    enum_matches_serde::<RoomKind>();
    enum_matches_serde::<Visibility>();
    enum_matches_serde::<AttachmentKind>();
    enum_matches_serde::<LeftReason>();
    enum_matches_serde::<ErrorCode>();
}

#[test]
fn formatting_nodes_match_serde_both_ways() {
    let nodes = crate::markdown::parse(
        "**b** _i_ ~~s~~ `c` @ann\nline\n\n> quote\n\n- a\n- b\n\n1. one\n\n[l](https://e.org)\n\n```\npre\n```",
    );
    for tag in [
        "\"br\"",
        "{\"t\"",
        "{\"b\"",
        "{\"i\"",
        "{\"s\"",
        "{\"code\"",
        "{\"at\"",
    ] {
        assert!(
            serde_json::to_string(&nodes).unwrap().contains(tag),
            "{tag}"
        );
    }
    both_ways(&nodes);
    assert!(decode::<Vec<Node>>(r#"[{"t":"x","p":[]}]"#).is_err());
    assert!(decode::<Vec<Node>>(r#"[{"nope":"x"}]"#).is_err());
    assert!(decode::<Vec<Node>>(r#"["p"]"#).is_err());
}

#[test]
fn malformed_json_is_an_error_not_a_panic() {
    for bad in [
        r#"{"type":"nope"}"#,
        r#"{"room_id":1,"user_id":2}"#,
        r#"{"type":"member_left","room_id":1,"user_id":2} x"#,
        r#"{"type":"member_left","room_id":"1","user_id":2}"#,
        r#"{"type":"member_left","room_id":1.5,"user_id":2}"#,
        r#"{"type":"member_left","room_id":1}"#,
        r#"{"type":"member_left","room_id":1,"user_id":null}"#,
        r#"{"type":"typing","room_id":1,"user_id":2,"active":"yes"}"#,
        r#"{"type":"role_changed","room_id":1,"role":"king"}"#,
        "[]",
        "",
        "{",
    ] {
        assert!(decode::<ServerFrame>(bad).is_err(), "{bad}");
        assert!(
            serde_json::from_str::<ServerFrame>(bad).is_err(),
            "serde: {bad}"
        );
    }
    // Checked strings are checked here too.
    let bad_user = json!({"id": 7, "username": "A B", "display_name": "x", "created_at": 1});
    assert!(User::from_json(bad_user.clone()).is_err());
    assert!(serde_json::from_value::<User>(bad_user).is_err());
    assert!(u32::from_json(json!(-1)).is_err());
    assert!(u32::from_json(json!(1u64 << 40)).is_err());
}
