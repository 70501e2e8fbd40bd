//! Fetching feeds and pages over HTTP: one client with a time limit, a size
//! limit enforced while the body streams in, a bounded number of redirects,
//! conditional GET, and an [`AddressPolicy`] checked on every address it
//! connects to.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use tokio_rustls::rustls;
use url::Url;

use super::addresses::{AddressPolicy, GuardedResolver, Refused};
use crate::config::Config;

/// How many redirects one fetch follows before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// What a server said about the version it sent, for the next conditional GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A response body that was read in full, within the size limit.
#[derive(Debug, Clone)]
pub struct Page {
    /// Where the body came from, after redirects.
    pub url: Url,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub validators: Validators,
}

/// The outcome of a successful fetch.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// 304: the version named by the validators is still current.
    NotModified,
    Page(Page),
}

/// Why a fetch failed. [`FetchError::is_bad_input`] sorts the URL's fault
/// (malformed, too large, refused by the server with a 4xx) from failures that
/// may pass (the network, a timeout, a 5xx).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    #[error("{url} is larger than the limit of {limit} bytes (NECMAIL_FEED_MAX_BYTES)")]
    TooLarge { url: Url, limit: u64 },
    #[error("{url} answered {status}")]
    Status { url: Url, status: StatusCode },
    #[error(
        "{url} did not answer in full within {} s (NECMAIL_FEED_TIMEOUT_SECS)",
        .timeout.as_secs()
    )]
    Timeout { url: Url, timeout: Duration },
    #[error("{url} redirected more than {MAX_REDIRECTS} times")]
    TooManyRedirects { url: Url },
    /// The URL, a redirect or a DNS answer led to an address the
    /// [`AddressPolicy`] does not allow; nothing was sent to it.
    #[error("cannot fetch {url}: {refused}")]
    Refused { url: Url, refused: Box<Refused> },
    #[error("cannot fetch {url}: {reason}")]
    Network { url: Url, reason: String },
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

impl FetchError {
    pub fn is_bad_input(&self) -> bool {
        match self {
            FetchError::BadUrl(_)
            | FetchError::TooLarge { .. }
            | FetchError::TooManyRedirects { .. }
            | FetchError::Refused { .. } => true,
            FetchError::Status { status, .. } => status.is_client_error(),
            FetchError::Timeout { .. } | FetchError::Network { .. } | FetchError::Client(_) => {
                false
            }
        }
    }
}

/// Parses an absolute http:// or https:// URL with a host.
pub fn parse_url(raw: &str) -> Result<Url, FetchError> {
    let raw = raw.trim();
    match Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(FetchError::BadUrl(raw.to_owned())),
    }
}

/// The User-Agent of every fetch: `necmail/0.1.0 (+https://news.example.org/)`,
/// so a feed's owner can see who polls it and where to find out more.
pub fn user_agent(public_url: &Url) -> String {
    format!("necmail/{} (+{public_url})", env!("CARGO_PKG_VERSION"))
}

/// TLS with ring and the webpki roots (as mail delivery has), speaking
/// HTTP/1.1 only.
fn tls_config() -> Result<rustls::ClientConfig, FetchError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Fetches feeds and pages. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    addresses: AddressPolicy,
    timeout: Duration,
    max_bytes: u64,
}

/// Why the redirect policy stopped following redirects.
#[derive(Debug, thiserror::Error)]
#[error("more than {MAX_REDIRECTS} redirects")]
struct TooManyRedirects;

