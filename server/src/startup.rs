//! Building and running the server: open storage, load secrets, bind, serve until told to stop.
//!
//! `Application::build` binds before returning, so a caller (main, or a test on port 0) knows
//! the real address before serving starts.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::password::Hasher;
use crate::auth::throttle::Throttle;
use crate::auth::token::TokenKeys;
use crate::clock;
use crate::config::Config;
use crate::media::MediaStore;
use crate::push::Pusher;
use crate::realtime::hub::{Cursor, Hub};
use crate::realtime::writer::MessageWriter;
use crate::state::{AppState, Origins};
use crate::storage::{SqliteStorage, Storage};

/// glibc's malloc: at most this many arenas (its default is 8 per core).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: libc::c_int = 2;

/// Caps glibc's malloc at [`MALLOC_ARENAS`] arenas; call before any thread starts. Returns
/// whether the setting took (always false off glibc, where there is nothing to set).
///
/// Each thread that allocates while the others hold their arenas gets a new one, and memory
/// freed in one arena is not reused by another: with the runtime's workers, the blocking pool,
/// the message writer and the hashing threads, RSS kept creeping up while the live heap stayed
/// flat (S3 at 1 msg/s: +5 to +8 MiB in 30 s; with 2 arenas +1 to +3 MiB, and ~5 MiB less in
/// all; S1 and S2 unchanged; docs/perf.md, fourth round).
pub fn limit_malloc_arenas() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only sets a tunable of the allocator; it takes no pointers.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// How often ended sessions are swept, and how long they are kept after ending (the sessions
/// table also tells login throttling where an owner signed in from).
const SESSION_SWEEP_EVERY: Duration = Duration::from_secs(60 * 60);
const SESSION_KEEP_AFTER_END_MS: i64 = 90 * 24 * 60 * 60 * 1000;

pub struct Application {
    listener: TcpListener,
    state: AppState,
    local_addr: SocketAddr,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        create_private_dir(&config.data_dir)?;
        let storage = SqliteStorage::open(&config.data_dir)
            .await
            .with_context(|| format!("opening the database in {}", config.data_dir.display()))?;
        let tokens = TokenKeys::load_or_create(&config.data_dir)?;
        let media = MediaStore::open(&config.data_dir).context("opening the media directory")?;
        let hasher = Hasher::new(
            config.limits.hash_concurrency,
            config.limits.hash_queue_timeout,
        )?;
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("binding {}", config.addr))?;
        let local_addr = listener.local_addr()?;
        let origins = Origins::new(config.public_url.as_ref(), local_addr);
        let storage: Arc<dyn Storage> = Arc::new(storage);
        let hub = Arc::new(Hub::new(
            storage
                .read_room_cursors()
                .await?
                .into_iter()
                .map(|(room, seq, rev)| (room, Cursor { seq, rev })),
        ));
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let subject = config.vapid_subject.clone().unwrap_or_else(|| {
            if origins.public.starts_with("https://") {
                origins.public.clone()
            } else {
                "mailto:admin@localhost".to_owned()
            }
        });
        let pusher = Pusher::start(
            &config.data_dir,
            subject,
            config.push_allow_local,
            storage.clone(),
            hub.clone(),
            &tasks,
            shutdown.clone(),
        )?;
        let writer = MessageWriter::spawn(
            storage.clone(),
            hub.clone(),
            pusher.clone(),
            &tasks,
            shutdown.clone(),
        );
        let state = AppState {
            config: Arc::new(config),
            storage,
            tokens: Arc::new(tokens),
            hasher: Arc::new(hasher),
            throttle: Arc::new(Throttle::default()),
            origins: Arc::new(origins),
            hub,
            last_seen: Arc::default(),
            writer,
            media: Arc::new(media),
            pusher,
            shutdown,
            tasks,
        };
        Ok(Self {
            listener,
            state,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The origin the server trusts and advertises, e.g. `http://127.0.0.1:3000`.
    pub fn public_origin(&self) -> &str {
        &self.state.origins.public
    }

    /// Serves until `stop` completes, then lets in-flight requests and background tasks finish.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener, state, ..
        } = self;
        let shutdown = state.shutdown.clone();
        let tasks = state.tasks.clone();
        let storage = state.storage.clone();
        tasks.spawn(sweep(state.clone(), shutdown.clone()));
        tasks.spawn(state.hub.clone().run_flusher(shutdown.clone()));
        let last_seen = state.last_seen.clone();
        tasks.spawn(last_seen.clone().run(storage.clone(), shutdown.clone()));
        let app = crate::web::router(state);
        let listener = listener.tap_io(|tcp| {
            // Chat frames are small and latency-sensitive; Nagle would hold them back.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let token = shutdown.clone();
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            tokio::select! {
                () = stop => {}
                () = token.cancelled() => {}
            }
            // WebSockets are not requests axum waits for: tell them to close (1001) now.
            token.cancel();
        })
        .await
        .context("serving")?;
        shutdown.cancel();
        tasks.close();
        tasks.wait().await;
        // Every socket has ended: write when their users were last seen, in one go.
        last_seen.flush(storage.as_ref()).await;
        // Nothing writes any more: leave the database clean for the next start.
        storage.close().await;
        Ok(())
    }
}

/// Housekeeping: ended sessions, and uploads no message used.
async fn sweep(state: AppState, shutdown: CancellationToken) {
    let storage = state.storage.clone();
    let mut every = tokio::time::interval(SESSION_SWEEP_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let before = clock::now_millis().saturating_sub(SESSION_KEEP_AFTER_END_MS);
        match storage.delete_sessions_ended_before(before).await {
            Ok(n) if n > 0 => tracing::info!(sessions = n, "swept ended sessions"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = ?e, "session sweep failed"),
        }
        crate::media::sweep_unused(&state).await;
    }
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating data dir {}", dir.display()))
}

#[cfg(test)]
mod tests {
    /// The cap is a setting glibc accepts (what it does to RSS is measured by the benchmark).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_takes_the_arena_cap() {
        assert!(super::limit_malloc_arenas());
    }
}
