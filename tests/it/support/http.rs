//! A local HTTP server for the feed tests. It serves the fixtures under
//! `tests/fixtures/feeds/` and the ways a feed can fail, on 127.0.0.1 and a
//! free port, from a thread and a runtime of its own, so that a test may block
//! on the real binary while the server answers it. It records every request.
//!
//! - `/fixtures/NAME`: the fixture, with no validators.
//! - `/templated/NAME`: the fixture with each `{base}` replaced by the
//!   server's own `http://127.0.0.1:PORT`, for fixtures that link to pages
//!   of the server.
//! - `/honours-validators/NAME`: the fixture with [`ETAG`] and
//!   [`LAST_MODIFIED`], and 304 when the request names either.
//! - `/ignores-validators/NAME`: the same validators, but always 200.
//! - `/fail/500`, `/fail/garbage`, `/fail/huge` (50 MB, streamed),
//!   `/fail/huge-declared` (the same with a Content-Length) and `/fail/slow`.
//! - `/flaky.rss`: whatever [`FeedServer::set_flaky`] last chose.
//! - `/redirect/N`: N redirects, then `nec.rss`.
//! - `/redirect-to?url=URL`: a redirect to URL, on any server.
//! - `/live.rss`: whatever [`FeedServer::set_live`] last set (an empty feed
//!   at first), for tests where new items appear.
//!   Its items are listed newest first, as a blog lists its posts: the first
//!   published at [`LIVE_NEWEST`], each next one a day before.

use std::convert::Infallible;
use std::future::IntoFuture;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use futures_util::StreamExt;
use tokio::sync::oneshot;

pub const ETAG: &str = "\"nec-v1\"";
pub const LAST_MODIFIED: &str = "Tue, 02 May 2017 18:05:11 GMT";
/// The size of `/fail/huge`.
pub const HUGE_BYTES: u64 = 50 * 1024 * 1024;
/// When the first item of `/live.rss` was published.
const LIVE_NEWEST: &str = "2017-05-02T18:05:11Z";
/// How long `/fail/slow` waits before it answers.
pub const SLOW: Duration = Duration::from_secs(5);

/// Where the fixture `name` is.
pub fn fixture_path(name: &str) -> String {
    format!("{}/tests/fixtures/feeds/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A fixture's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// One request the server answered.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub headers: HeaderMap,
    pub status: StatusCode,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What `/flaky.rss` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `nec.rss`.
    Feed,
    ServerError,
    Garbage,
    Huge,
    Slow,
}

#[derive(Clone)]
struct Shared {
    hits: Arc<Mutex<Vec<Hit>>>,
    flaky: Arc<Mutex<Behaviour>>,
    huge_sent: Arc<AtomicU64>,
    live: Arc<Mutex<String>>,
    connections: Arc<AtomicU64>,
}

pub struct FeedServer {
    addr: SocketAddr,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FeedServer {
    /// A server on 127.0.0.1.
    pub fn start() -> FeedServer {
        FeedServer::start_on(Ipv4Addr::LOCALHOST.into())
    }

    /// A server on `ip`, which must be a loopback address.
    pub fn start_on(ip: IpAddr) -> FeedServer {
        assert!(ip.is_loopback(), "tests talk only to loopback addresses");
        let shared = Shared {
            hits: Arc::default(),
            flaky: Arc::new(Mutex::new(Behaviour::Feed)),
            huge_sent: Arc::default(),
            live: Arc::new(Mutex::new(rss(&[]))),
            connections: Arc::default(),
        };
        let connections = Arc::clone(&shared.connections);
        let app = router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the test server");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind((ip, 0))
                    .await
                    .unwrap_or_else(|e| panic!("bind {ip}: {e}"));
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let listener = listener.tap_io(move |_| {
                    connections.fetch_add(1, Ordering::Relaxed);
                });
                tokio::select! {
                    served = axum::serve(listener, app).into_future() => served.expect("serve"),
                    _ = stopped => {}
                }
            });
        });
        let addr = addr_rx.recv().expect("the test server's address");
        FeedServer {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests answered on `path`, in order.
    pub fn hits(&self, path: &str) -> Vec<Hit> {
        let hits = self.shared.hits.lock().unwrap();
        hits.iter().filter(|h| h.path == path).cloned().collect()
    }

    pub fn set_flaky(&self, behaviour: Behaviour) {
        *self.shared.flaky.lock().unwrap() = behaviour;
    }

    /// Makes `/live.rss` an RSS feed of `items`, newest first: (guid,
    /// title, HTML content).
    pub fn set_live(&self, items: &[(&str, &str, &str)]) {
        *self.shared.live.lock().unwrap() = rss(items);
    }

    /// Every request answered, on any path.
    pub fn all_hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// How many TCP connections the server has accepted.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// How many bytes of 50 MB bodies the server has produced so far.
    pub fn huge_bytes_sent(&self) -> u64 {
        self.shared.huge_sent.load(Ordering::Relaxed)
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route(
            "/fixtures/{name}",
            get(|Path(name): Path<String>| async move { file(&name) }),
        )
        .route(
            "/templated/{name}",
            get(|Path(name): Path<String>, headers: HeaderMap| async move {
                let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
                let base = format!("http://{}", host.unwrap_or_default());
                let mut response = file(&name);
                let body = std::mem::take(response.body_mut());
                let bytes = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes).replace("{base}", &base);
                response.headers_mut().remove(header::CONTENT_LENGTH);
                *response.body_mut() = Body::from(text);
                response
            }),
        )
        .route(
            "/honours-validators/{name}",
            get(|Path(name): Path<String>, headers: HeaderMap| async move {
                let named = |h, v| headers.get(h).is_some_and(|got| got == v);
                if named(header::IF_NONE_MATCH, ETAG)
                    || named(header::IF_MODIFIED_SINCE, LAST_MODIFIED)
                {
                    with_validators(StatusCode::NOT_MODIFIED.into_response())
                } else {
                    with_validators(file(&name))
                }
            }),
        )
        .route(
            "/ignores-validators/{name}",
            get(|Path(name): Path<String>| async move { with_validators(file(&name)) }),
        )
        .route("/fail/500", failing(Behaviour::ServerError))
        .route("/fail/garbage", failing(Behaviour::Garbage))
        .route("/fail/huge", failing(Behaviour::Huge))
        .route("/fail/slow", failing(Behaviour::Slow))
        .route(
            "/fail/huge-declared",
            get(|State(s): State<Shared>| async move {
                let mut response = huge(&s);
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HUGE_BYTES.into());
                response
            }),
        )
        .route(
            "/flaky.rss",
            get(|State(s): State<Shared>| async move {
                let behaviour = *s.flaky.lock().unwrap();
                behave(behaviour, &s).await
            }),
        )
        .route(
            "/live.rss",
            get(|State(s): State<Shared>| async move {
                let body = s.live.lock().unwrap().clone();
                ([(header::CONTENT_TYPE, "application/rss+xml")], body).into_response()
            }),
        )
        .route(
            "/redirect/{n}",
            get(|Path(n): Path<u32>| async move {
                match n {
                    0 => file("nec.rss"),
                    n => Redirect::to(&format!("/redirect/{}", n - 1)).into_response(),
                }
            }),
        )
        .route(
            "/redirect-to",
            get(|Query(to): Query<RedirectTo>| async move { Redirect::to(&to.url) }),
        )
        .layer(middleware::from_fn_with_state(shared.clone(), record))
        .with_state(shared)
}

