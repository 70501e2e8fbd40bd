//! What guards the pages: the client's address, the per-address rate limit
//! of the subscribe form, stateless CSRF tokens and the security headers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

use crate::tokens::{Purpose, Signer};

/// How long a form's CSRF token stays good.
pub(crate) const CSRF_LIFETIME_SECS: u64 = 2 * 60 * 60;
/// How far in the future a CSRF token's issue time may be (clock skew
/// between instances behind one proxy).
const CSRF_SKEW_SECS: u64 = 60;

/// The pages' Content-Security-Policy: no scripts, no inline styles.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The policy of the archive's web version of a report: the report is an
/// email, whose styles are inlined into `style` attributes. Still no scripts.
/// Images come from necmail's own media store (`/media/…`, copied there at
/// import) or are written into the report as `data:` addresses: nothing is
/// loaded from anyone else.
pub(crate) const CSP_ARCHIVED_REPORT: &str = "default-src 'none'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The address a request came from: the socket's peer, or, when the peer
/// is a trusted reverse proxy, the last hop of its `X-Forwarded-For` (the
/// address the proxy itself saw, which a client cannot forge).
pub(crate) fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    if !trusted.iter().any(|t| t.to_canonical() == peer_ip) {
        return peer_ip;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|hop| hop.trim().parse::<IpAddr>().ok())
        .map_or(peer_ip, |ip| ip.to_canonical())
}

/// A fixed-window counter of requests per client, in memory: each instance
/// counts its own. IPv6 clients are counted by /64, the block one household
/// or machine usually holds.
///
/// Its memory is bounded: it tracks at most `capacity` clients. Windows
/// that have ended are swept out at most once per [`SWEEP_EVERY`], so a
/// request costs one hash lookup however many clients are tracked. While the
/// table is full of clients whose window is still open, a client it does not
/// know yet is refused: more distinct addresses than that within one window
/// is a flood, and refusing its newcomers is what keeps it from turning into
/// email.
pub(crate) struct RateLimiter {
    limit: u32,
    window: Duration,
    capacity: usize,
    table: Mutex<Table>,
}

struct Table {
    seen: HashMap<IpAddr, (Instant, u32)>,
    swept: Instant,
}

/// How many clients the subscribe form's limiter tracks at most (a few MB).
const TRACKED_CLIENTS: usize = 100_000;
/// How often ended windows are swept out of a rate limiter's table.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl RateLimiter {
    pub(crate) fn per_hour(limit: u32) -> Self {
        Self::new(limit, Duration::from_secs(3600), TRACKED_CLIENTS)
    }

    fn new(limit: u32, window: Duration, capacity: usize) -> Self {
        RateLimiter {
            limit,
            window,
            capacity,
            table: Mutex::new(Table {
                seen: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// Counts one request from `ip`; false when it is over the limit.
    pub(crate) fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, Instant::now())
    }

    fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        let key = match ip {
            IpAddr::V6(v6) => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::from(octets)
            }
            v4 => v4,
        };
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(table.swept) >= SWEEP_EVERY {
            table
                .seen
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < self.window);
            table.swept = now;
        }
        if table.seen.len() >= self.capacity && !table.seen.contains_key(&key) {
            return false;
        }
        let entry = table.seen.entry(key).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return false;
        }
        entry.1 += 1;
        true
    }

    /// How many clients the table holds.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen
            .len()
    }
}

/// Turns a flood of refusals into one log line per interval: each refusal
/// is counted, and the first one after the interval has passed is logged
/// with the count since the last line.
pub(crate) struct RefusalLog {
    interval: Duration,
    /// When the last line was logged, and the refusals counted since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl RefusalLog {
    pub(crate) fn every(interval: Duration) -> Self {
        RefusalLog {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// Counts one refusal; `Some(refusals since the last line)` when a line
    /// is due now.
    pub(crate) fn count(&self) -> Option<u64> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1 += 1;
        match state.0 {
            Some(last) if now.duration_since(last) < self.interval => None,
            _ => {
                state.0 = Some(now);
                Some(std::mem::take(&mut state.1))
            }
        }
    }
}

/// The scope that ties a form's CSRF token to the link token of its page.
pub(crate) fn scope_of(page_token: &str) -> u64 {
    let digest = Sha256::digest(page_token.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) >> 1
}

fn unix_now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default()
}

