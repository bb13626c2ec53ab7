//! Rooms and DMs over HTTP: create, browse, join, leave, invite, kick, rename, members,
//! history, and posting for bots. Every handler checks membership on the server; a room you
//! are not in answers 404, whether or not it exists.
//!
//! Membership changes are also pushed to open sockets at once through the hub: a kicked member
//! stops receiving the room's events before this handler returns.

use app::api::{
    CreateRoomRequest, EditMessageRequest, HistoryPage, Member, Message, PostMessageRequest,
    PublicRoom, RoomSummary, SetRoleRequest, UpdateRoomRequest, User, UserRef,
};
use app::domain::{
    MessageBody, MessageId, Role, RoomId, RoomKind, RoomName, Topic, UserId, Username,
};
use app::protocol::{LeftReason, ServerFrame};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::oneshot;

use std::time::Duration;

use crate::auth::throttle::Key;
use crate::auth::{AuthSession, user_json};
use crate::clock;
use crate::error::ApiError;
use crate::realtime::connection::PAGE;
use crate::realtime::writer::{Job, Reply};
use crate::state::AppState;
use crate::storage::{Change, ChangeOutcome, MemberRecord, MembershipRecord, NewMessage, NewRoom};
use crate::web::ApiJson;

/// Largest history page a client may ask for.
const MAX_PAGE: i64 = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rooms", get(list_rooms).post(create_room))
        .route("/rooms/public", get(public_rooms))
        .route("/rooms/{id}", get(read_room).patch(update_room))
        .route("/rooms/{id}/join", post(join_room))
        .route("/rooms/{id}/leave", post(leave_room))
        .route("/rooms/{id}/members", get(list_members).post(invite))
        .route("/rooms/{id}/members/{user_id}", delete(kick).put(set_role))
        .route("/rooms/{id}/messages", get(history).post(post_message))
        .route(
            "/rooms/{id}/messages/{message_id}",
            patch(edit_message).delete(delete_message),
        )
        .route(
            "/rooms/{id}/messages/{message_id}/reactions/{emoji}",
            put(add_reaction).delete(remove_reaction),
        )
        .route("/dms", post(open_dm))
        .route("/users", get(search_users))
}

pub fn summary_of(m: MembershipRecord) -> RoomSummary {
    let name = match (&m.room.name, &m.peer) {
        (Some(name), _) => name.as_str().to_owned(),
        (None, Some(peer)) => peer.display_name.as_str().to_owned(),
        (None, None) => "Direct message".to_owned(),
    };
    RoomSummary {
        id: m.room.id,
        kind: m.room.kind,
        name,
        topic: m.room.topic,
        visibility: m.room.visibility,
        role: m.role,
        last_seq: m.room.last_seq,
        last_read_seq: m.read.last_read_seq,
        unread: m.read.unread,
        mentions: m.read.mentions,
        muted: m.muted,
        member_count: m.member_count,
        peer: m.peer.map(user_json),
    }
}

async fn membership(
    state: &AppState,
    room: RoomId,
    user: UserId,
) -> Result<MembershipRecord, ApiError> {
    state
        .storage
        .read_memberships(user, Some(room))
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound)
}

fn member_of(state: &AppState, m: MemberRecord) -> Member {
    let online = state.hub.is_online(m.user.id);
    // An end not yet written is newer than what storage has.
    let last_seen_at = state.last_seen.get(m.user.id).or(m.last_seen_at);
    Member {
        user: user_json(m.user),
        role: m.role,
        online,
        last_seen_at: if online { None } else { last_seen_at },
        last_read_seq: m.last_read_seq,
    }
}

/// Tells `user`'s open sockets they are in `room` and starts its stream there; tells the
/// room's other members.
async fn entered(state: &AppState, room: RoomId, user: UserId) -> Result<RoomSummary, ApiError> {
    let summary = summary_of(membership(state, room, user).await?);
    for conn in state.hub.user_conns(user) {
        conn.send_frame(&ServerFrame::RoomJoined {
            room: summary.clone(),
        });
        state.hub.subscribe(room, &conn, None);
    }
    if let Some(m) = state.storage.read_member(room, user).await? {
        let frame = ServerFrame::MemberJoined {
            room_id: room,
            member: member_of(state, m),
        };
        state.hub.broadcast(room, &frame, Some(user));
    }
    Ok(summary)
}

