//! The daemon: the web server, the scheduler and the delivery workers in
//! one tokio runtime, stopped together and gracefully on SIGTERM/SIGINT.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::{Config, ConfigError};
use crate::delivery::dkim::DkimSigner;
use crate::delivery::engine::Engine;
use crate::delivery::supervisor::Supervisor;
use crate::error::StoreError;
use crate::render::Templates;
use crate::scheduler::Scheduler;
use crate::web::{Application, Context, WebError};

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration or the templates cannot be used: fix them and retry.
    #[error("{0}")]
    Config(String),
    /// The database, the network or the transport failed.
    #[error("{0}")]
    Runtime(String),
}

impl From<ConfigError> for ServeError {
    fn from(e: ConfigError) -> Self {
        ServeError::Config(e.to_string())
    }
}

impl From<StoreError> for ServeError {
    fn from(e: StoreError) -> Self {
        ServeError::Runtime(e.to_string())
    }
}

impl From<WebError> for ServeError {
    fn from(e: WebError) -> Self {
        ServeError::Runtime(e.to_string())
    }
}

/// Starts every part, logs one line for each, and runs until `shutdown`
/// resolves; then stops taking work, lets in-flight requests and SMTP
/// transactions finish, and returns.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    config.check_for_sending()?;
    let config = Arc::new(config);
    let templates = Arc::new(
        Templates::load(config.templates_dir.as_deref())
            .map_err(|e| ServeError::Config(e.to_string()))?,
    );
    let dkim = config
        .dkim()
        .map(|settings| DkimSigner::load(&settings).map(Arc::new))
        .transpose()
        .map_err(|e| ServeError::Config(e.to_string()))?;
    let store = crate::store::connect(config.database_url.expose(), &config.pool_options()).await?;
    tracing::info!(
        backend = store.backend().name(),
        url = %config.database_url,
        "database ready"
    );
    let transport: Arc<dyn crate::delivery::Transport> = Arc::from(
        crate::delivery::transport(&config).map_err(|e| ServeError::Runtime(e.to_string()))?,
    );

    let app = Application::build(Context {
        store: Arc::clone(&store),
        config: Arc::clone(&config),
        templates: Arc::clone(&templates),
        transport: Arc::clone(&transport),
    })
    .await?;
    tracing::info!(
        address = %app.local_addr(),
        public_url = %config.public_url,
        max_connections = app.max_connections(),
        "web pages listening"
    );
    match app.metrics_addr() {
        Some(address) => tracing::info!(%address, "metrics listening at /metrics"),
        None => tracing::info!("no metrics listener (NECMAIL_METRICS_ADDR=off)"),
    }
    let scheduler = Scheduler::new(
        Arc::clone(&store),
        Arc::clone(&config),
        Arc::clone(&templates),
        Arc::clone(&transport),
    );
    tracing::info!(schedules = %scheduler.describe(), "scheduler running");
    let engine = Arc::new(Engine::new(
        Arc::clone(&store),
        Arc::clone(&transport),
        Arc::clone(&config),
        Arc::clone(&templates),
        dkim,
    ));
    tracing::info!(
        transport = %transport.describe(),
        connections = config.smtp_connections,
        worker = engine.worker(),
        "delivery workers running"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut web_stop = stop_rx.clone();
    let web = tokio::spawn(app.run_until_stopped(async move {
        let _ = web_stop.wait_for(|stop| *stop).await;
    }));
    let scheduler = tokio::spawn(scheduler.run(stop_rx.clone()));
    let delivery = tokio::spawn(Supervisor::new(Arc::clone(&store), engine).run(stop_rx));

    shutdown.await;
    tracing::info!("shutting down: finishing requests and messages in flight");
    let _ = stop_tx.send(true);
    let web = web.await;
    let _ = scheduler.await;
    let _ = delivery.await;
    store.close().await;
    tracing::info!("stopped");
    web.map_err(|e| ServeError::Runtime(format!("the web server failed: {e}")))
}
