//! One chat connection at `/ws`: upgrade checks, `hello` and resume, sends, typing, presence.
//!
//! Per connection there are two tasks: the reader (this module's `ChatHandler` driven by
//! `socket::read_loop`) and the writer (`socket::write_loop`) draining a bounded outbox. Nothing
//! the client does can grow server memory: frames are size-limited, the outbox is bounded (a
//! full one closes the connection, which resumes from its cursor), the rate is limited.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::api::User;
use app::domain::RoomId;
use app::error::ErrorCode;
use app::protocol::{ClientFrame, Presence, ServerFrame, close_code};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use bytes::Bytes;

use super::hub::{BATCH_ENTRIES, ConnHandle, Cursor, Outgoing, encode};
use super::socket::{self, CatchUp, Flow, Handler};
use super::writer::{Job, Reply};
use crate::auth::AuthSession;
use crate::clock;
use crate::error::ApiError;
use crate::rooms::summary_of;
use crate::state::AppState;
use crate::storage::{Change, NewMessage, Storage, StorageError};

/// Messages sent on resume at most; a larger gap gets the newest page and `limited`.
pub const RESUME_MAX: i64 = 200;
/// A history page.
pub const PAGE: i64 = 50;

pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // Browsers always send Origin on a WebSocket handshake; a page on another site must not
    // open a socket with our user's cookie. Non-browser clients send none.
    if let Some(origin) = headers.get(header::ORIGIN) {
        let ok = origin.to_str().is_ok_and(|o| state.origins.allows(o));
        if !ok {
            return Err(ApiError::CrossSite);
        }
    }
    let (session, user, shares_receipts) = AuthSession::with_user(&state, &headers).await?;
    let ws = ws.map_err(|r| ApiError::BadRequest(r.body_text()))?;
    let limits = &state.config.limits;
    if state.hub.connection_count(session.user_id) >= limits.ws_per_user {
        return Err(ApiError::TooManyConnections);
    }
    if state.hub.total_connections() >= limits.ws_total {
        return Err(ApiError::Busy);
    }
    let user = crate::auth::user_json(user);
    let tracker = state.tasks.token();
    Ok(
        // The socket is boxed and the callback is `run` itself: every async layer keeps its
        // arguments for its whole life, so a 368-byte socket passed by value would be held
        // three times over by every idle connection.
        socket::configure(ws, limits.ws_max_message_bytes).on_upgrade(move |socket| {
            run(
                state,
                Box::new(socket),
                session,
                user,
                shares_receipts,
                tracker,
            )
        }),
    )
}

/// Sets the connection up, and returns the future that serves it until it ends.
///
/// Not an `async fn`: an async fn keeps its arguments for its whole life next to the locals
/// made from them, and this future lives as long as the socket. Everything is set up here and
/// the returned future holds each thing once (docs/perf.md, S1 memory).
fn run(
    state: AppState,
    socket: Box<WebSocket>,
    session: AuthSession,
    user: User,
    shares_receipts: bool,
    tracker: tokio_util::task::task_tracker::TaskTrackerToken,
) -> impl Future<Output = ()> + Send {
    let (conn, outbox) = ConnHandle::new(
        state.hub.next_conn_id(),
        user.id,
        Arc::from(session.session_id.as_str()),
        state.config.limits.ws_outbox_frames,
    );
    conn.set_shares_receipts(shares_receipts);
    let came_online = match state.hub.connect(&conn, state.config.limits.ws_per_user) {
        Ok(first) => first,
        Err(_) => {
            conn.close(code_policy(), "too many connections");
            false
        }
    };
    // The session ends by itself at its expiry: so does a socket opened with it.
    let left = session.expires_at.saturating_sub(clock::now_secs()).max(0);
    let timers = socket::Timers {
        beat: heartbeat(&state),
        deadline: socket::Deadline {
            at: tokio::time::Instant::now() + Duration::from_secs(left.unsigned_abs()),
            code: close_code::SESSION_ENDED,
            reason: "session expired",
        },
        start_by: Some(socket::Deadline {
            at: tokio::time::Instant::now() + state.config.limits.ws_hello_within,
            code: close_code::NO_HELLO,
            reason: "send hello first",
        }),
    };
    let loader = Loader {
        storage: state.storage.clone(),
    };
    let shutdown = state.shutdown.clone();
    let mut handler = ChatHandler {
        bucket: TokenBucket::new(
            state.config.limits.ws_burst,
            state.config.limits.ws_frames_per_sec,
        ),
        state,
        conn: conn.clone(),
        user,
        came_online,
        helloed: false,
    };
    async move {
        let _tracker = tracker;
        socket::drive(
            socket,
            &conn,
            outbox,
            loader,
            &shutdown,
            timers,
            &mut handler,
        )
        .await;
        handler.ended();
    }
}

