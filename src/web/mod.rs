//! The web pages `necmail serve` answers: subscribe, confirm, unsubscribe
//! (with RFC 8058 one-click), preferences, the archive, and operations.
//!
//! Every page is a Tera template under `pages/` (built in, overridable from
//! NECMAIL_TEMPLATES_DIR), with no JavaScript and one stylesheet. A GET never
//! changes anything: mail scanners fetch links. Every change is a POST
//! carrying a stateless CSRF token (see `protect.rs`), except the RFC 8058
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
//! - `GET /media/{name}`: the images of reports
//! - `GET /healthz` (`ok`, or 503 with nothing more), `GET /static/style.css`
//!
//! Prometheus metrics, `GET /metrics`, are served on a listener of their own
//! (NECMAIL_METRICS_ADDR, loopback by default), never on the public pages:
//! they name the lists and count their subscribers. How connections are
//! taken and how slow clients are cut off is in `listener.rs`.

mod admin;
mod archive;
mod listener;
mod media;
mod ops;
mod pages;
mod preferences;
mod protect;
mod spool;
mod subscribe;
mod unsubscribe;

pub(crate) use subscribe::CONFIRM_LIFETIME_DAYS;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::admin::AdminStore;
use crate::admin::throttle::Throttle;
use crate::campaigns::{CampaignStore, TotalsStore};
use crate::config::{AdminAddr, Config};
use crate::delivery::Transport;
use crate::feedback::{EventKind, EventSource, FeedbackStore, NewEvent};
use crate::health::HealthCheck;
use crate::lists::ListStore;
use crate::meetings::MeetingStore;
use crate::render::Templates;
use crate::reports::{ArchiveStore, ReportStore, SourceStore};
use crate::schedule::ScheduleStore;
use crate::store::Store;
use crate::subscribers::{
    ImportJobStore, ROLES, SelfServiceStore, SubscriberEmail, SubscriberStore,
};
use crate::tokens::Signer;

/// The largest request body any public page accepts.
const BODY_LIMIT: usize = 16 * 1024;
/// The largest request body an admin page accepts: a pasted report.
const ADMIN_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections the admin's own listener serves at once.
const ADMIN_CONNECTIONS: usize = 64;
/// Connections the metrics listener serves at once.
const METRICS_CONNECTIONS: usize = 16;
/// How often refused sign-ups are logged at most (as one summary line).
const REFUSALS_LOGGED_EVERY: Duration = Duration::from_secs(60);

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
    #[error(
        "cannot listen on {addr} (NECMAIL_ADMIN_ADDR): {source}; is another program, or another necmail, using that port? off turns the web admin off"
    )]
    AdminBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "cannot listen on {addr} (NECMAIL_METRICS_ADDR): {source}; is another program, or another necmail, using that port? off turns the metrics listener off"
    )]
    MetricsBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The state every handler shares. Of the store, the pages use only these
/// interfaces.
pub(crate) struct AppState {
    lists: Arc<dyn ListStore>,
    /// Sign-ups, confirmations, unsubscribes and preferences.
    people: Arc<dyn SelfServiceStore>,
    /// Erasure from the preferences page.
    subscribers: Arc<dyn SubscriberStore>,
    archived: Arc<dyn ArchiveStore>,
    /// Any report, sent or not, for a test message's preview links.
    reports: Arc<dyn ReportStore>,
    totals: Arc<dyn TotalsStore>,
    ticks: Arc<dyn ScheduleStore>,
    health: Arc<dyn HealthCheck>,
    /// The web admin's accounts, sessions and audit log.
    admin: Arc<dyn AdminStore>,
    /// Growing delays after failed admin sign-ins.
    throttle: Throttle,
    /// For the admin's dashboard.
    campaigns: Arc<dyn CampaignStore>,
    /// The admin's suppressions, bounces and events.
    feedback: Arc<dyn FeedbackStore>,
    /// The admin's CSV uploads, being imported or done.
    import_jobs: Arc<dyn ImportJobStore>,
    /// This process's part in running them.
    imports: admin::ImportJobs,
    meetings: Arc<dyn MeetingStore>,
    sources: Arc<dyn SourceStore>,
    /// The admin's feed sources: added (sources and lists) and polled as the
    /// scheduler polls them (reports, sources and campaigns), which need
    /// several of the store's interfaces at once.
    feeds: Arc<dyn Store>,
    config: Arc<Config>,
    templates: Arc<Templates>,
    transport: Arc<dyn Transport>,
    signer: Signer,
    /// The sender's name, shown in every page's header.
    site_name: String,
    subscribe_limit: protect::RateLimiter,
    subscribe_refusals: protect::RefusalLog,
    /// Wakes the confirmation sender after a sign-up queued an email.
    confirmations_queued: Notify,
    archive: archive::WebVersions,
    one_click: unsubscribe::OneClickWriter,
    spool: Arc<spool::Spool>,
}

