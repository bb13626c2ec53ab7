//! `spawn_app()` and typed helpers shared by every test module.

use std::net::SocketAddr;
use std::path::PathBuf;

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use server::config::Config;
use server::startup::Application;
use tempfile::TempDir;
use tokio::sync::oneshot;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:<port>`: the origin the server trusts by default.
    pub origin: String,
    pub data_dir: TempDir,
    _site_dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server task may already be gone; nothing to do then.
            stop.send(()).ok();
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the server with the default configuration changed by `tweak`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        server::telemetry::init();
    }
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let site_dir = tempfile::tempdir().expect("temp site dir");
    std::fs::write(
        site_dir.path().join("shell.html"),
        "<!doctype html><title>Natter</title><p>shell",
    )
    .expect("shell.html");
    std::fs::create_dir(site_dir.path().join("pkg")).expect("pkg dir");
    std::fs::write(site_dir.path().join("pkg/natter.js"), "export default 1;").expect("js");

    let mut config = Config::with_defaults();
    config.addr = "127.0.0.1:0".parse().expect("addr");
    config.data_dir = data_dir.path().join("data");
    config.site_root = PathBuf::from(site_dir.path());
    tweak(&mut config);

    let app = Application::build(config).await.expect("server builds");
    let addr = app.local_addr();
    let origin = app.public_origin().to_owned();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        stopped.await.ok();
    }));
    TestApp {
        addr,
        origin,
        data_dir,
        _site_dir: site_dir,
        stop: Some(stop),
    }
}

/// A client that keeps cookies, like a browser tab.
pub fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A client without cookies, like a bot using bearer tokens.
pub fn bot() -> Client {
    Client::builder().build().expect("client")
}

impl TestApp {
    /// Asks the server to shut down, as SIGTERM does.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The directory the server serves the client from.
    pub fn site_dir(&self) -> &std::path::Path {
        self._site_dir.path()
    }

    pub async fn post_json(&self, client: &Client, path: &str, body: &Value) -> Response {
        client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn signup(&self, client: &Client, username: &str, password: &str) -> Response {
        self.post_json(
            client,
            "/api/auth/signup",
            &json!({ "username": username, "password": password }),
        )
        .await
    }

    pub async fn login(&self, client: &Client, username: &str, password: &str) -> Response {
        self.post_json(
            client,
            "/api/auth/login",
            &json!({ "username": username, "password": password }),
        )
        .await
    }

    /// Signs `username` up with [`PASSWORD`]; returns the token.
    pub async fn signup_ok(&self, client: &Client, username: &str) -> String {
        let resp = self.signup(client, username, PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::CREATED, "signup of {username}");
        let body: Value = resp.json().await.expect("json");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Logs `username` in with [`PASSWORD`]; returns the token.
    pub async fn login_ok(&self, client: &Client, username: &str) -> String {
        let resp = self.login(client, username, PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::OK, "login of {username}");
        let body: Value = resp.json().await.expect("json");
        body["token"].as_str().expect("token").to_owned()
    }

    /// `GET /api/auth/me` with a bearer token.
    pub async fn me_with_token(&self, token: &str) -> Response {
        bot()
            .get(self.url("/api/auth/me"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// The server's database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.path().join("data/natter.db")
    }

    /// A connection of the test's own to the server's database, for what only the database
    /// shows (stored hashes, bytes on disk).
    pub async fn db(&self) -> sqlx::SqliteConnection {
        use sqlx::ConnectOptions;
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(self.db_path())
            .connect()
            .await
            .expect("a connection to the server's database")
    }

    pub fn jwt_key(&self) -> Vec<u8> {
        let text = std::fs::read_to_string(self.data_dir.path().join("data/jwt.key")).expect("key");
        hex_decode(text.trim())
    }
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Asserts the documented error shape and returns the code.
pub async fn error_code(resp: Response, status: StatusCode) -> String {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.expect("error body is json");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(!message.is_empty());
    body["error"]["code"].as_str().expect("code").to_owned()
}

// ---------- rooms and WebSockets ----------

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame before failing (a hang is a failure, not a slow pass).
pub const FRAME_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

/// What ended a socket, as the client saw it.
#[derive(Debug)]
pub enum Ended {
    Closed(Option<u16>),
    Dropped,
}

impl Ws {
    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(WsMessage::Text(frame.to_string().into()))
            .await
            .expect("frame sent");
    }

    /// The next JSON frame, or `None` when the socket ends first.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(FRAME_WAIT, self.stream.next())
                .await
                .expect("a frame in time")?;
            match msg {
                Ok(WsMessage::Text(t)) => {
                    return Some(serde_json::from_str(&t).expect("json frame"));
                }
                Ok(WsMessage::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Skips frames until one has `"type": kind`.
    pub async fn recv(&mut self, kind: &str) -> Value {
        loop {
            let frame = self
                .next()
                .await
                .unwrap_or_else(|| panic!("socket ended waiting for {kind}"));
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Skips frames until one matches.
    pub async fn recv_where(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let frame = self
                .next()
                .await
                .unwrap_or_else(|| panic!("socket ended waiting for {what}"));
            if pred(&frame) {
                return frame;
            }
        }
    }

    /// Reads until the socket ends; returns the close code and the frames seen on the way.
    pub async fn until_end(&mut self) -> (Ended, Vec<Value>) {
        let mut frames = Vec::new();
        loop {
            let msg = tokio::time::timeout(FRAME_WAIT, self.stream.next())
                .await
                .expect("the socket ends in time");
            match msg {
                None | Some(Err(_)) => return (Ended::Dropped, frames),
                Some(Ok(WsMessage::Close(frame))) => {
                    let code = frame.map(|f: CloseFrame| u16::from(f.code));
                    // Complete the handshake.
                    while let Ok(Some(_)) =
                        tokio::time::timeout(std::time::Duration::from_secs(1), self.stream.next())
                            .await
                    {}
                    return (Ended::Closed(code), frames);
                }
                Some(Ok(WsMessage::Text(t))) => {
                    frames.push(serde_json::from_str(&t).expect("json"))
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// Asserts no frame of `kind` arrives within a short while (used after a boundary the
    /// server has already acknowledged, so "nothing more" is the behaviour under test).
    /// Waits 600 ms: over two presence/receipt batch periods (250 ms).
    pub async fn assert_no(&mut self, kind: &str) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(600);
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, self.stream.next()).await {
            if let WsMessage::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).expect("json");
                assert_ne!(v["type"], kind, "unexpected {v}");
            }
        }
    }
}

impl TestApp {
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Opens `/ws` with a bearer token and extra headers; the handshake error if refused.
    pub async fn ws_raw(
        &self,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Ws, tungstenite::Error> {
        let mut req = self.ws_url().into_client_request().expect("request");
        if let Some(token) = token {
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
        }
        for (k, v) in headers {
            req.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        tokio_tungstenite::connect_async(req)
            .await
            .map(|(stream, _)| Ws { stream })
    }

    /// Connects, says hello with `resume`, and returns the socket and the `ready` frame.
    pub async fn ws_hello(&self, token: &str, resume: Value) -> (Ws, Value) {
        let mut ws = self.ws_raw(Some(token), &[]).await.expect("upgrade");
        ws.send(json!({"type": "hello", "resume": resume})).await;
        let ready = ws.recv("ready").await;
        (ws, ready)
    }

    /// Connects fresh and waits until every room's catch-up has arrived.
    pub async fn ws(&self, token: &str) -> Ws {
        let (mut ws, ready) = self.ws_hello(token, json!([])).await;
        let rooms = ready["rooms"].as_array().expect("rooms").len();
        for _ in 0..rooms {
            ws.recv("synced").await;
        }
        ws
    }

    pub async fn authed(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let mut req = bot().request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request sent")
    }

    /// Creates a room as `token`'s user; returns its id.
    pub async fn create_room(&self, token: &str, name: &str, visibility: &str) -> i64 {
        let resp = self
            .authed(
                token,
                reqwest::Method::POST,
                "/api/rooms",
                Some(json!({"name": name, "visibility": visibility})),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: Value = resp.json().await.expect("json");
        body["id"].as_i64().expect("id")
    }

    pub async fn join(&self, token: &str, room: i64) -> Response {
        self.authed(
            token,
            reqwest::Method::POST,
            &format!("/api/rooms/{room}/join"),
            Some(json!({})),
        )
        .await
    }

    /// Posts over HTTP (acknowledged when stored); returns the message.
    pub async fn post_message(
        &self,
        token: &str,
        room: i64,
        client_id: &str,
        body: &str,
    ) -> Response {
        self.authed(
            token,
            reqwest::Method::POST,
            &format!("/api/rooms/{room}/messages"),
            Some(json!({"client_id": client_id, "body": body})),
        )
        .await
    }

    pub async fn history(&self, token: &str, room: i64, query: &str) -> Response {
        self.authed(
            token,
            reqwest::Method::GET,
            &format!("/api/rooms/{room}/messages{query}"),
            None,
        )
        .await
    }

    pub async fn user_id(&self, token: &str) -> i64 {
        let me: Value = self.me_with_token(token).await.json().await.expect("json");
        me["id"].as_i64().expect("id")
    }
}

pub fn send_frame(room: i64, client_id: &str, body: &str) -> Value {
    json!({"type": "send", "room_id": room, "client_id": client_id, "body": body})
}

pub fn seqs(messages: &Value) -> Vec<i64> {
    messages
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect()
}
