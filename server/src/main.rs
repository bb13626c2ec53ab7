//! `natter`: read the configuration from the environment, start, serve until SIGINT/SIGTERM.

use anyhow::Context;
use server::config::Config;
use server::startup::Application;

fn main() -> anyhow::Result<()> {
    // Before the runtime starts its threads: glibc gives each new thread's allocations an arena
    // of their own unless told otherwise.
    server::startup::limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    server::telemetry::init();
    let config = Config::from_env().context("configuration")?;
    let data_dir = config.data_dir.clone();
    let app = Application::build(config).await?;
    tracing::info!(
        data_dir = %data_dir.display(),
        "Natter is listening on {} (bound to {})",
        app.public_origin(),
        app.local_addr()
    );
    app.run_until_stopped(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