type Shared = Arc<AppState>;

/// The web server, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    metrics: Option<(TcpListener, SocketAddr)>,
    /// The web admin's own listener, unless it is public or off.
    admin: Option<(TcpListener, SocketAddr)>,
    state: Shared,
    connections: usize,
    /// Every task of the pages besides the connections: the one-click
    /// writer, the spool, the confirmation sender, the metrics listener.
    /// [`Application::run_until_stopped`] awaits them all.
    background: JoinSet<()>,
}

impl Application {
    /// Binds config.http_addr and config.metrics_addr (port 0 allowed). A
    /// taken port is [`WebError::Bind`] or [`WebError::MetricsBind`] with a
    /// clear sentence naming the address.
    pub async fn build(ctx: Context) -> Result<Application, WebError> {
        let addr = ctx.config.http_addr;
        let (listener, addr) = bind(addr)
            .await
            .map_err(|source| WebError::Bind { addr, source })?;
        let metrics = match ctx.config.metrics_addr {
            Some(addr) => Some(
                bind(addr)
                    .await
                    .map_err(|source| WebError::MetricsBind { addr, source })?,
            ),
            None => None,
        };
        let admin = match ctx.config.admin_addr {
            AdminAddr::Listen(addr) => Some(
                bind(addr)
                    .await
                    .map_err(|source| WebError::AdminBind { addr, source })?,
            ),
            AdminAddr::Public | AdminAddr::Off => None,
        };
        let connections = listener::connection_cap(&ctx.config);
        let mut background = JoinSet::new();
        let state = Arc::new(AppState {
            signer: ctx.config.signer(),
            site_name: ctx.config.site_name.clone(),
            subscribe_limit: protect::RateLimiter::per_hour(ctx.config.subscribe_per_ip_per_hour),
            subscribe_refusals: protect::RefusalLog::every(REFUSALS_LOGGED_EVERY),
            confirmations_queued: Notify::new(),
            archive: archive::WebVersions::default(),
            one_click: unsubscribe::OneClickWriter::start(
                Arc::clone(&ctx.store) as _,
                &mut background,
            ),
            spool: Arc::new(spool::Spool::new(ctx.config.spool_dir.clone())),
            lists: Arc::clone(&ctx.store) as _,
            people: Arc::clone(&ctx.store) as _,
            subscribers: Arc::clone(&ctx.store) as _,
            archived: Arc::clone(&ctx.store) as _,
            reports: Arc::clone(&ctx.store) as _,
            totals: Arc::clone(&ctx.store) as _,
            ticks: Arc::clone(&ctx.store) as _,
            admin: Arc::clone(&ctx.store) as _,
            throttle: Throttle::default(),
            campaigns: Arc::clone(&ctx.store) as _,
            feedback: Arc::clone(&ctx.store) as _,
            import_jobs: Arc::clone(&ctx.store) as _,
            imports: admin::ImportJobs::default(),
            meetings: Arc::clone(&ctx.store) as _,
            sources: Arc::clone(&ctx.store) as _,
            feeds: Arc::clone(&ctx.store) as _,
            health: ctx.store,
            config: ctx.config,
            templates: ctx.templates,
            transport: ctx.transport,
        });
        Ok(Application {
            listener,
            addr,
            connections,
            metrics,
            admin,
            state,
            background,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where /metrics is served, unless NECMAIL_METRICS_ADDR is off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, addr)| *addr)
    }