#[derive(serde::Deserialize)]
struct RedirectTo {
    url: String,
}

/// A minimal RSS 2.0 feed with full content, as a blog publishes it: the
/// first item published at [`LIVE_NEWEST`], each next one a day before.
fn rss(items: &[(&str, &str, &str)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\">\n\
         <channel><title>Notes from the NEC</title><link>https://nec-rep.example.org</link>\
         <description>Reports from the NEC</description>\n",
    );
    let newest: chrono::DateTime<chrono::Utc> = LIVE_NEWEST.parse().expect("a time");
    for (days_before, (guid, title, html)) in (0..).zip(items) {
        let published = (newest - chrono::Duration::days(days_before)).to_rfc2822();
        xml.push_str(&format!(
            "<item><title>{title}</title><link>https://nec-rep.example.org/{guid}/</link>\
             <guid isPermaLink=\"false\">{guid}</guid><pubDate>{published}</pubDate>\
             <content:encoded><![CDATA[{html}]]></content:encoded></item>\n"
        ));
    }
    xml.push_str("</channel></rss>\n");
    xml
}

async fn record(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    let response = next.run(request).await;
    shared.hits.lock().unwrap().push(Hit {
        path,
        headers,
        status: response.status(),
    });
    response
}

fn failing(behaviour: Behaviour) -> axum::routing::MethodRouter<Shared> {
    get(move |State(s): State<Shared>| async move { behave(behaviour, &s).await })
}

async fn behave(behaviour: Behaviour, shared: &Shared) -> Response {
    match behaviour {
        Behaviour::Feed => file("nec.rss"),
        Behaviour::ServerError => {
            (StatusCode::INTERNAL_SERVER_ERROR, "the database is down").into_response()
        }
        Behaviour::Garbage => (
            [(header::CONTENT_TYPE, "application/rss+xml")],
            "<<<this is\0 not a feed & never was>>>",
        )
            .into_response(),
        Behaviour::Huge => huge(shared),
        Behaviour::Slow => {
            tokio::time::sleep(SLOW).await;
            file("nec.rss")
        }
    }
}

/// 50 MB of `x`, produced chunk by chunk as the client reads it.
fn huge(shared: &Shared) -> Response {
    static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
    let sent = shared.huge_sent.clone();
    let chunks = HUGE_BYTES / CHUNK.len() as u64;
    let body = futures_util::stream::iter(0..chunks).map(move |_| {
        sent.fetch_add(CHUNK.len() as u64, Ordering::Relaxed);
        Ok::<_, Infallible>(Bytes::from_static(&CHUNK))
    });
    Response::new(Body::from_stream(body))
}

fn file(name: &str) -> Response {
    let content_type = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("rss") => "application/rss+xml; charset=UTF-8",
        Some("atom") => "application/atom+xml; charset=UTF-8",
        Some("md") => "text/markdown; charset=UTF-8",
        Some("html") => "text/html; charset=UTF-8",
        _ => "text/plain; charset=UTF-8",
    };
    match std::fs::read(fixture_path(name)) {
        Ok(body) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

fn with_validators(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::ETAG, ETAG.parse().unwrap());
    headers.insert(header::LAST_MODIFIED, LAST_MODIFIED.parse().unwrap());
    response
}
