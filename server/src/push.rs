//! Web Push: notifications for DMs and mentions when the user has no tab open.
//!
//! The VAPID key pair (P-256) is generated into `<data dir>/vapid.key` on first start. Browsers
//! subscribe with the public key and give us an endpoint on their push service plus their own
//! key and auth secret; each notification is encrypted for that browser (RFC 8291, `aes128gcm`,
//! by the `web-push` crate) and signed with our VAPID key (RFC 8292), then POSTed to the
//! endpoint. A `404`/`410` from the push service means the subscription is dead: it is removed.
//!
//! The endpoint is a URL a client chose and the server will POST to, so it is checked: `https`
//! only, no IP literals, no name resolving to a private, loopback or link-local address
//! (`NATTER_PUSH_ALLOW_LOCAL=1` lifts this for tests and development only).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use app::api::Message;
use app::domain::{RoomId, UserId};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use web_push::{
    ContentEncoding, PartialVapidSignatureBuilder, SubscriptionInfo, Urgency,
    VapidSignatureBuilder, WebPushMessageBuilder,
};

use crate::auth::AuthSession;
use crate::clock;
use crate::error::ApiError;
use crate::realtime::hub::Hub;
use crate::state::AppState;
use crate::storage::{PushSubscriptionRecord, Storage};
use crate::web::ApiJson;

const KEY_FILE: &str = "vapid.key";
/// Subscriptions kept per user (browsers and devices); the oldest go first.
const MAX_SUBSCRIPTIONS_PER_USER: i64 = 10;
const MAX_ENDPOINT_LEN: usize = 2048;
/// Stored messages waiting to be considered for push; when full, pushes are skipped (logged),
/// never the message.
const QUEUE: usize = 1024;
/// Pushes in flight at once.
const CONCURRENCY: usize = 16;
/// How long a push service keeps an undelivered notification.
const TTL_SECS: u32 = 24 * 60 * 60;

/// What the service worker receives (decrypted) and shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPayload {
    pub title: String,
    pub body: String,
    /// The conversation to open on click (absent for the test notification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<app::domain::RoomId>,
    /// Where to navigate on click.
    pub url: String,
    /// Replaces an earlier notification with the same tag (one per conversation).
    pub tag: String,
}

#[derive(Clone)]
pub struct Pusher {
    inner: Arc<Inner>,
}

struct Inner {
    vapid: PartialVapidSignatureBuilder,
    public_key: String,
    subject: String,
    /// Built on the first push, not at start: loading the system's root certificates costs
    /// ~100 ms of CPU (half of the server's start to ready, docs/perf.md) and most servers
    /// send no push in their first seconds, if ever.
    http: tokio::sync::OnceCell<reqwest::Client>,
    allow_local: bool,
    queue: mpsc::Sender<Message>,
    sending: Arc<Semaphore>,
    /// Which rooms are DMs, with their two members (a room's kind never changes, nor do a DM's
    /// members): most messages need no database query to know they push nothing.
    conversations: std::sync::Mutex<HashMap<RoomId, Conversation>>,
    /// Users who may have a push subscription (a superset: loaded at start, added to on
    /// subscribe, never pruned). Nobody else can be pushed to.
    subscribers: std::sync::Mutex<HashSet<UserId>>,
}

#[derive(Clone)]
enum Conversation {
    Room,
    Dm(Vec<UserId>),
}

impl Pusher {
    /// Loads (or creates) the VAPID key and starts the task that turns stored messages into
    /// pushes.
    pub fn start(
        data_dir: &Path,
        subject: String,
        allow_local: bool,
        storage: Arc<dyn Storage>,
        hub: Arc<Hub>,
        tasks: &tokio_util::task::TaskTracker,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let vapid = load_or_create_key(&data_dir.join(KEY_FILE))?;
        let public_key = URL_SAFE_NO_PAD.encode(vapid.get_public_key());
        let (queue, rx) = mpsc::channel(QUEUE);
        let pusher = Self {
            inner: Arc::new(Inner {
                vapid,
                public_key,
                subject,
                http: tokio::sync::OnceCell::new(),
                allow_local,
                queue,
                sending: Arc::new(Semaphore::new(CONCURRENCY)),
                conversations: std::sync::Mutex::default(),
                subscribers: std::sync::Mutex::default(),
            }),
        };
        tasks.spawn(pusher.clone().run(rx, storage, hub, shutdown));
        Ok(pusher)
    }