fn heartbeat(state: &AppState) -> socket::Heartbeat {
    socket::Heartbeat {
        every: state.config.limits.ws_ping_every,
        dead_after: state.config.limits.ws_dead_after,
    }
}

fn code_policy() -> u16 {
    socket::code::POLICY
}

struct Loader {
    storage: Arc<dyn Storage>,
}

impl CatchUp for Loader {
    async fn load(
        &mut self,
        room: RoomId,
        after: Option<Cursor>,
        upto: Cursor,
    ) -> Option<Utf8Bytes> {
        match self.synced(room, after, upto).await {
            Ok(frame) => Some(encode(&frame)),
            Err(e) => {
                tracing::error!(error = ?e, room_id = %room, "catch-up failed");
                None
            }
        }
    }
}

impl Loader {
    /// What the client misses between `after` and `upto`: the new messages, and the older ones
    /// that changed. A gap over [`RESUME_MAX`] of either kind gets the newest page, `limited`.
    async fn synced(
        &self,
        room: RoomId,
        after: Option<Cursor>,
        upto: Cursor,
    ) -> Result<ServerFrame, StorageError> {
        if after == Some(upto) {
            // Nothing new and nothing changed (a reconnect): no query.
            return Ok(ServerFrame::Synced {
                room_id: room,
                messages: Vec::new(),
                updated: Vec::new(),
                limited: false,
                last_rev: upto.rev,
            });
        }
        if let Some(after) = after.filter(|a| a.seq <= upto.seq && upto.seq - a.seq <= RESUME_MAX) {
            let messages = self
                .storage
                .read_messages_between(room, after.seq, upto.seq, RESUME_MAX)
                .await?;
            let updated = self
                .storage
                .read_messages_changed(room, after.seq, after.rev, upto.rev, RESUME_MAX + 1)
                .await?;
            if updated.len() as i64 <= RESUME_MAX {
                return Ok(ServerFrame::Synced {
                    room_id: room,
                    messages,
                    updated,
                    limited: false,
                    last_rev: upto.rev,
                });
            }
        }
        let messages = self
            .storage
            .read_messages_before(room, Some(upto.seq + 1), PAGE)
            .await?;
        let older = messages.first().is_some_and(|f| f.seq > 1);
        Ok(ServerFrame::Synced {
            room_id: room,
            messages,
            updated: Vec::new(),
            limited: older || after.is_some_and(|a| a.seq < upto.seq),
            last_rev: upto.rev,
        })
    }
}

