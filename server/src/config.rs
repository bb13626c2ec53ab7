//! Configuration, read once at start from `NATTER_*` environment variables.
//!
//! Every knob has a default that works for `make run` on a laptop; README.md has the table.
//! Limits live here too, so that each one is explicit, visible and settable in tests.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

#[derive(Debug, thiserror::Error)]
#[error("invalid value for {var}: {reason}")]
pub struct ConfigError {
    var: &'static str,
    reason: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen. Port 0 picks a free port (tests).
    pub addr: SocketAddr,
    /// SQLite database and secrets live here.
    pub data_dir: PathBuf,
    /// The origin browsers use to reach us; `None` derives `http://<bound address>`.
    pub public_url: Option<Url>,
    /// The built client (`shell.html`, `pkg/`).
    pub site_root: PathBuf,
    /// Peers whose `X-Forwarded-For` we believe. Empty: the header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
    pub session_ttl: Duration,
    pub limits: Limits,
    /// Test-only: serve an unauthenticated WebSocket echo at `/ws/echo` (conformance suite).
    pub ws_echo: bool,
    /// Development and tests only: accept Web Push endpoints on http and private addresses.
    pub push_allow_local: bool,
    /// The VAPID `sub` claim (a `mailto:` or `https:` contact for push services).
    pub vapid_subject: Option<String>,
}

/// Every limit a client can run into, in one place.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest JSON body accepted by the API.
    pub max_json_body_bytes: usize,
    /// Failed logins per (username, client IP) in `login_window` before 429.
    pub login_failures_per_account_ip: u32,
    /// Failed logins per username from all IPs in `login_window` before 429 for clients that
    /// never signed in to that account before.
    pub login_failures_per_account: u32,
    /// Failed logins per client IP (any usernames) in `login_window` before 429.
    pub login_failures_per_ip: u32,
    pub login_window: Duration,
    /// Accounts created per client IP per `signup_window`.
    pub signups_per_ip: u32,
    pub signup_window: Duration,
    /// Password hashes computed at once; more wait (up to `hash_queue_timeout`), so a login
    /// storm cannot occupy every thread of the blocking pool.
    pub hash_concurrency: usize,
    pub hash_queue_timeout: Duration,
    /// Largest WebSocket message (and frame) accepted; above it the socket is closed with 1009.
    pub ws_max_message_bytes: usize,
    /// Open WebSockets per user (tabs, devices, bots); more get 429 on upgrade.
    pub ws_per_user: usize,
    /// Open WebSockets in all; more get 503 on upgrade.
    pub ws_total: usize,
    /// Frames queued for one connection; a client that lets it fill is disconnected (4008).
    pub ws_outbox_frames: usize,
    /// Client frames per second per connection, sustained, and the burst allowed above that.
    /// A flood gets an error frame, then close 1008.
    pub ws_frames_per_sec: u32,
    pub ws_burst: u32,
    /// How often the server pings each socket, and how long a peer that answers nothing
    /// (no pong, no frame) is kept before it is dropped (and goes offline).
    pub ws_ping_every: Duration,
    pub ws_dead_after: Duration,
    /// A new socket must send `hello` within this; otherwise it is closed (4002).
    pub ws_hello_within: Duration,
    /// Messages one user may post over HTTP (`POST /api/rooms/{id}/messages`) per minute;
    /// WebSocket sends have their own per-socket limit.
    pub http_posts_per_minute: u32,
    /// Rooms one user may create per hour.
    pub rooms_per_hour: u32,
    /// Largest file one upload may be; larger ones get 413 (before the body is read when
    /// `Content-Length` says so).
    pub upload_max_bytes: u64,
    /// Bytes of files (and thumbnails) one user may keep; over it, uploads get 413.
    pub upload_quota_bytes: u64,
    /// Largest image accepted, in pixels (width × height), checked from the header before
    /// decoding.
    pub image_max_pixels: u64,
    /// Most frames an animated image may have.
    pub image_max_frames: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_json_body_bytes: 16 * 1024,
            login_failures_per_account_ip: 5,
            login_failures_per_account: 20,
            login_failures_per_ip: 30,
            login_window: Duration::from_secs(15 * 60),
            signups_per_ip: 30,
            signup_window: Duration::from_secs(60 * 60),
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            hash_queue_timeout: Duration::from_secs(10),
            ws_max_message_bytes: 64 * 1024,
            ws_per_user: 16,
            ws_total: 10_000,
            ws_outbox_frames: 1024,
            ws_frames_per_sec: 10,
            ws_burst: 40,
            ws_ping_every: Duration::from_secs(20),
            ws_dead_after: Duration::from_secs(50),
            ws_hello_within: Duration::from_secs(10),
            http_posts_per_minute: 300,
            rooms_per_hour: 30,
            upload_max_bytes: 25 * 1024 * 1024,
            upload_quota_bytes: 1024 * 1024 * 1024,
            image_max_pixels: 40_000_000,
            image_max_frames: 500,
        }
    }
}