    /// Where the web admin has a listener of its own: unless
    /// NECMAIL_ADMIN_ADDR is public or off.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(_, addr)| *addr)
    }

    /// How many connections the public listener serves at once.
    pub fn max_connections(&self) -> usize {
        self.connections
    }

    /// Serves until `shutdown` resolves, with the background work of the
    /// pages (the one-click spool, the confirmation emails); then stops
    /// accepting, finishes in-flight requests, and returns once every task
    /// of the pages has ended. By then the confirmation emails of the
    /// sign-ups answered before `shutdown` are sent, as far as
    /// NECMAIL_CONFIRMATIONS_PER_HOUR and the database allow.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let Application {
            listener,
            metrics,
            admin,
            state,
            connections,
            mut background,
            ..
        } = self;
        let (stop, stopped) = watch::channel(false);
        let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        background.spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        background.spawn(Arc::clone(&state.spool).run(Arc::clone(&state), stopped.clone()));
        background.spawn(admin::run_imports(
            Arc::clone(&state),
            until_stopped(stopped.clone()),
        ));
        background.spawn(subscribe::send_confirmations(
            Arc::clone(&state),
            stopped.clone(),
        ));
        let header_timeout = state.config.http_header_timeout;
        if let Some((metrics, _)) = metrics {
            background.spawn(listener::serve(
                metrics,
                metrics_router(Arc::clone(&state)),
                METRICS_CONNECTIONS,
                header_timeout,
                until_stopped(stopped.clone()),
            ));
        }
        if let Some((admin, _)) = admin {
            background.spawn(listener::serve(
                admin,
                admin_router(Arc::clone(&state)),
                ADMIN_CONNECTIONS,
                header_timeout,
                until_stopped(stopped.clone()),
            ));
        }
        listener::serve(
            listener,
            router(Arc::clone(&state)),
            connections,
            header_timeout,
            until_stopped(stopped),
        )
        .await;
        // The one-click writer ends when the last handle on the state is
        // gone: this one, and those of the other tasks as they end.
        drop(state);
        while let Some(ended) = background.join_next().await {
            if let Err(e) = ended {
                tracing::error!(error = %e, "a task of the web server failed");
            }
        }
    }
}

/// A listener on `addr` and the address it got (port 0 picks one).
async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// The metrics listener's pages: `/metrics` only.
fn metrics_router(state: Shared) -> Router {
    let routes = Router::new().route("/metrics", get(ops::metrics));
    with_metrics_layers(routes, state)
}

/// What the metrics listener wraps its routes in: a bare 404 elsewhere, a
/// bare 500 for a handler that panics, and the request timeout.
fn with_metrics_layers(routes: Router<Shared>, state: Shared) -> Router {
    routes
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(catch_panics())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

/// The web admin's own listener: its pages, and nothing else.
fn admin_router(state: Shared) -> Router {
    let routes = limited(admin::routes(&state), &state, ADMIN_BODY_LIMIT)
        .merge(admin::upload_routes(&state))
        .fallback(|| async { pages::PageError::NotFound });
    with_layers(routes, state)
}

fn router(state: Shared) -> Router {
    let mut routes = Router::new()
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
        .route("/preview/{token}", get(archive::preview))
        .route(
            "/preview/{token}/link",
            get(archive::preview_link).post(archive::preview_link),
        )
        .route("/media/{name}", get(media::image))
        .route("/healthz", get(ops::healthz))
        .route("/static/style.css", get(ops::stylesheet));
    routes = limited(routes, &state, BODY_LIMIT);
    if state.config.admin_addr == AdminAddr::Public {
        routes = routes
            .merge(limited(admin::routes(&state), &state, ADMIN_BODY_LIMIT))
            .merge(admin::upload_routes(&state));
    }
    let routes = routes.fallback(|| async { pages::PageError::NotFound });
    with_layers(routes, state)
}

/// `routes` with the body's time and size limits: at most `limit` bytes,
/// read within NECMAIL_HTTP_BODY_TIMEOUT_SECS.
fn limited(routes: Router<Shared>, state: &Shared, limit: usize) -> Router<Shared> {
    routes
        .layer(from_fn_with_state(
            (state.config.http_body_timeout, limit),
            listener::read_body_in_time,
        ))
        .layer(RequestBodyLimitLayer::new(limit))
}

/// What every listener of pages wraps its routes in: the friendly error
/// pages, the security headers, the request timeout and the trace span. A
/// handler that panics (a bug) answers with the friendly error page of a
/// 500, not with a dropped connection; the panic's one line goes to the
/// log, not to the visitor.
fn with_layers(routes: Router<Shared>, state: Shared) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request| {
        // The route, never the path: paths carry tokens.
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        tracing::info_span!("http", method = %request.method(), route)
    });
    routes
        .layer(catch_panics())
        .layer(from_fn_with_state(state.clone(), pages::friendly_errors))
        .layer(from_fn(protect::security_headers))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(trace)
        .with_state(state)
}