/// Frames per second with a burst allowance.
struct TokenBucket {
    capacity: f64,
    tokens: f64,
    per_sec: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(burst: u32, per_sec: u32) -> Self {
        Self {
            capacity: f64::from(burst),
            tokens: f64::from(burst),
            per_sec: f64::from(per_sec),
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_sec;
        self.tokens = (self.tokens + refill).min(self.capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct ChatHandler {
    state: AppState,
    conn: ConnHandle,
    user: User,
    came_online: bool,
    helloed: bool,
    bucket: TokenBucket,
}

impl ChatHandler {
    /// The socket has ended: unregister it, and tell the user's rooms if they went offline.
    fn ended(&self) {
        let state = &self.state;
        let conn = &self.conn;
        let (rooms, went_offline) = state.hub.disconnect(conn);
        if !went_offline {
            return;
        }
        let now = clock::now_millis();
        if self.helloed && !state.hub.is_online(conn.user) {
            let presence = Presence {
                user_id: conn.user,
                online: false,
                last_seen_at: Some(now),
            };
            state.hub.announce_presence(&rooms, &presence);
        }
        state.last_seen.record(conn.user, now);
    }

    fn error(&self, code: ErrorCode, message: &str, client_id: Option<String>) {
        self.conn.send_frame(&ServerFrame::Error {
            code,
            message: message.to_owned(),
            client_id,
        });
    }

    async fn hello(&mut self, resume: Vec<app::protocol::RoomCursor>) -> Flow {
        let state = &self.state;
        let departures = state.hub.departures();
        let memberships = match state.storage.read_memberships(self.user.id, None).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = ?e, "hello failed");
                self.error(
                    ErrorCode::Internal,
                    "Could not load your rooms; reconnect.",
                    None,
                );
                self.conn.close(socket::code::GOING_AWAY, "internal error");
                return Flow::Stop;
            }
        };
        let rooms: Vec<RoomId> = memberships.iter().map(|m| m.room.id).collect();
        self.conn.send_frame(&ServerFrame::Ready {
            user: self.user.clone(),
            rooms: memberships.into_iter().map(summary_of).collect(),
        });
        let cursors: HashMap<RoomId, Cursor> = resume
            .into_iter()
            .map(|c| {
                let cursor = Cursor {
                    seq: c.last_seq,
                    rev: c.last_rev,
                };
                (c.room_id, cursor)
            })
            .collect();
        for room in &rooms {
            state
                .hub
                .subscribe(*room, &self.conn, cursors.get(room).copied());
        }
        // A kick between reading the memberships and subscribing would otherwise leave this
        // socket following a room its user just left: if anyone left any room meanwhile, check
        // once more.
        if state.hub.departures() != departures
            && let Ok(now) = state.storage.read_memberships(self.user.id, None).await
        {
            for room in rooms
                .iter()
                .filter(|r| !now.iter().any(|m| m.room.id == **r))
            {
                state.hub.unsubscribe_conn(*room, &self.conn);
            }
        }
        self.helloed = true;
        // Who is online: everyone following one of these rooms, now that this socket follows
        // them too (a change after this point reaches it through the rooms' batches).
        let online = state.hub.online_in(&rooms, self.user.id);
        for chunk in online.chunks(BATCH_ENTRIES) {
            let users = chunk
                .iter()
                .map(|&user_id| Presence {
                    user_id,
                    online: true,
                    last_seen_at: None,
                })
                .collect();
            self.conn.send_frame(&ServerFrame::Presence { users });
        }
        if self.came_online {
            let presence = Presence {
                user_id: self.user.id,
                online: true,
                last_seen_at: None,
            };
            state.hub.announce_presence(&rooms, &presence);
        }
        Flow::Continue
    }

    async fn send(
        &mut self,
        room_id: RoomId,
        client_id: String,
        body: String,
        reply_to: Option<app::domain::MessageId>,
        attachments: Vec<String>,
    ) -> Flow {
        let now = clock::now_millis();
        let message = match NewMessage::parse(
            room_id,
            self.user.id,
            &client_id,
            &body,
            reply_to,
            attachments,
            now,
        ) {
            Ok(m) => m,
            Err(e) => {
                self.error(e.code(), &e.to_string(), Some(client_id));
                return Flow::Continue;
            }
        };
        if !self.state.hub.is_subscribed(room_id, self.conn.id) {
            self.error(
                ErrorCode::NotFound,
                "No such room, or you are not a member of it.",
                Some(client_id),
            );
            return Flow::Continue;
        }
        let job = Job {
            change: Change::Append(message),
            reply: Reply::Conn(self.conn.clone()),
        };
        if self.state.writer.submit(job).await.is_err() {
            self.error(
                ErrorCode::ServerBusy,
                "The server is shutting down.",
                Some(client_id),
            );
            return Flow::Stop;
        }
        Flow::Continue
    }
}

impl Handler for ChatHandler {
    async fn on_text(&mut self, text: Utf8Bytes) -> Flow {
        if !self.bucket.take() {
            self.error(
                ErrorCode::RateLimited,
                "Too many frames too fast; slow down and reconnect.",
                None,
            );
            self.conn.close(socket::code::POLICY, "rate limit exceeded");
            return Flow::Stop;
        }
        let frame: ClientFrame = match serde_json::from_str(text.as_str()) {
            Ok(f) => f,
            Err(e) => {
                self.error(
                    ErrorCode::BadFrame,
                    &format!("Not a frame this server understands: {e}"),
                    None,
                );
                return Flow::Continue;
            }
        };
        match frame {
            ClientFrame::Hello { resume } if !self.helloed => self.hello(resume).await,
            ClientFrame::Hello { .. } => {
                self.error(ErrorCode::BadFrame, "hello was already received.", None);
                Flow::Continue
            }
            _ if !self.helloed => {
                self.error(ErrorCode::BadFrame, "Send hello first.", None);
                Flow::Continue
            }
            ClientFrame::Send {
                room_id,
                client_id,
                body,
                reply_to,
                attachments,
            } => {
                self.send(room_id, client_id, body, reply_to, attachments)
                    .await
            }
            ClientFrame::Read { room_id, seq } => {
                if self.state.hub.is_subscribed(room_id, self.conn.id) {
                    if let Err(e) =
                        crate::read_state::mark(&self.state, self.user.id, room_id, seq).await
                    {
                        tracing::warn!(error = ?e, "marking read failed");
                    }
                } else {
                    self.error(
                        ErrorCode::NotFound,
                        "No such room, or you are not a member of it.",
                        None,
                    );
                }
                Flow::Continue
            }
            ClientFrame::Visibility { visible } => {
                self.conn.set_hidden(!visible);
                Flow::Continue
            }
            ClientFrame::Typing { room_id, active } => {
                if self.state.hub.is_subscribed(room_id, self.conn.id) {
                    let frame = ServerFrame::Typing {
                        room_id,
                        user_id: self.user.id,
                        active,
                    };
                    self.state
                        .hub
                        .broadcast(room_id, &frame, Some(self.user.id));
                } else {
                    self.error(
                        ErrorCode::NotFound,
                        "No such room, or you are not a member of it.",
                        None,
                    );
                }
                Flow::Continue
            }
        }
    }