    /// The VAPID public key, base64url: the browser's `applicationServerKey`.
    pub fn public_key(&self) -> &str {
        &self.inner.public_key
    }

    /// `user` has a push subscription now.
    pub fn note_subscriber(&self, user: UserId) {
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user);
    }

    /// Called by the message writer for every stored message. Never waits.
    pub fn message_stored(&self, message: &Message) {
        if self.inner.queue.try_send(message.clone()).is_err() {
            tracing::warn!(message_id = %message.id, "push queue full: notification skipped");
        }
    }

    async fn run(
        self,
        mut rx: mpsc::Receiver<Message>,
        storage: Arc<dyn Storage>,
        hub: Arc<Hub>,
        shutdown: CancellationToken,
    ) {
        match storage.read_push_users().await {
            Ok(users) => self
                .inner
                .subscribers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(users),
            Err(e) => tracing::error!(error = ?e, "loading push subscribers failed"),
        }
        loop {
            let message = tokio::select! {
                m = rx.recv() => m,
                () = shutdown.cancelled() => return,
            };
            let Some(message) = message else { return };
            if let Err(e) = self.notify(&message, &storage, &hub).await {
                tracing::warn!(error = ?e, message_id = %message.id, "push failed");
            }
        }
    }

    async fn notify(
        &self,
        message: &Message,
        storage: &Arc<dyn Storage>,
        hub: &Hub,
    ) -> anyhow::Result<()> {
        let known = self
            .inner
            .conversations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&message.room_id)
            .cloned();
        let conversation = match known {
            Some(c) => c,
            None => {
                let is_dm = storage
                    .read_room(message.room_id)
                    .await?
                    .is_some_and(|r| r.kind == app::domain::RoomKind::Dm);
                let conversation = if is_dm {
                    let members = storage.read_members(message.room_id).await?;
                    Conversation::Dm(members.into_iter().map(|m| m.user.id).collect())
                } else {
                    Conversation::Room
                };
                let mut rooms = self
                    .inner
                    .conversations
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                // Bounded: a busy server forgets and re-learns.
                if rooms.len() >= 100_000 {
                    rooms.clear();
                }
                rooms.insert(message.room_id, conversation.clone());
                conversation
            }
        };
        let worth_a_look = match &conversation {
            Conversation::Room => message.body.contains('@'),
            // The other member must be able to get a push and have no tab in front of them.
            Conversation::Dm(members) => {
                let subscribers = self
                    .inner
                    .subscribers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                members.iter().any(|u| {
                    *u != message.sender_id && subscribers.contains(u) && !hub.has_visible_tab(*u)
                })
            }
        };
        if !worth_a_look {
            return Ok(());
        }
        let targets = storage
            .read_push_targets(message.room_id, message.seq, message.sender_id)
            .await?;
        // Someone with a tab in front of them sees the message there.
        let targets: Vec<_> = targets
            .into_iter()
            .filter(|t| !hub.has_visible_tab(t.user_id))
            .collect();
        if targets.is_empty() {
            return Ok(());
        }
        let sender = storage.read_user(message.sender_id).await?;
        let room = storage.read_room(message.room_id).await?;
        let who = sender.map_or_else(
            || "Someone".to_owned(),
            |u| u.display_name.as_str().to_owned(),
        );
        let title = match room.and_then(|r| r.name) {
            Some(name) => format!("{who} in {}", name.as_str()),
            None => who,
        };
        let payload = PushPayload {
            title,
            body: excerpt(message),
            room_id: Some(message.room_id),
            url: format!("/rooms/{}", message.room_id),
            tag: format!("room-{}", message.room_id),
        };
        let bytes: Arc<[u8]> = serde_json::to_vec(&payload)?.into();
        for target in targets {
            let permit = self.inner.sending.clone().acquire_owned().await?;
            let (this, storage, bytes) = (self.clone(), storage.clone(), bytes.clone());
            tokio::spawn(async move {
                match this.send(&target, &bytes).await {
                    Ok(Delivery::Gone) => {
                        if let Err(e) = storage
                            .delete_push_subscription(&target.endpoint, None)
                            .await
                        {
                            tracing::warn!(error = ?e, "removing a dead subscription failed");
                        }
                    }
                    Ok(Delivery::Accepted) => {}
                    Err(e) => tracing::warn!(error = ?e, "push delivery failed"),
                }
                drop(permit);
            });
        }
        Ok(())
    }

    /// The HTTP client, built on first use on a blocking thread (it reads and parses the
    /// system's root certificates).
    async fn http(&self) -> anyhow::Result<&reqwest::Client> {
        self.inner
            .http
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(|| {
                    reqwest::Client::builder()
                        .timeout(Duration::from_secs(10))
                        .redirect(reqwest::redirect::Policy::none())
                        .build()
                        .context("building the push HTTP client")
                })
                .await
                .context("building the push HTTP client")?
            })
            .await
    }

    /// Encrypts `payload` for `sub` and POSTs it to its push service.
    pub async fn send(
        &self,
        sub: &PushSubscriptionRecord,
        payload: &[u8],
    ) -> anyhow::Result<Delivery> {
        check_endpoint(&sub.endpoint, self.inner.allow_local).await?;
        let info = SubscriptionInfo::new(
            sub.endpoint.as_str(),
            sub.p256dh.as_str(),
            sub.auth.as_str(),
        );
        let mut signature = self.inner.vapid.clone().add_sub_info(&info);
        signature.add_claim("sub", self.inner.subject.as_str());
        let mut builder = WebPushMessageBuilder::new(&info);
        builder.set_payload(ContentEncoding::Aes128Gcm, payload);
        builder.set_vapid_signature(signature.build()?);
        builder.set_ttl(TTL_SECS);
        builder.set_urgency(Urgency::High);
        let message = builder.build()?;
        let mut request = self
            .http()
            .await?
            .post(&sub.endpoint)
            .header("TTL", message.ttl.to_string());
        if let Some(urgency) = message.urgency {
            request = request.header("Urgency", urgency.to_string());
        }
        if let Some(payload) = message.payload {
            request = request
                .header("Content-Encoding", payload.content_encoding.to_str())
                .header("Content-Type", "application/octet-stream");
            for (name, value) in payload.crypto_headers {
                request = request.header(name, value);
            }
            request = request.body(payload.content);
        }
        let status = request.send().await?.status();
        match status.as_u16() {
            200..=299 => Ok(Delivery::Accepted),
            404 | 410 => Ok(Delivery::Gone),
            other => anyhow::bail!("push service answered {other}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Accepted,
    /// The subscription no longer exists (404/410): forget it.
    Gone,
}

/// The notification text: the message's plain text, shortened; or what it carries.
fn excerpt(message: &Message) -> String {
    let text = app::markdown::plain_text(&app::markdown::nodes(
        &message.body,
        message.formatted.as_deref(),
    ));
    let text = text.trim();
    if text.is_empty() {
        return match message.attachments.as_slice() {
            [] => String::new(),
            [one] => format!("📎 {}", one.name),
            many => format!("📎 {} files", many.len()),
        };
    }
    let mut out: String = text.chars().take(160).collect();
    if text.chars().count() > 160 {
        out.push('…');
    }
    out
}

fn load_or_create_key(path: &Path) -> anyhow::Result<PartialVapidSignatureBuilder> {
    match std::fs::read_to_string(path) {
        Ok(text) => VapidSignatureBuilder::from_base64_no_sub(text.trim())
            .map_err(|e| anyhow::anyhow!("{} is not a VAPID key: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A random 256-bit scalar is a valid P-256 private key unless it is zero or above
            // the group order (probability ~2^-32): retry then.
            for _ in 0..8 {
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
                let encoded = URL_SAFE_NO_PAD.encode(secret);
                if let Ok(key) = VapidSignatureBuilder::from_base64_no_sub(&encoded) {
                    crate::auth::token::write_secret_file(path, encoded.as_bytes())?;
                    return Ok(key);
                }
            }
            anyhow::bail!("could not generate a VAPID key")
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("push endpoints must be public https URLs")]
pub struct BadEndpoint;

/// A push endpoint must be a public `https` URL (see the module comment).
async fn check_endpoint(endpoint: &str, allow_local: bool) -> Result<url::Url, BadEndpoint> {
    let url = url::Url::parse(endpoint).map_err(|_| BadEndpoint)?;
    if endpoint.len() > MAX_ENDPOINT_LEN || url.host_str().is_none() || !url.username().is_empty() {
        return Err(BadEndpoint);
    }
    if allow_local {
        return match url.scheme() {
            "https" | "http" => Ok(url),
            _ => Err(BadEndpoint),
        };
    }
    if url.scheme() != "https" {
        return Err(BadEndpoint);
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) if d != "localhost" && !d.ends_with(".localhost") => d,
        _ => return Err(BadEndpoint),
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| BadEndpoint)?;
    let mut any = false;
    for addr in addrs {
        any = true;
        if !is_public(addr.ip()) {
            return Err(BadEndpoint);
        }
    }
    if any { Ok(url) } else { Err(BadEndpoint) }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xC0) == 64)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| !is_public(IpAddr::V4(v4))))
        }
    }
}