/// Turns a handler's panic (a bug) into a bare 500, so the listener answers
/// instead of dropping the connection; the panic's text stays in the log.
fn catch_panics() -> CatchPanicLayer<fn(Box<dyn std::any::Any + Send>) -> Response> {
    CatchPanicLayer::custom(|_| {
        tracing::error!("a handler panicked");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    })
}

/// Sends the email made of the templates `email/{name}.subject.tera`,
/// `.txt.tera` and `.html.tera`, rendered with `ctx` and the site's name;
/// replies go to `reply_to` when it is given.
pub(crate) async fn mail(
    state: &AppState,
    to: &crate::subscribers::SubscriberEmail,
    name: &str,
    mut ctx: tera::Context,
    reply_to: Option<&str>,
) -> anyhow::Result<()> {
    ctx.insert("site_name", &state.site_name);
    ctx.insert("committee", &state.config.committee);
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
            to,
            to_name: None,
            subject: subject.trim(),
            text: &text,
            html: Some(&html),
            reply_to,
        },
    )
    .await?;
    Ok(())
}

/// The subscriber id of a token's first value, as stored.
/// The forms' answer to "I am": one of [`ROLES`], or nothing said.
fn role_answer(answer: &str) -> Result<Option<&'static str>, &'static str> {
    match answer.trim() {
        "" => Ok(None),
        given => ROLES
            .into_iter()
            .find(|role| *role == given)
            .map(Some)
            .ok_or("Please say whether you are a member or a councillor."),
    }
}

/// Records what someone did on the pages, with the source web, as inbound
/// mail records what was done by email. What they did is done by then, so a
/// failure to record it is logged, not shown to them.
async fn record_event(
    state: &AppState,
    kind: EventKind,
    email: &SubscriberEmail,
    list_id: Option<i64>,
    reason: &str,
) {
    let event = NewEvent::about(kind, EventSource::Web, email, list_id, reason);
    if let Err(e) = state.feedback.record_event(&event).await {
        tracing::error!(error = %e, %kind, "the event was not recorded");
    }
}

fn id_of(value: u64) -> Option<i64> {
    i64::try_from(value).ok()
}

/// A form body's fields, in order; a checkbox group repeats its name.
pub(crate) struct FormData(Vec<(String, String)>);

