//! Which addresses a fetch may connect to, so that a feed URL (or a redirect,
//! or a DNS answer) cannot make necmail reach the machine it runs on, the
//! private network around it or a cloud metadata service (server-side
//! request forgery).
//!
//! [`AddressPolicy`] is applied to every address a fetch could connect to:
//! by [`GuardedResolver`] to each DNS answer (reqwest then connects only to
//! the addresses it returns, so a name that resolves differently the second
//! time cannot get round the check), and by [`AddressPolicy::check_url`] to
//! IP-literal hosts, which reqwest connects to without asking the resolver,
//! on the URL fetched and on every redirect.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use tracing::Instrument;
use url::{Host, Url};

/// True when `ip` is a globally routable unicast address: not in any of the
/// special-purpose ranges named by [`non_global_range`].
pub fn is_globally_routable(ip: IpAddr) -> bool {
    non_global_range(ip).is_none()
}

/// The name of the special-purpose range `ip` is in (`"loopback"`,
/// `"private"`, …), or `None` for a globally routable unicast address.
///
/// IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`,
/// NAT64 `64:ff9b::a.b.c.d` and 6to4 `2002:AABB:CCDD::`) are judged by that
/// IPv4 address. Outside 2000::/3, the only IPv6 block IANA allocates for
/// global unicast, every address is special.
pub fn non_global_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => v4_range(ip),
        IpAddr::V6(ip) => v6_range(ip),
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let range = match (a, b, c) {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_broadcast() => "broadcast",
        (0, _, _) => "this network",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "private",
        (100, 64..=127, _) => "shared address space (CGNAT)",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "IETF protocol assignments",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay anycast",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    };
    Some(range)
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    let range = match s {
        // IPv4-mapped ::ffff:a.b.c.d and NAT64 64:ff9b::a.b.c.d.
        [0, 0, 0, 0, 0, 0xffff, h, l] | [0x64, 0xff9b, 0, 0, 0, 0, h, l] => {
            return v4_range(embedded(h, l));
        }
        // 6to4: 2002:AABB:CCDD::/48 tunnels to a.b.c.d.
        [0x2002, h, l, ..] => return v4_range(embedded(h, l)),
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible (deprecated)",
        [0x64, 0xff9b, 1, ..] => "NAT64 local use",
        [0x100, 0, 0, 0, ..] => "discard-only",
        [0x2001, 0xdb8, ..] => "documentation",
        [0x2001, 0..=0x1ff, ..] => "IETF protocol assignments",
        [0x3fff, 0..=0x0fff, ..] => "documentation",
        [0x2000..=0x3fff, ..] => return None,
        [0xfc00..=0xfdff, ..] => "unique-local",
        [0xfe80..=0xfebf, ..] => "link-local",
        [0xfec0..=0xfeff, ..] => "site-local (deprecated)",
        [0xff00..=0xffff, ..] => "multicast",
        _ => "reserved",
    };
    Some(range)
}

/// Which IP addresses fetches may connect to.
#[derive(Clone, Default)]
pub enum AddressPolicy {
    /// Only globally routable addresses ([`is_globally_routable`]): the default.
    #[default]
    GlobalOnly,
    /// Any address: `NECMAIL_FEED_ALLOW_PRIVATE=true`, for a feed on an
    /// intranet or on this machine.
    Any,
    /// The addresses for which the function is true, to test the checks
    /// themselves on loopback addresses.
    Only(Arc<dyn Fn(IpAddr) -> bool + Send + Sync>),
}

impl fmt::Debug for AddressPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressPolicy::GlobalOnly => "GlobalOnly",
            AddressPolicy::Any => "Any",
            AddressPolicy::Only(_) => "Only(..)",
        })
    }
}

/// A connection the [`AddressPolicy`] did not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refused to connect to {}{ip}{}: NECMAIL_FEED_ALLOW_PRIVATE is off",
    host.as_ref().map(|h| format!("{h} at ")).unwrap_or_default(),
    range.map(|r| format!(" ({r})")).unwrap_or_default()
)]
pub struct Refused {
    /// The host name that resolved to `ip`; `None` for an IP-literal host.
    pub host: Option<String>,
    pub ip: IpAddr,
    /// The special-purpose range `ip` is in, if any.
    pub range: Option<&'static str>,
}

impl AddressPolicy {
    /// [`AddressPolicy::Any`] when `allow_private`, else [`AddressPolicy::GlobalOnly`].
    pub fn allowing_private(allow_private: bool) -> AddressPolicy {
        if allow_private {
            AddressPolicy::Any
        } else {
            AddressPolicy::GlobalOnly
        }
    }

