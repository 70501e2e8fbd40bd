//! The web pages `necmail serve` answers: subscribe, confirm, unsubscribe
//! (with RFC 8058 one-click), preferences, the archive, and operations.
//!
//! Every page is a Tera template under `pages/` (built in, overridable from
//! NECMAIL_TEMPLATES_DIR), with no JavaScript and one stylesheet. A GET never
//! changes anything: mail scanners fetch links. Every change is a POST
//! carrying a stateless CSRF token (see [`protect`]), except the RFC 8058
//! one-click unsubscribe, which mail providers send without one.
//!
//! Routes:
//! - `GET /subscribe`, `POST /subscribe` (a form, or JSON from the origins in
//!   NECMAIL_ALLOWED_ORIGINS), `OPTIONS /subscribe` (CORS preflight)
//! - `GET|POST /confirm/{token}`
//! - `GET|POST /u/{token}` (POST `List-Unsubscribe=One-Click` is RFC 8058)
//! - `GET|POST /p/{token}`, `POST /p/{token}/leave`, `POST /p/{token}/data`,
//!   `GET|POST /p/{token}/erase`, `POST /p/{token}/renew` (an expired link
//!   asks for a fresh one by email)
//! - `GET /archive`, `GET /archive/feed.xml`, `GET /archive/{slug}`
//! - `GET /healthz`, `GET /metrics`, `GET /static/style.css`

mod archive;
mod ops;
mod pages;
mod preferences;
mod protect;
pub(crate) mod store;
mod subscribe;
mod unsubscribe;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Redirect;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::delivery::Transport;
use crate::render::Templates;
use crate::store::Store;
use crate::tokens::Signer;

pub(crate) use store::impl_site_store;
pub use store::{ArchiveEntry, SiteCounts, SiteStore};

/// The largest request body any page accepts.
const BODY_LIMIT: usize = 16 * 1024;
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the web server needs from the daemon.
pub struct Context {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub templates: Arc<Templates>,
    pub transport: Arc<dyn Transport>,
}

/// Why the web server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(
        "cannot listen on {addr} (NECMAIL_HTTP_ADDR): {source}; is another program, or another necmail, using that port?"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the web server failed: {0}")]
    Serve(std::io::Error),
}

/// The state every handler shares.
pub(crate) struct AppState {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    templates: Arc<Templates>,
    transport: Arc<dyn Transport>,
    signer: Signer,
    /// The sender's name, shown in every page's header.
    site_name: String,
    subscribe_limit: protect::RateLimiter,
    archive: archive::WebVersions,
    one_click: unsubscribe::OneClickWriter,
}

type Shared = Arc<AppState>;

/// The web server, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
}

impl Application {
    /// Binds config.http_addr (port 0 allowed). A taken port is
    /// [`WebError::Bind`] with a clear sentence naming the address.
    pub async fn build(ctx: Context) -> Result<Application, WebError> {
        let addr = ctx.config.http_addr;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| WebError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| WebError::Bind { addr, source })?;
        let state = Arc::new(AppState {
            signer: ctx.config.signer(),
            site_name: ctx
                .config
                .from
                .name
                .clone()
                .unwrap_or_else(|| "NEC reports".to_owned()),
            subscribe_limit: protect::RateLimiter::per_hour(ctx.config.subscribe_per_ip_per_hour),
            archive: archive::WebVersions::default(),
            one_click: unsubscribe::OneClickWriter::start(Arc::clone(&ctx.store)),
            store: ctx.store,
            config: ctx.config,
            templates: ctx.templates,
            transport: ctx.transport,
        });
        Ok(Application {
            listener,
            addr,
            router: router(state),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), WebError> {
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(WebError::Serve)
    }
}

fn router(state: Shared) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request| {
        // The route, never the path: paths carry tokens.
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        tracing::info_span!("http", method = %request.method(), route)
    });
    Router::new()
        .route("/", get(|| async { Redirect::to("/subscribe") }))
        .route(
            "/subscribe",
            get(subscribe::form)
                .post(subscribe::submit)
                .options(subscribe::preflight),
        )
        .route(
            "/confirm/{token}",
            get(subscribe::confirm_page).post(subscribe::confirm),
        )
        .route(
            "/u/{token}",
            get(unsubscribe::show).post(unsubscribe::submit),
        )
        .route("/p/{token}", get(preferences::show).post(preferences::save))
        .route("/p/{token}/leave", post(preferences::leave))
        .route("/p/{token}/data", post(preferences::download))
        .route("/p/{token}/renew", post(preferences::renew))
        .route(
            "/p/{token}/erase",
            get(preferences::erase_page).post(preferences::erase),
        )
        .route("/archive", get(archive::index))
        .route("/archive/feed.xml", get(archive::feed))
        .route("/archive/{slug}", get(archive::web_version))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/static/style.css", get(ops::stylesheet))
        .fallback(|| async { pages::PageError::NotFound })
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(from_fn_with_state(state.clone(), pages::friendly_errors))
        .layer(from_fn(protect::security_headers))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(trace)
        .with_state(state)
}

/// Sends the email made of the templates `email/{name}.subject.tera`,
/// `.txt.tera` and `.html.tera`, rendered with `ctx` and the site's name.
pub(crate) async fn mail(
    state: &AppState,
    to: &crate::subscribers::SubscriberEmail,
    name: &str,
    mut ctx: tera::Context,
) -> anyhow::Result<()> {
    ctx.insert("site_name", &state.site_name);
    let render = |part: &str| {
        state
            .templates
            .render(&format!("email/{name}.{part}.tera"), &ctx)
    };
    let subject = render("subject")?;
    let text = render("txt")?;
    let html = render("html")?;
    crate::delivery::notice::send_notice(
        &*state.transport,
        &state.config,
        &crate::delivery::notice::Notice {
            to: to.as_str(),
            to_name: None,
            subject: subject.trim(),
            text: &text,
            html: Some(&html),
        },
    )
    .await?;
    Ok(())
}

/// The subscriber id of a token's first value, as stored.
fn id_of(value: u64) -> Option<i64> {
    i64::try_from(value).ok()
}

/// A form-urlencoded body's fields, in order; a checkbox group repeats its name.
pub(crate) struct FormData(Vec<(String, String)>);

impl FormData {
    fn parse(body: &[u8]) -> Self {
        FormData(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}