impl FormData {
    /// The fields of a form-urlencoded body.
    fn parse(body: &[u8]) -> Self {
        FormData(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The fields of a body that is `multipart/form-data` when its
    /// Content-Type says so, form-urlencoded otherwise.
    fn from_body(headers: &HeaderMap, body: &[u8]) -> Self {
        let boundary = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(multipart_boundary);
        match boundary {
            Some(boundary) => FormData(multipart_fields(body, &boundary)),
            None => Self::parse(body),
        }
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

/// The boundary of a `multipart/form-data` Content-Type.
fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    parts.find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

/// The text fields of a `multipart/form-data` body (RFC 7578), in order;
/// parts that are not well formed are skipped.
fn multipart_fields(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let delimiter = format!("--{boundary}");
    let mut fields = Vec::new();
    // What follows each delimiter: a part, or `--` after the last one.
    for part in memchr::memmem::find_iter(body, delimiter.as_bytes())
        .map(|at| at + delimiter.len())
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| &body[w[0]..w[1] - delimiter.len()])
    {
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let Some(split) = memchr::memmem::find(part, b"\r\n\r\n") else {
            continue;
        };
        let (head, value) = (&part[..split], &part[split + 4..]);
        let name = String::from_utf8_lossy(head)
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case("content-disposition"))
            .and_then(|(_, value)| {
                value.split(';').skip(1).find_map(|p| {
                    let (key, name) = p.split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("name")
                        .then(|| name.trim().trim_matches('"').to_owned())
                })
            });
        if let Some(name) = name {
            fields.push((name, String::from_utf8_lossy(value).into_owned()));
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pages' state on a fresh SQLite file in `dir`.
    async fn state_in(dir: &std::path::Path) -> Shared {
        let path = |name: &str| dir.join(name).display().to_string();
        let env: std::collections::HashMap<&str, String> = [
            ("DATABASE_URL", format!("sqlite://{}", path("necmail.db"))),
            ("NECMAIL_SECRET", "a test secret of some length".to_owned()),
            ("NECMAIL_HTTP_ADDR", "127.0.0.1:0".to_owned()),
            ("NECMAIL_OUTBOX_DIR", path("outbox")),
            ("NECMAIL_SPOOL_DIR", path("spool")),
        ]
        .into();
        let config = Arc::new(Config::from_lookup(|k| env.get(k).cloned()).unwrap());
        let store = crate::store::connect(config.database_url.expose(), &config.pool_options())
            .await
            .unwrap();
        let app = Application::build(Context {
            store,
            transport: crate::delivery::transport(&config).unwrap(),
            templates: Arc::new(Templates::load(None).unwrap()),
            config,
        })
        .await
        .unwrap();
        Arc::clone(&app.state)
    }

    /// What a listener's `layers` answer to a GET of `/bug`, whose handler
    /// panics: the status, the content type and the body.
    async fn answer_to_a_panic(
        layers: fn(Router<Shared>, Shared) -> Router,
    ) -> (StatusCode, Option<String>, String) {
        use tower::ServiceExt;
        async fn bug() -> StatusCode {
            panic!("the secret inside the panic")
        }
        let dir = tempfile::tempdir().unwrap();
        let routes = Router::new().route("/bug", get(bug));
        let request = Request::builder()
            .uri("/bug")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = layers(routes, state_in(dir.path()).await)
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let kind = (response.headers().get(header::CONTENT_TYPE))
            .map(|kind| kind.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, kind, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_handler_that_panics_gets_the_friendly_error_page_without_the_panic() {
        let (status, kind, page) = answer_to_a_panic(with_layers).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            kind.as_deref().unwrap().starts_with("text/html"),
            "{kind:?}"
        );
        assert!(page.contains("</html>"), "{page}");
        assert!(!page.contains("secret"), "{page}");
    }

    #[tokio::test]
    async fn a_metrics_handler_that_panics_gets_a_bare_500_without_the_panic() {
        let (status, _, body) = answer_to_a_panic(with_metrics_layers).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.is_empty(), "{body}");
    }

    #[test]
    fn a_multipart_form_gives_its_fields_whatever_the_boundary() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"utm\"\r\n\r\nmail\r\n\
            --XyZ\r\ncontent-disposition: form-data; name=List-Unsubscribe\r\n\
            Content-Type: text/plain\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=\"XyZ\"".parse().unwrap(),
        );
        let form = FormData::from_body(&headers, body);
        assert_eq!(form.get("List-Unsubscribe"), Some("One-Click"));
        assert_eq!(form.get("utm"), Some("mail"));
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let form = FormData::from_body(&headers, b"List-Unsubscribe=One-Click&x=1");
        assert_eq!(form.get("List-Unsubscribe"), Some("One-Click"));
        assert_eq!(multipart_fields(b"garbage", "XyZ"), []);
    }
}
