//! `AppState`: everything a handler may need, cheap to clone (all `Arc`s).

use std::net::SocketAddr;
use std::sync::Arc;

use url::Url;

use crate::auth::password::Hasher;
use crate::auth::throttle::Throttle;
use crate::auth::token::TokenKeys;
use crate::config::Config;
use crate::media::MediaStore;
use crate::realtime::hub::Hub;
use crate::realtime::last_seen::LastSeen;
use crate::realtime::writer::MessageWriter;
use crate::storage::Storage;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub storage: Arc<dyn Storage>,
    pub tokens: Arc<TokenKeys>,
    pub hasher: Arc<Hasher>,
    pub throttle: Arc<Throttle>,
    pub origins: Arc<Origins>,
    pub hub: Arc<Hub>,
    /// When users went offline, not yet written to storage.
    pub last_seen: Arc<LastSeen>,
    pub writer: MessageWriter,
    /// Uploaded files on disk.
    pub media: Arc<MediaStore>,
    /// Web Push (VAPID key, delivery task).
    pub pusher: crate::push::Pusher,
    /// Cancelled when the server stops: every WebSocket closes with 1001.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Every WebSocket and background task, so shutdown can wait for them.
    pub tasks: tokio_util::task::TaskTracker,
}

/// The origins browsers may send state-changing requests from, and whether cookies are Secure.
#[derive(Debug, Clone)]
pub struct Origins {
    /// What we call ourselves, e.g. `https://chat.example.org`.
    pub public: String,
    allowed: Vec<String>,
    pub secure_cookies: bool,
}

impl Origins {
    /// From `NATTER_PUBLIC_URL` when set. Otherwise `http://<bound address>`, and, when bound to
    /// a loopback or wildcard address, the usual loopback spellings on the same port, so that
    /// `make run` works whether the browser is pointed at `localhost` or `127.0.0.1`.
    pub fn new(public_url: Option<&Url>, bound: SocketAddr) -> Self {
        if let Some(url) = public_url {
            let public = url.origin().ascii_serialization();
            return Self {
                allowed: vec![public.clone()],
                public,
                secure_cookies: url.scheme() == "https",
            };
        }
        let port = bound.port();
        let ip = bound.ip();
        let public = if ip.is_unspecified() {
            format!("http://localhost:{port}")
        } else {
            format!("http://{bound}")
        };
        let mut allowed = vec![public.clone()];
        if ip.is_loopback() || ip.is_unspecified() {
            for host in ["localhost", "127.0.0.1", "[::1]"] {
                let o = format!("http://{host}:{port}");
                if !allowed.contains(&o) {
                    allowed.push(o);
                }
            }
        }
        Self {
            public,
            allowed,
            secure_cookies: false,
        }
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_public_url_is_the_only_allowed_origin() {
        let url = Url::parse("https://chat.example.org/some/path").unwrap();
        let o = Origins::new(Some(&url), "127.0.0.1:3000".parse().unwrap());
        assert_eq!(o.public, "https://chat.example.org");
        assert!(o.allows("https://chat.example.org"));
        assert!(!o.allows("http://chat.example.org"));
        assert!(!o.allows("http://127.0.0.1:3000"));
        assert!(o.secure_cookies);
    }

    #[test]
    fn the_default_accepts_loopback_spellings_on_the_bound_port() {
        let o = Origins::new(None, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(o.public, "http://127.0.0.1:3000");
        assert!(o.allows("http://localhost:3000"));
        assert!(!o.allows("http://localhost:3001"));
        assert!(!o.allows("http://evil.example"));
        assert!(!o.secure_cookies);
    }
}
