//! Web Push against a push service stood up by the test: the request is RFC 8291-encrypted for
//! the subscription's keys (decrypted here), VAPID-signed with the server's key, sent for DMs
//! and mentions only when the user has no tab, and dead subscriptions are dropped.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ece::LocalKeyPair;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::helpers::*;

struct Received {
    headers: HeaderMap,
    body: Bytes,
}

/// A fake push service on a random port. Answers with `status` (shared, changeable).
struct PushService {
    url: String,
    rx: mpsc::Receiver<Received>,
    status: Arc<Mutex<u16>>,
}

async fn push_service() -> PushService {
    let (tx, rx) = mpsc::channel(16);
    let status = Arc::new(Mutex::new(201u16));
    let app = axum::Router::new()
        .route(
            "/push/{id}",
            axum::routing::post(
                |State((tx, status)): State<(mpsc::Sender<Received>, Arc<Mutex<u16>>)>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    tx.send(Received { headers, body }).await.ok();
                    AxumStatus::from_u16(*status.lock().unwrap()).unwrap()
                },
            ),
        )
        .with_state((tx, status.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    PushService {
        url: format!("http://{addr}/push/device-1"),
        rx,
        status,
    }
}

impl PushService {
    async fn next(&mut self) -> Received {
        tokio::time::timeout(std::time::Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a push in time")
            .expect("push service running")
    }

    async fn assert_none(&mut self) {
        let got = tokio::time::timeout(std::time::Duration::from_millis(500), self.rx.recv()).await;
        assert!(got.is_err(), "unexpected push");
    }
}

/// A browser's subscription keys.
struct Device {
    keys: Box<dyn LocalKeyPair>,
    auth: [u8; 16],
}

impl Device {
    fn new() -> Self {
        let (keys, auth) = ece::generate_keypair_and_auth_secret().unwrap();
        Self { keys, auth }
    }

    fn subscription(&self, endpoint: &str) -> Value {
        json!({"endpoint": endpoint, "keys": {
            "p256dh": URL_SAFE_NO_PAD.encode(self.keys.pub_as_raw().unwrap()),
            "auth": URL_SAFE_NO_PAD.encode(self.auth),
        }})
    }

    fn decrypt(&self, body: &[u8]) -> Value {
        let plain = ece::decrypt(&self.keys.raw_components().unwrap(), &self.auth, body)
            .expect("the payload decrypts with the subscription's keys");
        serde_json::from_slice(&plain).expect("json payload")
    }
}

#[tokio::test]
async fn a_dm_to_someone_without_a_tab_is_pushed_encrypted_and_signed() {
    let app = spawn_app_with(|c| c.push_allow_local = true).await;
    let mut service = push_service().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let device = Device::new();
    let resp = app
        .authed(
            &alice,
            Method::POST,
            "/api/push/subscriptions",
            Some(device.subscription(&service.url)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let key: Value = app
        .authed(&alice, Method::GET, "/api/push/key", None)
        .await
        .json()
        .await
        .unwrap();
    let public_key = key["public_key"].as_str().unwrap().to_owned();
    assert_eq!(URL_SAFE_NO_PAD.decode(&public_key).unwrap().len(), 65);

    let dm: Value = app
        .authed(
            &bob,
            Method::POST,
            "/api/dms",
            Some(json!({"username": "alice"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let room = dm["id"].as_i64().unwrap();
    app.post_message(&bob, room, "b1", "Lunch at **noon**?")
        .await;

    let push = service.next().await;
    assert_eq!(push.headers["content-encoding"], "aes128gcm");
    assert!(push.headers.contains_key("ttl"));
    let vapid = push.headers["authorization"].to_str().unwrap();
    assert!(vapid.starts_with("vapid t="), "{vapid}");
    assert!(vapid.contains(&format!("k={public_key}")), "{vapid}");
    let payload = device.decrypt(&push.body);
    assert_eq!(payload["title"], "bob");
    assert_eq!(payload["body"], "Lunch at noon?");
    assert_eq!(payload["room_id"], room);
    assert_eq!(payload["url"], format!("/rooms/{room}"));

    // While Alice has a visible tab open, she gets no push; a hidden tab does not count.
    let mut tab = app.ws(&alice).await;
    app.post_message(&bob, room, "b2", "are you there?").await;
    service.assert_none().await;
    tab.send(json!({"type": "visibility", "visible": false}))
        .await;
    // A frame with an answer, to know the one before was handled.
    tab.send(json!({"type": "typing", "room_id": 999_999, "active": false}))
        .await;
    tab.recv("error").await;
    app.post_message(&bob, room, "b3", "hello?").await;
    assert_eq!(device.decrypt(&service.next().await.body)["body"], "hello?");
}

#[tokio::test]
async fn room_messages_push_only_mentions_and_never_muted_rooms() {
    let app = spawn_app_with(|c| c.push_allow_local = true).await;
    let mut service = push_service().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let room = app.create_room(&bob, "general", "public").await;
    app.join(&alice, room).await;
    let device = Device::new();
    app.authed(
        &alice,
        Method::POST,
        "/api/push/subscriptions",
        Some(device.subscription(&service.url)),
    )
    .await;
    app.post_message(&bob, room, "b1", "nothing for alice")
        .await;
    service.assert_none().await;
    app.post_message(&bob, room, "b2", "@alice look").await;
    let payload = device.decrypt(&service.next().await.body);
    assert_eq!(payload["title"], "bob in general");
    assert_eq!(payload["body"], "@alice look");

    app.authed(
        &alice,
        Method::PUT,
        &format!("/api/rooms/{room}/mute"),
        Some(json!({"muted": true})),
    )
    .await;
    app.post_message(&bob, room, "b3", "@alice again").await;
    service.assert_none().await;
}

#[tokio::test]
async fn a_dead_subscription_is_removed_and_test_pushes_report_what_was_sent() {
    let app = spawn_app_with(|c| c.push_allow_local = true).await;
    let mut service = push_service().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let device = Device::new();
    app.authed(
        &alice,
        Method::POST,
        "/api/push/subscriptions",
        Some(device.subscription(&service.url)),
    )
    .await;
    let sent: Value = app
        .authed(&alice, Method::POST, "/api/push/test", Some(json!({})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sent, json!({"sent": 1}));
    assert_eq!(device.decrypt(&service.next().await.body)["tag"], "test");

    *service.status.lock().unwrap() = 410;
    let sent: Value = app
        .authed(&alice, Method::POST, "/api/push/test", Some(json!({})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sent, json!({"sent": 0}));
    service.next().await;
    // Gone for good: the next test push reaches nobody.
    *service.status.lock().unwrap() = 201;
    let sent: Value = app
        .authed(&alice, Method::POST, "/api/push/test", Some(json!({})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sent, json!({"sent": 0}));
    service.assert_none().await;
}

#[tokio::test]
async fn subscriptions_must_point_at_public_https_push_services() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let device = Device::new();
    for endpoint in [
        "http://push.example.com/x",
        "https://127.0.0.1/x",
        "https://localhost:8080/x",
        "https://10.0.0.1/x",
        "file:///etc/passwd",
    ] {
        let resp = app
            .authed(
                &alice,
                Method::POST,
                "/api/push/subscriptions",
                Some(device.subscription(endpoint)),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{endpoint}");
    }
    let mut bad_keys = device.subscription("https://push.example.com/x");
    bad_keys["keys"]["p256dh"] = json!("AAAA");
    let resp = app
        .authed(
            &alice,
            Method::POST,
            "/api/push/subscriptions",
            Some(bad_keys),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}