impl Fetcher {
    /// A fetcher whose every fetch, body included, takes at most `timeout`
    /// and reads at most `max_bytes` of body, and connects only to the
    /// addresses `addresses` allows, directly (proxies named in the
    /// environment are ignored, as the proxy is what would be connected to).
    pub fn new(
        user_agent: &str,
        timeout: Duration,
        max_bytes: u64,
        addresses: AddressPolicy,
    ) -> Result<Fetcher, FetchError> {
        let hops = addresses.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(TooManyRedirects);
            }
            match hops.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(timeout)
            .redirect(redirects)
            .dns_resolver(Arc::new(GuardedResolver(addresses.clone())))
            .no_proxy()
            .tls_backend_preconfigured(tls_config()?)
            .build()
            .map_err(|e| FetchError::Client(e.to_string()))?;
        Ok(Fetcher {
            client,
            addresses,
            timeout,
            max_bytes,
        })
    }

    /// This fetcher, sharing its connections, address policy and time
    /// limit, but reading at most `max_bytes` of each body.
    pub fn with_max_bytes(&self, max_bytes: u64) -> Fetcher {
        Fetcher {
            max_bytes,
            ..self.clone()
        }
    }

    /// A fetcher with the configured limits, User-Agent and address policy
    /// (NECMAIL_FEED_ALLOW_PRIVATE).
    pub fn from_config(config: &Config) -> Result<Fetcher, FetchError> {
        Fetcher::new(
            &user_agent(&config.public_url),
            config.feed_timeout,
            config.feed_max_bytes,
            AddressPolicy::allowing_private(config.feed_allow_private),
        )
    }

    /// GETs `url`, conditionally when `validators` hold anything. The body
    /// is read chunk by chunk and refused as soon as it would pass the limit,
    /// so no more than the limit is ever held in memory.
    #[tracing::instrument(skip_all, fields(url = %url))]
    pub async fn fetch(&self, url: &Url, validators: &Validators) -> Result<Fetched, FetchError> {
        if let Err(refused) = self.addresses.check_url(url) {
            return Err(FetchError::Refused {
                url: url.clone(),
                refused: Box::new(refused),
            });
        }
        let mut request = self.client.get(url.clone());
        if let Some(etag) = &validators.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(last_modified) = &validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, last_modified);
        }
        let mut response = request.send().await.map_err(|e| self.failure(url, e))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            tracing::debug!("not modified");
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.clone(),
                status,
            });
        }
        let too_large = || FetchError::TooLarge {
            url: url.clone(),
            limit: self.max_bytes,
        };
        let declared = response.content_length();
        if declared.is_some_and(|n| n > self.max_bytes) {
            return Err(too_large());
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let validators = Validators {
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
        };
        let content_type = header(CONTENT_TYPE);
        let final_url = response.url().clone();
        let mut body = Vec::with_capacity(declared.unwrap_or(0) as usize);
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failure(url, e))? {
            if (body.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(bytes = body.len(), "fetched");
        Ok(Fetched::Page(Page {
            url: final_url,
            content_type,
            body,
            validators,
        }))
    }

    fn failure(&self, url: &Url, err: reqwest::Error) -> FetchError {
        let url = url.clone();
        let causes = || std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source());
        if let Some(refused) = causes().find_map(|e| e.downcast_ref::<Refused>()) {
            return FetchError::Refused {
                url,
                refused: Box::new(refused.clone()),
            };
        }
        if err.is_timeout() {
            FetchError::Timeout {
                url,
                timeout: self.timeout,
            }
        } else if err.is_redirect() {
            FetchError::TooManyRedirects { url }
        } else {
            let root = causes().last().unwrap_or(&err);
            FetchError::Network {
                url,
                reason: root.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_http_and_https_urls_are_fetched() {
        assert!(parse_url(" https://reports.example.org/feed/ ").is_ok());
        assert!(parse_url("http://127.0.0.1:8080/feed").is_ok());
        for bad in [
            "ftp://example.org/feed",
            "/feed",
            "example.org/feed",
            "file:///etc/passwd",
            "",
        ] {
            let err = parse_url(bad).unwrap_err();
            assert!(err.is_bad_input(), "{bad}");
            assert!(
                err.to_string()
                    .contains("is not an http:// or https:// URL")
            );
        }
    }

    #[test]
    fn the_user_agent_names_the_version_and_the_public_site() {
        let url = Url::parse("https://news.example.org/").unwrap();
        assert_eq!(
            user_agent(&url),
            format!(
                "necmail/{} (+https://news.example.org/)",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}