    /// Whether a connection to `ip` is allowed; `host` names it in the refusal.
    pub fn check(&self, host: Option<&str>, ip: IpAddr) -> Result<(), Refused> {
        let allowed = match self {
            AddressPolicy::GlobalOnly => is_globally_routable(ip),
            AddressPolicy::Any => true,
            AddressPolicy::Only(allows) => allows(ip),
        };
        if allowed {
            Ok(())
        } else {
            Err(Refused {
                host: host.map(str::to_owned),
                ip,
                range: non_global_range(ip),
            })
        }
    }

    /// Checks `url`'s host when it is an IP address. A fetcher checks a host
    /// name's addresses when it resolves it.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            // The url crate turns every IPv4 form (2130706433, 0x7f.1, 127.1)
            // into Host::Ipv4; this catches any name the HTTP client would
            // still read as an address.
            Some(Host::Domain(name)) => match name.parse() {
                Ok(ip) => ip,
                Err(_) => return Ok(()),
            },
            None => return Ok(()),
        };
        self.check(None, ip)
    }
}

/// A DNS resolver that drops the addresses the policy refuses, and fails
/// with [`Refused`] when it refuses them all.
#[derive(Debug)]
pub(super) struct GuardedResolver(pub(super) AddressPolicy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let span = tracing::debug_span!("resolve", host = name.as_str());
        let resolving = async move {
            let host = name.as_str();
            let mut refused = None;
            let allowed: Vec<_> = tokio::net::lookup_host((host, 0))
                .await?
                .filter(|addr| match policy.check(Some(host), addr.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.get_or_insert(e);
                        false
                    }
                })
                .collect();
            match refused {
                Some(refused) if allowed.is_empty() => Err(refused.into()),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        };
        Box::pin(resolving.instrument(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(ip: &str) -> Option<&'static str> {
        non_global_range(ip.parse().unwrap())
    }

    #[test]
    fn every_special_purpose_ipv4_range_is_refused_at_both_ends() {
        for (first, last, name) in [
            ("0.0.0.0", "0.0.0.0", "unspecified"),
            ("0.0.0.1", "0.255.255.255", "this network"),
            ("10.0.0.0", "10.255.255.255", "private"),
            (
                "100.64.0.0",
                "100.127.255.255",
                "shared address space (CGNAT)",
            ),
            ("127.0.0.0", "127.255.255.255", "loopback"),
            ("169.254.0.0", "169.254.255.255", "link-local"),
            ("172.16.0.0", "172.31.255.255", "private"),
            ("192.0.0.0", "192.0.0.255", "IETF protocol assignments"),
            ("192.0.2.0", "192.0.2.255", "documentation"),
            ("192.88.99.0", "192.88.99.255", "6to4 relay anycast"),
            ("192.168.0.0", "192.168.255.255", "private"),
            ("198.18.0.0", "198.19.255.255", "benchmarking"),
            ("198.51.100.0", "198.51.100.255", "documentation"),
            ("203.0.113.0", "203.0.113.255", "documentation"),
            ("224.0.0.0", "239.255.255.255", "multicast"),
            ("240.0.0.0", "255.255.255.254", "reserved"),
            ("255.255.255.255", "255.255.255.255", "broadcast"),
        ] {
            assert_eq!(range(first), Some(name), "{first}");
            assert_eq!(range(last), Some(name), "{last}");
            assert!(!is_globally_routable(first.parse().unwrap()), "{first}");
            assert!(!is_globally_routable(last.parse().unwrap()), "{last}");
        }
    }

    #[test]
    fn the_addresses_just_outside_each_ipv4_range_are_global() {
        for ip in [
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "191.255.255.255",
            "192.0.1.0",
            "192.0.3.0",
            "192.88.98.255",
            "192.88.100.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "198.51.101.0",
            "203.0.112.255",
            "203.0.114.0",
            "223.255.255.255",
            "8.8.8.8",
            "93.184.216.34",
        ] {
            assert_eq!(range(ip), None, "{ip}");
            assert!(is_globally_routable(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn every_special_purpose_ipv6_range_is_refused() {
        for (ip, name) in [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::2", "IPv4-compatible (deprecated)"),
            ("::8.8.8.8", "IPv4-compatible (deprecated)"),
            ("::127.0.0.1", "IPv4-compatible (deprecated)"),
            ("64:ff9b:1::", "NAT64 local use"),
            ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "NAT64 local use"),
            ("100::", "discard-only"),
            ("100::ffff:ffff:ffff:ffff", "discard-only"),
            ("2001::", "IETF protocol assignments"),
            (
                "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
                "IETF protocol assignments",
            ),
            ("2001:db8::", "documentation"),
            ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"),
            ("3fff::", "documentation"),
            ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"),
            ("fc00::", "unique-local"),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique-local"),
            ("fe80::", "link-local"),
            ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"),
            ("fec0::", "site-local (deprecated)"),
            ("ff00::", "multicast"),
            ("ff02::1", "multicast"),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"),
            ("1::", "reserved"),
            ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"),
            ("4000::", "reserved"),
            ("5f00::", "reserved"),
            ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"),
        ] {
            assert_eq!(range(ip), Some(name), "{ip}");
            assert!(!is_globally_routable(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn global_unicast_ipv6_is_global() {
        for ip in [
            "2000::",
            "2001:200::",
            "2001:db7:ffff::",
            "2001:db9::",
            "2001:4860:4860::8888",
            "2606:4700::1111",
            "3ffe:ffff::",
            "3fff:1000::",
        ] {
            assert_eq!(range(ip), None, "{ip}");
            assert!(is_globally_routable(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn ipv6_forms_of_an_ipv4_address_are_judged_by_that_address() {
        for (ip, name) in [
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:10.1.2.3", Some("private")),
            ("::ffff:169.254.169.254", Some("link-local")),
            ("::ffff:100.64.0.1", Some("shared address space (CGNAT)")),
            ("::ffff:0.0.0.0", Some("unspecified")),
            ("::ffff:255.255.255.255", Some("broadcast")),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::127.0.0.1", Some("loopback")),
            ("64:ff9b::192.168.0.1", Some("private")),
            ("64:ff9b::169.254.169.254", Some("link-local")),
            ("64:ff9b::8.8.8.8", None),
            ("2002:7f00:1::", Some("loopback")),
            ("2002:a9fe:a9fe::1", Some("link-local")),
            ("2002:c0a8:101:1::1", Some("private")),
            ("2002:808:808::", None),
        ] {
            assert_eq!(range(ip), name, "{ip}");
        }
    }

    #[test]
    fn only_the_policy_that_allows_private_addresses_allows_loopback() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let refused = AddressPolicy::GlobalOnly.check(None, loopback).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "refused to connect to 127.0.0.1 (loopback): NECMAIL_FEED_ALLOW_PRIVATE is off"
        );
        assert_eq!(AddressPolicy::Any.check(None, loopback), Ok(()));
        assert_eq!(
            AddressPolicy::GlobalOnly.check(None, "8.8.8.8".parse().unwrap()),
            Ok(())
        );
        assert!(matches!(
            AddressPolicy::allowing_private(false),
            AddressPolicy::GlobalOnly
        ));
        assert!(matches!(
            AddressPolicy::allowing_private(true),
            AddressPolicy::Any
        ));
        let named = AddressPolicy::GlobalOnly
            .check(Some("localhost"), loopback)
            .unwrap_err();
        assert_eq!(
            named.to_string(),
            "refused to connect to localhost at 127.0.0.1 (loopback): NECMAIL_FEED_ALLOW_PRIVATE is off"
        );
    }

    #[test]
    fn every_spelling_of_an_ip_literal_host_is_checked_as_that_address() {
        for (raw, ip) in [
            ("http://127.0.0.1/", "127.0.0.1"),
            ("http://2130706433/", "127.0.0.1"),
            ("http://0x7f.1/", "127.0.0.1"),
            ("http://0177.0.0.1/", "127.0.0.1"),
            ("http://127.1/", "127.0.0.1"),
            ("http://127.0.0.1./", "127.0.0.1"),
            ("http://0/", "0.0.0.0"),
            ("http://[::1]/", "::1"),
            ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
            ("http://[::ffff:7f00:1]:8080/", "::ffff:127.0.0.1"),
            (
                "https://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
            ),
            ("http://[fe80::1]/", "fe80::1"),
        ] {
            let url = Url::parse(raw).unwrap();
            let refused = AddressPolicy::GlobalOnly.check_url(&url).unwrap_err();
            assert_eq!(refused.ip, ip.parse::<IpAddr>().unwrap(), "{raw}");
            assert_eq!(refused.host, None, "{raw}");
            assert_eq!(AddressPolicy::Any.check_url(&url), Ok(()), "{raw}");
        }
        for name in ["http://localhost/", "https://example.org/feed/"] {
            let url = Url::parse(name).unwrap();
            assert_eq!(AddressPolicy::GlobalOnly.check_url(&url), Ok(()), "{name}");
        }
    }
}