/// Stops `user`'s sockets following `room` at once and tells them why; tells the others.
fn departed(state: &AppState, room: RoomId, user: UserId, reason: LeftReason) {
    let frame = ServerFrame::RoomLeft {
        room_id: room,
        reason,
    };
    for conn in state.hub.unsubscribe_user(room, user) {
        conn.send_frame(&frame);
    }
    state.hub.broadcast(
        room,
        &ServerFrame::MemberLeft {
            room_id: room,
            user_id: user,
        },
        None,
    );
}

async fn list_rooms(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<Json<Vec<RoomSummary>>, ApiError> {
    let rooms = state
        .storage
        .read_memberships(session.user_id, None)
        .await?;
    Ok(Json(rooms.into_iter().map(summary_of).collect()))
}

#[tracing::instrument(skip_all, fields(user_id = %session.user_id))]
async fn create_room(
    State(state): State<AppState>,
    session: AuthSession,
    ApiJson(body): ApiJson<CreateRoomRequest>,
) -> Result<Response, ApiError> {
    let name = RoomName::parse(&body.name)?;
    let topic = Topic::parse(&body.topic)?;
    state
        .throttle
        .hit(
            Key::RoomCreate(session.user_id),
            state.config.limits.rooms_per_hour,
            Duration::from_secs(3600),
        )
        .map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
    let room = state
        .storage
        .create_room(NewRoom {
            name,
            topic,
            visibility: body.visibility,
            owner: session.user_id,
            created_at: clock::now_millis(),
        })
        .await?;
    state.hub.add_room(room.id);
    let summary = entered(&state, room.id, session.user_id).await?;
    Ok((StatusCode::CREATED, Json(summary)).into_response())
}

async fn public_rooms(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<Json<Vec<PublicRoom>>, ApiError> {
    let rooms = state.storage.read_public_rooms(session.user_id).await?;
    Ok(Json(
        rooms
            .into_iter()
            .filter_map(|r| {
                Some(PublicRoom {
                    id: r.room.id,
                    name: r.room.name?,
                    topic: r.room.topic,
                    member_count: r.member_count,
                    joined: r.joined,
                })
            })
            .collect(),
    ))
}

async fn read_room(
    State(state): State<AppState>,
    session: AuthSession,
    Path(id): Path<i64>,
) -> Result<Json<RoomSummary>, ApiError> {
    Ok(Json(summary_of(
        membership(&state, RoomId::new(id), session.user_id).await?,
    )))
}

#[tracing::instrument(skip_all, fields(user_id = %session.user_id, room_id = id))]
async fn update_room(
    State(state): State<AppState>,
    session: AuthSession,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<UpdateRoomRequest>,
) -> Result<Json<RoomSummary>, ApiError> {
    let room = RoomId::new(id);
    let me = membership(&state, room, session.user_id).await?;
    if me.room.kind == RoomKind::Dm {
        return Err(ApiError::Conflict("Direct messages have no name or topic."));
    }
    if !me.role.can_moderate() {
        return Err(ApiError::Forbidden(
            "Only the room's owner and admins can change it.",
        ));
    }
    let name = body.name.as_deref().map(RoomName::parse).transpose()?;
    let topic = body.topic.as_deref().map(Topic::parse).transpose()?;
    state
        .storage
        .update_room(room, name.as_ref(), topic.as_ref())
        .await?;
    let updated = summary_of(membership(&state, room, session.user_id).await?);
    state.hub.broadcast(
        room,
        &ServerFrame::RoomUpdated {
            room_id: room,
            name: updated.name.clone(),
            topic: updated.topic.clone(),
        },
        None,
    );
    Ok(Json(updated))
}

#[tracing::instrument(skip_all, fields(user_id = %session.user_id, room_id = id))]
async fn join_room(
    State(state): State<AppState>,
    session: AuthSession,
    Path(id): Path<i64>,
) -> Result<Json<RoomSummary>, ApiError> {
    let room_id = RoomId::new(id);
    let room = state
        .storage
        .read_room(room_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let joinable =
        room.kind == RoomKind::Room && room.visibility == app::domain::Visibility::Public;
    if !joinable {
        // Private rooms and DMs are invitation-only; they do not exist for outsiders.
        return match state.storage.read_role(room_id, session.user_id).await? {
            Some(_) => Ok(Json(summary_of(
                membership(&state, room_id, session.user_id).await?,
            ))),
            None => Err(ApiError::NotFound),
        };
    }
    let added = state
        .storage
        .create_member(room_id, session.user_id, Role::Member, clock::now_millis())
        .await?;
    if added {
        Ok(Json(entered(&state, room_id, session.user_id).await?))
    } else {
        Ok(Json(summary_of(
            membership(&state, room_id, session.user_id).await?,
        )))
    }
}

#[tracing::instrument(skip_all, fields(user_id = %session.user_id, room_id = id))]
async fn leave_room(
    State(state): State<AppState>,
    session: AuthSession,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let room = RoomId::new(id);
    let me = membership(&state, room, session.user_id).await?;
    if me.room.kind == RoomKind::Dm {
        return Err(ApiError::Conflict("You cannot leave a direct message."));
    }
    state.storage.delete_member(room, session.user_id).await?;
    departed(&state, room, session.user_id, LeftReason::Left);
    Ok(StatusCode::NO_CONTENT)
}

async fn list_members(
    State(state): State<AppState>,
    session: AuthSession,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Member>>, ApiError> {
    let room = RoomId::new(id);
    membership(&state, room, session.user_id).await?;
    let members = state.storage.read_members(room).await?;
    // Who does not share their receipts does not see others' either.
    let sees_receipts = state.storage.read_share_receipts(session.user_id).await?;
    Ok(Json(
        members
            .into_iter()
            .map(|m| member_of(&state, m))
            .map(|m| Member {
                last_read_seq: m.last_read_seq.filter(|_| sees_receipts),
                ..m
            })
            .collect(),
    ))
}

#[tracing::instrument(skip_all, fields(user_id = %session.user_id, room_id = id))]
async fn invite(
    State(state): State<AppState>,
    session: AuthSession,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<UserRef>,
) -> Result<Response, ApiError> {
    let room = RoomId::new(id);
    let me = membership(&state, room, session.user_id).await?;
    if me.room.kind == RoomKind::Dm {
        return Err(ApiError::Conflict(
            "A direct message is between two people; create a room instead.",
        ));
    }
    let username = Username::parse(&body.username).map_err(|_| ApiError::NotFound)?;
    let invitee = state
        .storage
        .read_user_by_username(&username)
        .await?
        .ok_or(ApiError::NotFound)?;
    let added = state
        .storage
        .create_member(room, invitee.id, Role::Member, clock::now_millis())
        .await?;
    if !added {
        return Err(ApiError::Conflict("They are already a member."));
    }
    entered(&state, room, invitee.id).await?;
    let member = state
        .storage
        .read_member(room, invitee.id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, Json(member_of(&state, member))).into_response())
}

#[tracing::instrument(skip_all, fields(user_id = %session.user_id, room_id = id))]
async fn kick(
    State(state): State<AppState>,
    session: AuthSession,
    Path((id, target)): Path<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    let room = RoomId::new(id);
    let target = UserId::new(target);
    let me = membership(&state, room, session.user_id).await?;
    if !me.role.can_moderate() || me.room.kind == RoomKind::Dm {
        return Err(ApiError::Forbidden(
            "Only the room's owner and admins can remove members.",
        ));
    }
    if target == session.user_id {
        return Err(ApiError::Conflict("To leave a room, use leave."));
    }
    let their_role = state
        .storage
        .read_role(room, target)
        .await?
        .ok_or(ApiError::NotFound)?;
    let outranks = match me.role {
        Role::Owner => true,
        Role::Admin => their_role == Role::Member,
        Role::Member => false,
    };
    if !outranks {
        return Err(ApiError::Forbidden(
            "Admins can remove members, not other admins or the owner.",
        ));
    }
    state.storage.delete_member(room, target).await?;
    departed(&state, room, target, LeftReason::Kicked);
    Ok(StatusCode::NO_CONTENT)
}

/// The owner promotes a member to admin or demotes an admin. Ownership itself moves only when
/// the owner leaves.
#[tracing::instrument(skip_all, fields(user_id = %session.user_id, room_id = id))]
async fn set_role(
    State(state): State<AppState>,
    session: AuthSession,
    Path((id, target)): Path<(i64, i64)>,
    ApiJson(body): ApiJson<SetRoleRequest>,
) -> Result<Json<Member>, ApiError> {
    let room = RoomId::new(id);
    let target = UserId::new(target);
    let me = membership(&state, room, session.user_id).await?;
    if me.role != Role::Owner || me.room.kind == RoomKind::Dm {
        return Err(ApiError::Forbidden(
            "Only the room's owner can change roles.",
        ));
    }
    if body.role == Role::Owner || target == session.user_id {
        return Err(ApiError::Conflict(
            "Roles can be admin or member; the owner stays owner until they leave.",
        ));
    }
    if !state
        .storage
        .update_member_role(room, target, body.role)
        .await?
    {
        return Err(ApiError::NotFound);
    }
    let member = state
        .storage
        .read_member(room, target)
        .await?
        .ok_or(ApiError::NotFound)?;
    let member = member_of(&state, member);
    for conn in state.hub.user_conns(target) {
        conn.send_frame(&ServerFrame::RoleChanged {
            room_id: room,
            role: body.role,
        });
    }
    Ok(Json(member))
}

#[derive(Deserialize)]
struct HistoryQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

async fn history(
    State(state): State<AppState>,
    session: AuthSession,
    Path(id): Path<i64>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let room = RoomId::new(id);
    membership(&state, room, session.user_id).await?;
    let limit = q.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let messages = state
        .storage
        .read_messages_before(room, q.before, limit)
        .await?;
    let has_more = messages.first().is_some_and(|m| m.seq > 1);
    Ok(Json(HistoryPage { messages, has_more }))
}

/// Hands a change to the message writer and waits until it is stored (or refused).
async fn apply(state: &AppState, user: UserId, change: Change) -> Result<ChangeOutcome, ApiError> {
    state
        .throttle
        .hit(
            Key::HttpPost(user),
            state.config.limits.http_posts_per_minute,
            Duration::from_secs(60),
        )
        .map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
    let (tx, rx) = oneshot::channel();
    state
        .writer
        .submit(Job {
            change,
            reply: Reply::Http(tx),
        })
        .await
        .map_err(|_| ApiError::Busy)?;
    match rx.await.map_err(|_| ApiError::Busy)? {
        Ok(ChangeOutcome::NotMember | ChangeOutcome::NoSuchMessage) => Err(ApiError::NotFound),
        Ok(ChangeOutcome::Forbidden) => Err(ApiError::Forbidden(
            "Only the author may edit a message; only the author, owners and admins may delete it.",
        )),
        Ok(ChangeOutcome::Gone) => Err(ApiError::Conflict("This message was deleted.")),
        Ok(ChangeOutcome::TooManyReactions) => Err(ApiError::Conflict(
            "This message has as many different reactions as it can have (20).",
        )),
        Ok(ChangeOutcome::BadAttachment) => Err(ApiError::BadRequest(
            "An attachment is unknown, not yours, or already used: upload it again.".into(),
        )),
        Ok(outcome) => Ok(outcome),
        Err(()) => Err(ApiError::Internal(anyhow::anyhow!("change not stored"))),
    }
}

/// For bots and scripts: the same path as a WebSocket `send`, answered when stored.
#[tracing::instrument(skip_all, fields(user_id = %session.user_id, room_id = id))]
async fn post_message(
    State(state): State<AppState>,
    session: AuthSession,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<PostMessageRequest>,
) -> Result<Response, ApiError> {
    let message = NewMessage::parse(
        RoomId::new(id),
        session.user_id,
        &body.client_id,
        &body.body,
        body.reply_to,
        body.attachments,
        clock::now_millis(),
    )?;
    let (status, message) = match apply(&state, session.user_id, Change::Append(message)).await? {
        ChangeOutcome::Stored(m) => (StatusCode::CREATED, m),
        ChangeOutcome::Duplicate(m) => (StatusCode::OK, m),
        _ => return Err(ApiError::Internal(anyhow::anyhow!("unexpected outcome"))),
    };
    Ok((status, Json(message)).into_response())
}

/// The message as it is after an edit, deletion or reaction (changed or not).
fn changed(outcome: ChangeOutcome) -> Result<Json<Message>, ApiError> {
    match outcome {
        ChangeOutcome::Updated { message, .. } | ChangeOutcome::Unchanged(message) => {
            Ok(Json(message))
        }
        _ => Err(ApiError::Internal(anyhow::anyhow!("unexpected outcome"))),
    }
}

/// `PATCH /api/rooms/{id}/messages/{message_id}`: the author replaces the text.
#[tracing::instrument(skip_all, fields(user_id = %session.user_id, room_id = id))]
async fn edit_message(
    State(state): State<AppState>,
    session: AuthSession,
    Path((id, message_id)): Path<(i64, i64)>,
    ApiJson(body): ApiJson<EditMessageRequest>,
) -> Result<Json<Message>, ApiError> {
    let change = Change::Edit {
        room_id: RoomId::new(id),
        message_id: MessageId::new(message_id),
        editor: session.user_id,
        body: MessageBody::parse(&body.body)?,
        at: clock::now_millis(),
    };
    changed(apply(&state, session.user_id, change).await?)
}

/// `DELETE /api/rooms/{id}/messages/{message_id}`: the author, an owner or an admin. The text,
/// reactions and attachments (their files too) are removed; the tombstone is returned.
#[tracing::instrument(skip_all, fields(user_id = %session.user_id, room_id = id))]
async fn delete_message(
    State(state): State<AppState>,
    session: AuthSession,
    Path((id, message_id)): Path<(i64, i64)>,
) -> Result<Json<Message>, ApiError> {
    let change = Change::Delete {
        room_id: RoomId::new(id),
        message_id: MessageId::new(message_id),
        actor: session.user_id,
        at: clock::now_millis(),
    };
    let outcome = apply(&state, session.user_id, change).await?;
    if let ChangeOutcome::Updated {
        removed_uploads, ..
    } = &outcome
    {
        crate::media::remove_files(&state, removed_uploads).await;
    }
    changed(outcome)
}

/// `PUT` (add) or `DELETE` (remove) `/api/rooms/{id}/messages/{message_id}/reactions/{emoji}`.
#[tracing::instrument(skip_all, fields(user_id = %session.user_id, room_id = id))]
async fn react(
    state: AppState,
    session: AuthSession,
    (id, message_id, emoji): (i64, i64, String),
    add: bool,
) -> Result<Json<Message>, ApiError> {
    // Only emoji we know (the same list the picker shows): no free text, no unbounded keys.
    let emoji = emojis::get(&emoji)
        .ok_or_else(|| ApiError::BadRequest("Reactions are single emoji.".into()))?
        .as_str()
        .to_owned();
    let change = Change::React {
        room_id: RoomId::new(id),
        message_id: MessageId::new(message_id),
        user: session.user_id,
        emoji,
        add,
    };
    changed(apply(&state, session.user_id, change).await?)
}

async fn add_reaction(
    State(state): State<AppState>,
    session: AuthSession,
    Path(path): Path<(i64, i64, String)>,
) -> Result<Json<Message>, ApiError> {
    react(state, session, path, true).await
}

async fn remove_reaction(
    State(state): State<AppState>,
    session: AuthSession,
    Path(path): Path<(i64, i64, String)>,
) -> Result<Json<Message>, ApiError> {
    react(state, session, path, false).await
}

#[tracing::instrument(skip_all, fields(user_id = %session.user_id))]
async fn open_dm(
    State(state): State<AppState>,
    session: AuthSession,
    ApiJson(body): ApiJson<UserRef>,
) -> Result<Response, ApiError> {
    let username = Username::parse(&body.username).map_err(|_| ApiError::NotFound)?;
    let peer = state
        .storage
        .read_user_by_username(&username)
        .await?
        .ok_or(ApiError::NotFound)?;
    if peer.id == session.user_id {
        return Err(ApiError::Conflict(
            "You cannot open a conversation with yourself.",
        ));
    }
    let (room, created) = state
        .storage
        .create_or_read_dm(session.user_id, peer.id, clock::now_millis())
        .await?;
    if created {
        state.hub.add_room(room.id);
        entered(&state, room.id, peer.id).await?;
        let summary = entered(&state, room.id, session.user_id).await?;
        return Ok((StatusCode::CREATED, Json(summary)).into_response());
    }
    let summary = summary_of(membership(&state, room.id, session.user_id).await?);
    Ok((StatusCode::OK, Json(summary)).into_response())
}

#[derive(Deserialize)]
struct UserQuery {
    #[serde(default)]
    q: String,
}

async fn search_users(
    State(state): State<AppState>,
    _session: AuthSession,
    Query(q): Query<UserQuery>,
) -> Result<Json<Vec<User>>, ApiError> {
    let prefix: String = q.q.trim().to_lowercase().chars().take(32).collect();
    let users = state.storage.read_users_by_prefix(&prefix, 20).await?;
    Ok(Json(users.into_iter().map(user_json).collect()))
}
