//! Read state: each member's read marker per room, unread and mention counts, mute, and the
//! read-receipts privacy setting.
//!
//! One marker per member per room (`members.last_read_seq`), never per-message rows: a
//! receipt is "X has read up to seq N", which answers "seen by" for every message at once.

use app::api::{MuteRequest, ReadRequest, ReadState, RoomSummary, Settings};
use app::domain::RoomId;
use app::protocol::ServerFrame;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use crate::auth::AuthSession;
use crate::error::ApiError;
use crate::rooms::summary_of;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rooms/{id}/read", post(mark_read))
        .route("/rooms/{id}/mute", put(mute))
        .route("/settings", get(read_settings).patch(update_settings))
}

/// Moves the caller's marker in `room` to `seq` (forward only) and tells their other tabs and,
/// when they share receipts, the room. Shared by `POST /api/rooms/{id}/read` and the socket's
/// `read` frame.
pub async fn mark(
    state: &AppState,
    user: app::domain::UserId,
    room: RoomId,
    seq: i64,
) -> Result<Option<ReadState>, ApiError> {
    let Some((read, moved)) = state.storage.update_last_read(room, user, seq).await? else {
        return Ok(None);
    };
    let read = ReadState {
        room_id: room,
        last_read_seq: read.last_read_seq,
        unread: read.unread,
        mentions: read.mentions,
    };
    if moved {
        let frame = ServerFrame::ReadState(read);
        for conn in state.hub.user_conns(user) {
            conn.send_frame(&frame);
        }
        if state.storage.read_share_receipts(user).await? {
            state.hub.queue_receipt(room, user, read.last_read_seq);
        }
    }
    Ok(Some(read))
}

async fn mark_read(
    State(state): State<AppState>,
    session: AuthSession,
    Path(id): Path<i64>,
    crate::web::ApiJson(body): crate::web::ApiJson<ReadRequest>,
) -> Result<Json<ReadState>, ApiError> {
    mark(&state, session.user_id, RoomId::new(id), body.seq)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

async fn mute(
    State(state): State<AppState>,
    session: AuthSession,
    Path(id): Path<i64>,
    crate::web::ApiJson(body): crate::web::ApiJson<MuteRequest>,
) -> Result<Json<RoomSummary>, ApiError> {
    let room = RoomId::new(id);
    if !state
        .storage
        .update_muted(room, session.user_id, body.muted)
        .await?
    {
        return Err(ApiError::NotFound);
    }
    let m = state
        .storage
        .read_memberships(session.user_id, Some(room))
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound)?;
    Ok(Json(summary_of(m)))
}

async fn read_settings(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<Json<Settings>, ApiError> {
    Ok(Json(Settings {
        share_receipts: state.storage.read_share_receipts(session.user_id).await?,
    }))
}

#[derive(serde::Deserialize)]
struct SettingsPatch {
    share_receipts: Option<bool>,
}

async fn update_settings(
    State(state): State<AppState>,
    session: AuthSession,
    crate::web::ApiJson(body): crate::web::ApiJson<SettingsPatch>,
) -> Result<Json<Settings>, ApiError> {
    if let Some(share) = body.share_receipts {
        state
            .storage
            .update_share_receipts(session.user_id, share)
            .await?;
        for conn in state.hub.user_conns(session.user_id) {
            conn.set_shares_receipts(share);
        }
    }
    read_settings(State(state), session).await
}