// --- HTTP ---

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/push/key", get(public_key))
        .route("/push/subscriptions", post(subscribe))
        .route("/push/unsubscribe", post(unsubscribe))
        .route("/push/test", post(test))
}

#[derive(Serialize)]
struct KeyResponse {
    public_key: String,
}

async fn public_key(State(state): State<AppState>, _session: AuthSession) -> Json<KeyResponse> {
    Json(KeyResponse {
        public_key: state.pusher.public_key().to_owned(),
    })
}

/// The browser's `PushSubscription.toJSON()`.
#[derive(Deserialize)]
struct SubscribeRequest {
    endpoint: String,
    keys: SubscriptionKeys,
}

#[derive(Deserialize)]
struct SubscriptionKeys {
    p256dh: String,
    auth: String,
}

async fn subscribe(
    State(state): State<AppState>,
    session: AuthSession,
    ApiJson(body): ApiJson<SubscribeRequest>,
) -> Result<StatusCode, ApiError> {
    let key_ok = |s: &str, len: usize| {
        URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .is_ok_and(|k| k.len() == len)
    };
    if !key_ok(&body.keys.p256dh, 65) || !key_ok(&body.keys.auth, 16) {
        return Err(ApiError::BadRequest(
            "keys.p256dh must be a 65-byte P-256 public key and keys.auth 16 bytes, base64url."
                .into(),
        ));
    }
    check_endpoint(&body.endpoint, state.config.push_allow_local)
        .await
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;

    let record = PushSubscriptionRecord {
        user_id: session.user_id,
        endpoint: body.endpoint,
        p256dh: body.keys.p256dh,
        auth: body.keys.auth,
        created_at: clock::now_millis(),
    };
    state
        .storage
        .create_push_subscription(&record, MAX_SUBSCRIPTIONS_PER_USER)
        .await?;
    state.pusher.note_subscriber(session.user_id);
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize)]
struct UnsubscribeRequest {
    endpoint: String,
}

