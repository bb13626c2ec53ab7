//! Calls to the HTTP API. Failures come back as [`ClientError`] carrying the server's stable
//! code and human message, or a network message when the server could not be reached.

use gloo_net::http::{Request, RequestBuilder, Response};

use crate::api::{
    AuthResponse, CreateRoomRequest, EditMessageRequest, HistoryPage, LoginRequest, Member,
    Message, PublicRoom, RoomSummary, SessionResponse, SignupRequest, UpdateRoomRequest, User,
    UserRef,
};
use crate::domain::{MessageId, RoomId, UserId};
use crate::error::{ErrorBody, ErrorCode};
use crate::json::{self, FromJson, ToJson};

#[derive(Debug, Clone, PartialEq)]
pub struct ClientError {
    pub code: Option<ErrorCode>,
    pub message: String,
}

impl ClientError {
    pub fn network() -> Self {
        Self {
            code: None,
            message: "Cannot reach the server. Check your connection and try again.".into(),
        }
    }
}

async fn read<T: FromJson>(resp: Response) -> Result<T, ClientError> {
    let text = resp.text().await.map_err(|_| ClientError::network())?;
    if resp.ok() {
        return json::decode(&text).map_err(|_| ClientError::network());
    }
    match json::decode::<ErrorBody>(&text) {
        Ok(body) => Err(ClientError {
            code: Some(body.error.code),
            message: body.error.message,
        }),
        Err(_) => Err(ClientError {
            code: None,
            message: format!("The server answered {}.", resp.status()),
        }),
    }
}

/// Sends `req` with `body` as JSON and reads the answer.
async fn send_json<T: FromJson>(
    req: RequestBuilder,
    body: &(impl ToJson + ?Sized),
) -> Result<T, ClientError> {
    let resp = req
        .header("Content-Type", "application/json")
        .body(json::encode(body))
        .map_err(|_| ClientError::network())?
        .send()
        .await
        .map_err(|_| ClientError::network())?;
    read(resp).await
}

async fn post<T: FromJson>(url: &str, body: &(impl ToJson + ?Sized)) -> Result<T, ClientError> {
    send_json(Request::post(url), body).await
}

/// `{}`: the body of requests that carry nothing (a state-changing request must declare JSON).
fn empty_object() -> serde_json::Value {
    json::Object::default().into()
}

pub async fn session() -> Result<SessionResponse, ClientError> {
    let resp = Request::get("/api/auth/session")
        .send()
        .await
        .map_err(|_| ClientError::network())?;
    read(resp).await
}

pub async fn signup(req: &SignupRequest) -> Result<AuthResponse, ClientError> {
    post("/api/auth/signup", req).await
}

pub async fn login(req: &LoginRequest) -> Result<AuthResponse, ClientError> {
    post("/api/auth/login", req).await
}

pub async fn logout() -> Result<(), ClientError> {
    match no_content(Request::post("/api/auth/logout")).await {
        // The session had already ended: signed out either way.
        Err(e) if e.code == Some(ErrorCode::Unauthorized) => Ok(()),
        other => other,
    }
}

async fn get<T: FromJson>(url: &str) -> Result<T, ClientError> {
    let resp = Request::get(url)
        .send()
        .await
        .map_err(|_| ClientError::network())?;
    read(resp).await
}

/// An answer without a body (204), or the error it carries.
async fn empty(resp: Response) -> Result<(), ClientError> {
    if resp.ok() {
        Ok(())
    } else {
        read::<serde_json::Value>(resp).await.map(|_| ())
    }
}

/// For endpoints that take `{}` and answer 204 No Content.
async fn no_content(req: RequestBuilder) -> Result<(), ClientError> {
    let resp = req
        .header("Content-Type", "application/json")
        .body("{}")
        .map_err(|_| ClientError::network())?
        .send()
        .await
        .map_err(|_| ClientError::network())?;
    empty(resp).await
}

pub async fn public_rooms() -> Result<Vec<PublicRoom>, ClientError> {
    get("/api/rooms/public").await
}

pub async fn create_room(req: &CreateRoomRequest) -> Result<RoomSummary, ClientError> {
    post("/api/rooms", req).await
}

pub async fn join_room(room: RoomId) -> Result<RoomSummary, ClientError> {
    post(&format!("/api/rooms/{room}/join"), &empty_object()).await
}

pub async fn leave_room(room: RoomId) -> Result<(), ClientError> {
    no_content(Request::post(&format!("/api/rooms/{room}/leave"))).await
}

pub async fn update_room(
    room: RoomId,
    req: &UpdateRoomRequest,
) -> Result<RoomSummary, ClientError> {
    send_json(Request::patch(&format!("/api/rooms/{room}")), req).await
}

