//! The daemon: the web server, the inbound mail listener, the scheduler and
//! the delivery workers in one tokio runtime, stopped together and
//! gracefully on SIGTERM/SIGINT.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::{Config, ConfigError};
use crate::delivery::supervisor::Supervisor;
use crate::delivery::{Sending, SetupError};
use crate::error::StoreError;
use crate::feedback::EventSource;
use crate::inbound::Handler;
use crate::inbound::listener::{BindError, Listener};
use crate::inbound::mailbox::{MAILBOX_TICK, Mailbox, MailboxError};
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

impl From<SetupError> for ServeError {
    fn from(e: SetupError) -> Self {
        if e.is_bad_input() {
            ServeError::Config(e.to_string())
        } else {
            ServeError::Runtime(e.to_string())
        }
    }
}

impl From<BindError> for ServeError {
    fn from(e: BindError) -> Self {
        ServeError::Runtime(e.to_string())
    }
}

impl From<MailboxError> for ServeError {
    fn from(e: MailboxError) -> Self {
        if e.is_bad_input() {
            ServeError::Config(e.to_string())
        } else {
            ServeError::Runtime(e.to_string())
        }
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
    let sending = Sending::new(Arc::clone(&config))?;
    let store = crate::store::connect(config.database_url.expose(), &config.pool_options()).await?;
    tracing::info!(
        backend = store.backend().name(),
        database = %config.database_url.location(),
        "database ready"
    );

    let app = Application::build(Context {
        store: Arc::clone(&store),
        config: Arc::clone(&config),
        templates: Arc::clone(&sending.templates),
        transport: Arc::clone(&sending.transport),
    })
    .await?;
    tracing::info!(
        address = %app.local_addr(),
        public_url = %config.public_url,
        max_connections = app.max_connections(),
        "web pages listening"
    );
    match (app.admin_addr(), config.admin_addr) {
        (Some(address), _) => tracing::info!(%address, "web admin listening at /admin"),
        (None, crate::config::AdminAddr::Public) => {
            tracing::info!("web admin at /admin on the public listener (NECMAIL_ADMIN_ADDR=public)")
        }
        (None, _) => tracing::info!("no web admin (NECMAIL_ADMIN_ADDR=off)"),
    }
    match app.metrics_addr() {
        Some(address) => tracing::info!(%address, "metrics listening at /metrics"),
        None => tracing::info!("no metrics listener (NECMAIL_METRICS_ADDR=off)"),
    }
    let inbound = match config.inbound_addr {
        Some(addr) => {
            let handler = Handler::new(Arc::clone(&store), &sending, EventSource::Email);
            let listener = Listener::bind(addr, handler, &config).await?;
            tracing::info!(
                address = %listener.local_addr(),
                domain = config.from.domain(),
                "inbound SMTP and LMTP listening"
            );
            Some(listener)
        }
        None => {
            tracing::info!("no inbound listener (NECMAIL_INBOUND_ADDR=off)");
            None
        }
    };
    let engine = Arc::new(sending.engine(&store));
    tracing::info!(
        transport = %sending.transport.describe(),
        connections = config.smtp_connections,
        worker = engine.worker(),
        worker_threads = tokio::runtime::Handle::current().metrics().num_workers(),
        "delivery workers running"
    );
    let supervisor = Supervisor::new(Arc::clone(&store) as _, engine);
    let mut scheduler =
        Scheduler::new(Arc::clone(&store), &sending).wake_on_start(supervisor.waker());
    match config.bounce_mailbox {
        Some(_) => {
            let handler = Handler::new(Arc::clone(&store), &sending, EventSource::Mailbox);
            let mailbox = Mailbox::new(handler, &config)?;
            tracing::info!(
                mailbox = %mailbox.describe(),
                schedule = %config.bounce_poll_schedule,
                "bounce mailbox polled"
            );
            scheduler = scheduler.with_job(
                MAILBOX_TICK,
                &config.bounce_poll_schedule,
                Box::new(mailbox),
            );
        }
        None => tracing::info!("no bounce mailbox (NECMAIL_BOUNCE_MAILBOX is unset)"),
    }
    tracing::info!(schedules = %scheduler.describe(), "scheduler running");

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut web_stop = stop_rx.clone();
    let web = tokio::spawn(app.run_until_stopped(async move {
        let _ = web_stop.wait_for(|stop| *stop).await;
    }));
    let inbound = inbound.map(|listener| tokio::spawn(listener.run(stop_rx.clone())));
    let scheduler = tokio::spawn(scheduler.run(stop_rx.clone()));
    let delivery = tokio::spawn(supervisor.run(stop_rx));

    shutdown.await;
    tracing::info!("shutting down: finishing requests and messages in flight");
    let _ = stop_tx.send(true);
    let web = web.await;
    if let Some(inbound) = inbound {
        let _ = inbound.await;
    }
    let _ = scheduler.await;
    let _ = delivery.await;
    store.close().await;
    tracing::info!("stopped");
    web.map_err(|e| ServeError::Runtime(format!("the web server failed: {e}")))
}
