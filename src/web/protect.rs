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
pub(crate) const CSP_ARCHIVED_REPORT: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

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

/// A fixed-window counter of requests per client per hour, in memory: each
/// instance counts its own. IPv6 clients are counted by /64, the block one
/// household or machine usually holds.
pub(crate) struct RateLimiter {
    limit: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// Entries kept before expired ones are swept out.
const SWEEP_AT: usize = 10_000;

impl RateLimiter {
    pub(crate) fn per_hour(limit: u32) -> Self {
        RateLimiter {
            limit,
            window: Duration::from_secs(3600),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request from `ip`; false when it is over the limit.
    pub(crate) fn allow(&self, ip: IpAddr) -> bool {
        let key = match ip {
            IpAddr::V6(v6) => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::from(octets)
            }
            v4 => v4,
        };
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= SWEEP_AT {
            seen.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = seen.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return false;
        }
        entry.1 += 1;
        true
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
/// is set only when the handler did not choose one (the archived report does).
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
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
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