    async fn on_binary(&mut self, _data: Bytes) -> Flow {
        self.error(
            ErrorCode::BadFrame,
            "Binary frames are not used; send JSON text.",
            None,
        );
        Flow::Continue
    }

    fn started(&self) -> bool {
        self.helloed
    }
}

/// Test-only echo route on the same socket code (`NATTER_WS_ECHO=1`), for the Autobahn
/// conformance suite. Never enabled by default: it needs no authentication.
pub async fn echo(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let tracker = state.tasks.token();
    socket::configure(ws, 16 * 1024 * 1024 + 1024).on_upgrade(move |socket| async move {
        let socket = Box::new(socket);
        let (conn, outbox) = ConnHandle::new(0, app::domain::UserId::new(0), Arc::from(""), 64);
        let mut handler = Echo { conn: conn.clone() };
        let beat = heartbeat(&state);
        socket::drive(
            socket,
            &conn,
            outbox,
            socket::NoCatchUp,
            &state.shutdown,
            socket::Timers {
                beat,
                deadline: socket::Deadline::never(),
                start_by: None,
            },
            &mut handler,
        )
        .await;
        drop(tracker);
    })
}

struct Echo {
    conn: ConnHandle,
}

impl Handler for Echo {
    async fn on_text(&mut self, text: Utf8Bytes) -> Flow {
        self.conn.send_wait(Outgoing::Frame(text)).await;
        Flow::Continue
    }

    async fn on_binary(&mut self, data: Bytes) -> Flow {
        self.conn.send_wait(Outgoing::Binary(data)).await;
        Flow::Continue
    }
}
