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
        site_dir.path().join("index.html"),
        "<!doctype html><title>Natter</title><p>shell",
    )
    .expect("index.html");
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
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
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