async fn unsubscribe(
    State(state): State<AppState>,
    session: AuthSession,
    ApiJson(body): ApiJson<UnsubscribeRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .storage
        .delete_push_subscription(&body.endpoint, Some(session.user_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct TestResponse {
    /// Subscriptions the push services accepted the test notification for.
    sent: usize,
}

/// Sends a test notification to each of the caller's subscriptions.
async fn test(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<Json<TestResponse>, ApiError> {
    let payload = PushPayload {
        title: "Natter".into(),
        body: "Notifications work on this device.".into(),
        room_id: None,
        url: "/".into(),
        tag: "test".into(),
    };
    let bytes = serde_json::to_vec(&payload).map_err(|e| ApiError::Internal(e.into()))?;
    let mut sent = 0;
    for sub in state
        .storage
        .read_push_subscriptions(session.user_id)
        .await?
    {
        match state.pusher.send(&sub, &bytes).await {
            Ok(Delivery::Accepted) => sent += 1,
            Ok(Delivery::Gone) => {
                state
                    .storage
                    .delete_push_subscription(&sub.endpoint, None)
                    .await?;
            }
            Err(e) => tracing::warn!(error = ?e, "test push failed"),
        }
    }
    Ok(Json(TestResponse { sent }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endpoints_must_be_public_https() {
        for bad in [
            "http://push.example.com/x",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://localhost/x",
            "https://user@fcm.googleapis.com/x",
            "ftp://x/y",
            "not a url",
        ] {
            assert!(check_endpoint(bad, false).await.is_err(), "{bad}");
        }
        assert!(check_endpoint("http://127.0.0.1:9/x", true).await.is_ok());
    }

    #[test]
    fn private_addresses_are_not_public() {
        for ip in [
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["142.250.74.110", "2a00:1450:4001::200e"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