pub async fn members(room: RoomId) -> Result<Vec<Member>, ClientError> {
    get(&format!("/api/rooms/{room}/members")).await
}

pub async fn invite(room: RoomId, username: String) -> Result<Member, ClientError> {
    post(&format!("/api/rooms/{room}/members"), &UserRef { username }).await
}

pub async fn kick(room: RoomId, user: UserId) -> Result<(), ClientError> {
    let resp = Request::delete(&format!("/api/rooms/{room}/members/{user}"))
        .send()
        .await
        .map_err(|_| ClientError::network())?;
    empty(resp).await
}

pub async fn open_dm(username: String) -> Result<RoomSummary, ClientError> {
    post("/api/dms", &UserRef { username }).await
}

pub async fn history(room: RoomId, before: i64) -> Result<HistoryPage, ClientError> {
    get(&format!("/api/rooms/{room}/messages?before={before}")).await
}

pub async fn search_users(prefix: &str) -> Result<Vec<User>, ClientError> {
    let q: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c))
        .collect();
    get(&format!("/api/users?q={q}")).await
}

/// `PATCH /api/rooms/{room}/messages/{id}`: the author changes the text.
pub async fn edit_message(
    room: RoomId,
    message: MessageId,
    body: String,
) -> Result<Message, ClientError> {
    send_json(
        Request::patch(&format!("/api/rooms/{room}/messages/{message}")),
        &EditMessageRequest { body },
    )
    .await
}

/// `DELETE /api/rooms/{room}/messages/{id}`: answers the tombstone.
pub async fn delete_message(room: RoomId, message: MessageId) -> Result<Message, ClientError> {
    let resp = Request::delete(&format!("/api/rooms/{room}/messages/{message}"))
        .send()
        .await
        .map_err(|_| ClientError::network())?;
    read(resp).await
}

/// Adds (`on`) or removes my reaction with `emoji`; answers the message as it now is.
pub async fn react(
    room: RoomId,
    message: MessageId,
    emoji: &str,
    on: bool,
) -> Result<Message, ClientError> {
    let emoji = String::from(js_sys::encode_uri_component(emoji));
    let url = format!("/api/rooms/{room}/messages/{message}/reactions/{emoji}");
    let resp = if on {
        // A PUT must declare a JSON body (CSRF guard), even an empty one.
        Request::put(&url)
            .header("Content-Type", "application/json")
            .body("{}")
            .map_err(|_| ClientError::network())?
            .send()
            .await
    } else {
        Request::delete(&url).send().await
    }
    .map_err(|_| ClientError::network())?;
    read(resp).await
}

/// `PUT /api/rooms/{room}/mute`.
pub async fn mute(room: RoomId, muted: bool) -> Result<RoomSummary, ClientError> {
    send_json(
        Request::put(&format!("/api/rooms/{room}/mute")),
        &crate::api::MuteRequest { muted },
    )
    .await
}

pub async fn settings() -> Result<crate::api::Settings, ClientError> {
    get("/api/settings").await
}

/// `PATCH /api/settings`.
pub async fn update_settings(
    settings: &crate::api::Settings,
) -> Result<crate::api::Settings, ClientError> {
    send_json(Request::patch("/api/settings"), settings).await
}

struct PushKey {
    public_key: String,
}
json::json_struct!(PushKey { public_key });

/// The server's VAPID public key (base64url).
pub async fn push_key() -> Result<String, ClientError> {
    get::<PushKey>("/api/push/key").await.map(|k| k.public_key)
}

/// `POST /api/push/subscriptions` with `PushSubscription.toJSON()`.
pub async fn push_subscribe(subscription_json: &str) -> Result<(), ClientError> {
    let resp = Request::post("/api/push/subscriptions")
        .header("Content-Type", "application/json")
        .body(subscription_json)
        .map_err(|_| ClientError::network())?
        .send()
        .await
        .map_err(|_| ClientError::network())?;
    empty(resp).await
}

pub async fn push_unsubscribe(endpoint: &str) -> Result<(), ClientError> {
    let body: serde_json::Value = json::Object::default().with("endpoint", endpoint).into();
    let resp = Request::post("/api/push/unsubscribe")
        .header("Content-Type", "application/json")
        .body(json::encode(&body))
        .map_err(|_| ClientError::network())?
        .send()
        .await
        .map_err(|_| ClientError::network())?;
    empty(resp).await
}

struct TestSent {
    sent: usize,
}
json::json_struct!(TestSent { sent });

/// Sends a test notification to each of my subscriptions; how many were accepted.
pub async fn push_test() -> Result<usize, ClientError> {
    post::<TestSent>("/api/push/test", &empty_object())
        .await
        .map(|t| t.sent)
}
