//! How the web pages take connections, so that slow or numerous clients
//! cannot exhaust the server:
//!
//! - a client has NECMAIL_HTTP_HEADER_TIMEOUT_SECS to send a request's
//!   headers, counted from when the server starts waiting for them: on a
//!   new connection, and after each response on a kept-alive one (so it is
//!   also the keep-alive idle timeout). A client too slow is disconnected;
//! - the body has NECMAIL_HTTP_BODY_TIMEOUT_SECS more (see
//!   [`read_body_in_time`]);
//! - at most [`connection_cap`] connections are served at once; further ones
//!   wait in the kernel's backlog until one ends, and the file descriptors
//!   left over stay free for the database, SMTP and files;
//! - an accept error that is about the process (out of file descriptors or
//!   memory) pauses accepting, with a growing pause, instead of spinning.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::config::Config;

/// The fewest connections served at once, whatever the open-file limit.
const MIN_CONNECTIONS: usize = 16;
/// The most connections served at once when NECMAIL_HTTP_MAX_CONNECTIONS is unset.
const MAX_DERIVED_CONNECTIONS: usize = 4096;
/// File descriptors kept back besides the database's and SMTP's: the
/// listeners, the runtime, logs, the outbox and spool files, feed fetches.
const FD_RESERVE: usize = 64;
/// File descriptors one database connection may hold (SQLite in WAL mode
/// opens the database, its WAL and its shared memory).
const FDS_PER_DB_CONNECTION: usize = 3;
/// The first and the longest pause after an accept error.
const ACCEPT_PAUSE_MIN: Duration = Duration::from_millis(10);
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);

/// How many connections the public listener serves at once: the configured
/// number, or the soft open-file limit less what the database connections,
/// the SMTP connections and [`FD_RESERVE`] need, between [`MIN_CONNECTIONS`]
/// and [`MAX_DERIVED_CONNECTIONS`].
pub(crate) fn connection_cap(config: &Config) -> usize {
    if let Some(cap) = config.http_max_connections {
        return cap;
    }
    let reserve = FD_RESERVE
        + FDS_PER_DB_CONNECTION * config.db_max_connections as usize
        + config.smtp_connections;
    open_file_limit()
        .saturating_sub(reserve)
        .clamp(MIN_CONNECTIONS, MAX_DERIVED_CONNECTIONS)
}

/// The soft limit on open files (`ulimit -n`).
fn open_file_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
}

/// Whether an accept error is about one connection (it went away before it
/// was accepted), after which accepting goes on at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

/// Serves `router` on `listener`, `cap` connections at a time, until
/// `shutdown` resolves; then stops accepting, lets the requests in flight
/// finish (idle connections are closed at once) and returns.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    cap: usize,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(cap));
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let mut pause = ACCEPT_PAUSE_MIN;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => {
                permit.expect("the semaphore is never closed")
            }
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                pause = ACCEPT_PAUSE_MIN;
                accepted
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                if pause == ACCEPT_PAUSE_MIN {
                    tracing::warn!(error = %e, "cannot accept connections; pausing and retrying");
                }
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = &mut shutdown => break,
                }
                pause = (pause * 2).min(ACCEPT_PAUSE_MAX);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(Body::new))
        });
        let connection = connections.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    connections.shutdown().await;
}

/// Reads the whole request body, within NECMAIL_HTTP_BODY_TIMEOUT_SECS of
/// the headers, before the handler runs: a client that sends its headers
/// and then trickles the body is answered 408 and disconnected, whichever
/// page it asked for. Bodies are small (at most `limit`: 16 KB for the
/// public pages, a pasted report for the admin's), so holding one in memory
/// costs little.
pub(super) async fn read_body_in_time(
    State((timeout, limit)): State<(Duration, usize)>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(e)) if too_large(&e) => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        Ok(Err(_)) => StatusCode::BAD_REQUEST.into_response(),
        Err(_) => {
            tracing::info!("a client was too slow sending a request body");
            let mut response = StatusCode::REQUEST_TIMEOUT.into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// Whether a body error is, at some depth, the body limit's.
fn too_large(e: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(e), |e| e.source())
        .any(|e| e.is::<http_body_util::LengthLimitError>())
}