/// A CSRF token for a form of the page with `scope`, good for two hours.
pub(crate) fn csrf_token(signer: &Signer, scope: u64) -> String {
    signer.sign(Purpose::Form, &[unix_now(), scope])
}

/// Checks the CSRF token that a form on the page of link `page_token` sent:
/// [`PageError::FormExpired`] unless it is current and made for that page.
pub(crate) fn check_form(
    signer: &Signer,
    page_token: &str,
    form: &super::FormData,
) -> Result<(), super::pages::PageError> {
    if csrf_ok(signer, scope_of(page_token), form.get("csrf")) {
        Ok(())
    } else {
        Err(super::pages::PageError::FormExpired)
    }
}

/// Whether `token` is a current CSRF token of a page with `scope`.
pub(crate) fn csrf_ok(signer: &Signer, scope: u64, token: Option<&str>) -> bool {
    let Some(token) = token else { return false };
    let Ok(values) = signer.verify(Purpose::Form, token) else {
        return false;
    };
    let [issued, token_scope] = values[..] else {
        return false;
    };
    let now = unix_now();
    token_scope == scope
        && issued <= now + CSRF_SKEW_SECS
        && now.saturating_sub(issued) <= CSRF_LIFETIME_SECS
}

/// A short, safe-to-log prefix of a token.
pub(crate) fn token_hint(token: &str) -> &str {
    let end = token.char_indices().nth(6).map_or(token.len(), |(i, _)| i);
    &token[..end]
}

/// Adds the headers every response carries. The Content-Security-Policy
/// and X-Frame-Options are set only when the handler did not choose them
/// (the archived report and the admin's previews do).
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::X_FRAME_OPTIONS) {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let trusted: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap()];
        let h = forwarded("198.51.100.7, 203.0.113.9");
        assert_eq!(
            client_ip(peer("192.0.2.1"), &h, &trusted),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap(),
            "the last hop is the one the proxy saw"
        );
        assert_eq!(
            client_ip(peer("10.0.0.1"), &forwarded("garbage"), &trusted),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn the_rate_limit_counts_per_address_and_ipv6_per_64() {
        let limiter = RateLimiter::per_hour(2);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        let c: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limiter.allow(a));
        assert!(limiter.allow(b));
        assert!(!limiter.allow(a), "the same /64");
        assert!(limiter.allow(c));
    }

    #[test]
    fn the_rate_limit_tracks_a_bounded_number_of_clients_and_sweeps_ended_windows() {
        let limiter = RateLimiter::new(5, Duration::from_secs(3600), 100);
        let start = Instant::now();
        let client = |n: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
        for n in 0..100 {
            assert!(limiter.allow_at(client(n), start));
        }
        for n in 100..10_000 {
            assert!(
                !limiter.allow_at(client(n), start),
                "a newcomer to a full table is refused"
            );
        }
        assert_eq!(
            limiter.tracked(),
            100,
            "the table never grows past its capacity"
        );
        assert!(
            limiter.allow_at(client(7), start),
            "a tracked client keeps its count"
        );
        let later = start + Duration::from_secs(3600);
        assert!(
            limiter.allow_at(client(20_000), later),
            "ended windows are swept out"
        );
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn a_flood_of_refusals_is_one_log_line_per_interval() {
        let log = RefusalLog::every(Duration::from_secs(60));
        assert_eq!(log.count(), Some(1), "the first refusal is logged");
        let lines = (0..10_000).filter_map(|_| log.count()).count();
        assert_eq!(lines, 0, "the rest of the minute is only counted");
        let log = RefusalLog::every(Duration::ZERO);
        assert_eq!(log.count(), Some(1));
        assert_eq!(log.count(), Some(1));
    }

    #[test]
    fn a_csrf_token_works_only_for_its_page() {
        let signer = Signer::new("a test secret of some length");
        let token = csrf_token(&signer, scope_of("abc"));
        assert!(csrf_ok(&signer, scope_of("abc"), Some(&token)));
        assert!(!csrf_ok(&signer, scope_of("abd"), Some(&token)));
        assert!(!csrf_ok(&signer, scope_of("abc"), None));
        let old = signer.sign(
            Purpose::Form,
            &[unix_now() - CSRF_LIFETIME_SECS - 1, scope_of("abc")],
        );
        assert!(!csrf_ok(&signer, scope_of("abc"), Some(&old)));
    }
}