impl Config {
    /// Defaults for everything: `127.0.0.1:3000`, `./data`, `target/site`.
    pub fn with_defaults() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: PathBuf::from("data"),
            public_url: None,
            site_root: PathBuf::from("target/site"),
            trusted_proxies: Vec::new(),
            session_ttl: Duration::from_secs(30 * 24 * 60 * 60),
            limits: Limits::default(),
            ws_echo: false,
            push_allow_local: false,
            vapid_subject: None,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup` (the environment in production, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut c = Self::with_defaults();
        // cargo-leptos tells the server where to listen and where the site is with these.
        if let Some(v) = lookup("NATTER_ADDR").or_else(|| lookup("LEPTOS_SITE_ADDR")) {
            c.addr = parse("NATTER_ADDR", &v)?;
        }
        if let Some(v) = lookup("NATTER_DATA_DIR") {
            c.data_dir = PathBuf::from(v);
        }
        if let Some(v) = lookup("NATTER_PUBLIC_URL") {
            let url = Url::parse(&v).map_err(|e| err("NATTER_PUBLIC_URL", e))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(err(
                    "NATTER_PUBLIC_URL",
                    "must be an http(s) URL with a host",
                ));
            }
            c.public_url = Some(url);
        }
        if let Some(v) = lookup("NATTER_SITE_ROOT").or_else(|| lookup("LEPTOS_SITE_ROOT")) {
            c.site_root = PathBuf::from(v);
        }
        if let Some(v) = lookup("NATTER_TRUSTED_PROXIES") {
            c.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| parse("NATTER_TRUSTED_PROXIES", s))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = lookup("NATTER_SESSION_TTL_SECS") {
            c.session_ttl = Duration::from_secs(parse("NATTER_SESSION_TTL_SECS", &v)?);
        }
        c.ws_echo = lookup("NATTER_WS_ECHO").is_some_and(|v| v == "1");
        c.push_allow_local = lookup("NATTER_PUSH_ALLOW_LOCAL").is_some_and(|v| v == "1");
        if let Some(v) = lookup("NATTER_VAPID_SUBJECT") {
            if !(v.starts_with("mailto:") || v.starts_with("https://")) {
                return Err(err(
                    "NATTER_VAPID_SUBJECT",
                    "must start with mailto: or https://",
                ));
            }
            c.vapid_subject = Some(v);
        }
        let l = &mut c.limits;
        if let Some(v) = lookup("NATTER_LOGIN_FAILURES_PER_ACCOUNT_IP") {
            l.login_failures_per_account_ip = parse("NATTER_LOGIN_FAILURES_PER_ACCOUNT_IP", &v)?;
        }
        if let Some(v) = lookup("NATTER_LOGIN_FAILURES_PER_ACCOUNT") {
            l.login_failures_per_account = parse("NATTER_LOGIN_FAILURES_PER_ACCOUNT", &v)?;
        }
        if let Some(v) = lookup("NATTER_LOGIN_FAILURES_PER_IP") {
            l.login_failures_per_ip = parse("NATTER_LOGIN_FAILURES_PER_IP", &v)?;
        }
        if let Some(v) = lookup("NATTER_LOGIN_WINDOW_SECS") {
            l.login_window = Duration::from_secs(parse("NATTER_LOGIN_WINDOW_SECS", &v)?);
        }
        if let Some(v) = lookup("NATTER_WS_PER_USER") {
            l.ws_per_user = parse("NATTER_WS_PER_USER", &v)?;
        }
        if let Some(v) = lookup("NATTER_WS_MAX_CONNECTIONS") {
            l.ws_total = parse("NATTER_WS_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = lookup("NATTER_WS_FRAMES_PER_SEC") {
            l.ws_frames_per_sec = parse("NATTER_WS_FRAMES_PER_SEC", &v)?;
        }
        if let Some(v) = lookup("NATTER_WS_BURST") {
            l.ws_burst = parse("NATTER_WS_BURST", &v)?;
        }
        if let Some(v) = lookup("NATTER_HTTP_POSTS_PER_MINUTE") {
            l.http_posts_per_minute = parse("NATTER_HTTP_POSTS_PER_MINUTE", &v)?;
        }
        if let Some(v) = lookup("NATTER_ROOMS_PER_HOUR") {
            l.rooms_per_hour = parse("NATTER_ROOMS_PER_HOUR", &v)?;
        }
        if let Some(v) = lookup("NATTER_UPLOAD_MAX_BYTES") {
            l.upload_max_bytes = parse("NATTER_UPLOAD_MAX_BYTES", &v)?;
        }
        if let Some(v) = lookup("NATTER_UPLOAD_QUOTA_BYTES") {
            l.upload_quota_bytes = parse("NATTER_UPLOAD_QUOTA_BYTES", &v)?;
        }
        if let Some(v) = lookup("NATTER_SIGNUPS_PER_IP_PER_HOUR") {
            l.signups_per_ip = parse("NATTER_SIGNUPS_PER_IP_PER_HOUR", &v)?;
        }
        Ok(c)
    }
}

fn parse<T: std::str::FromStr>(var: &'static str, v: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    v.trim().parse().map_err(|e| err(var, e))
}

fn err(var: &'static str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError {
        var,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_configuration() {
        let c = from(&[]).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert!(c.public_url.is_none());
        assert!(c.trusted_proxies.is_empty());
    }

    #[test]
    fn variables_override_defaults() {
        let c = from(&[
            ("NATTER_ADDR", "0.0.0.0:8080"),
            ("NATTER_PUBLIC_URL", "https://chat.example.org"),
            ("NATTER_TRUSTED_PROXIES", "127.0.0.1, ::1"),
            ("NATTER_LOGIN_FAILURES_PER_IP", "7"),
        ])
        .unwrap();
        assert_eq!(c.addr.port(), 8080);
        assert_eq!(c.public_url.unwrap().scheme(), "https");
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.limits.login_failures_per_ip, 7);
    }

    #[test]
    fn bad_values_are_reported_with_the_variable_name() {
        let e = from(&[("NATTER_ADDR", "nonsense")]).unwrap_err();
        assert!(e.to_string().contains("NATTER_ADDR"));
        assert!(from(&[("NATTER_PUBLIC_URL", "ftp://x")]).is_err());
    }
}
