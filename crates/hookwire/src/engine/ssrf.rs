//! The SSRF guard: webhook URLs are typed by strangers, so by default hookwire
//! refuses to connect to addresses inside the machine or its network.
//!
//! Names are resolved here and the checked addresses are the ones connected
//! to, so a DNS answer that changes between check and use cannot slip through.

use hyper_util::client::legacy::connect::dns::Name;
use ipnet::IpNet;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The message recorded in the delivery log when the guard refuses a target.
pub const REFUSED: &str = "target resolves to a private address";

/// Whether an address is off limits: loopback, private, link-local (cloud
/// metadata included), CGNAT, multicast, unspecified, broadcast, documentation
/// and reserved ranges, in IPv4, IPv6 and IPv4-mapped IPv6 forms.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            forbidden_v6(v6)
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || ip.segments()[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible ::a.b.c.d
        || (first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64 64:ff9b::/96
}

/// The guard: the forbidden ranges, less the networks an operator opened
/// for a trusted setup (`allowed_target_networks`).
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allowed: Arc<Vec<IpNet>>,
}

impl Guard {
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Guard {
            allowed: Arc::new(allowed),
        }
    }

    /// Whether hookwire must not connect to `ip`.
    pub fn refuses(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address is judged, and allowed, as its IPv4 self.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        is_forbidden(ip) && !self.allowed.iter().any(|net| net.contains(&ip))
    }

    /// Checks a URL's host when it is a literal IP, which never reaches a
    /// resolver. The URL parser has already normalised decimal, octal and hex
    /// IPv4 forms. `localhost` names are refused without a lookup.
    pub fn refuses_literal_host(&self, url: &url::Url) -> bool {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.refuses(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.refuses(IpAddr::V6(ip)),
            Some(url::Host::Domain(d)) => {
                let local = d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost");
                local && self.refuses(IpAddr::V4(Ipv4Addr::LOCALHOST))
            }
            None => true,
        }
    }
}

/// Names resolved by the system, and through the guard unless private
/// targets are allowed: refused addresses are dropped, and a name with none
/// left fails with [`REFUSED`]. hyper connects to exactly the addresses
/// returned, so a name cannot resolve differently between the check and the
/// connection.
#[derive(Debug, Clone)]
pub struct Resolver {
    guard: Option<Guard>,
}

impl Resolver {
    /// `None`: every address is allowed (`allow_private_targets`).
    pub fn new(guard: Option<Guard>) -> Self {
        Resolver { guard }
    }
}

type Resolving =
    Pin<Box<dyn Future<Output = std::io::Result<std::vec::IntoIter<SocketAddr>>> + Send>>;

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let guard = self.guard.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| guard.as_ref().is_none_or(|g| !g.refuses(a.ip())))
                .collect();
            match (addrs.is_empty(), guard.is_some()) {
                (true, true) => Err(std::io::Error::other(REFUSED)),
                (true, false) => Err(std::io::Error::other("the name resolves to no address")),
                (false, _) => Ok(addrs.into_iter()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_internal_addresses_in_every_notation() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://017700000001/",
            "http://10.1.2.3/",
            "http://169.254.169.254/",
            "http://100.64.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://0.0.0.0/",
            "http://255.255.255.255/",
            "http://224.0.0.1/",
            "http://localhost/",
            "http://192.168.0.1/",
            "http://172.16.0.1/",
        ] {
            assert!(
                Guard::default().refuses_literal_host(&url::Url::parse(url).unwrap()),
                "{url}"
            );
        }
        for url in [
            "http://93.184.216.34/",
            "http://[2606:4700::1111]/",
            "http://example.com/",
        ] {
            assert!(
                !Guard::default().refuses_literal_host(&url::Url::parse(url).unwrap()),
                "{url}"
            );
        }
    }

    #[test]
    fn allowed_networks_open_only_themselves() {
        let guard = Guard::new(vec![
            "10.1.0.0/16".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ]);
        assert!(!guard.refuses("10.1.2.3".parse().unwrap()));
        assert!(
            !guard.refuses("::ffff:10.1.2.3".parse().unwrap()),
            "mapped form is allowed too"
        );
        assert!(guard.refuses("10.2.0.1".parse().unwrap()));
        assert!(!guard.refuses("::1".parse().unwrap()));
        assert!(guard.refuses("127.0.0.1".parse().unwrap()));
        assert!(guard.refuses_literal_host(&url::Url::parse("http://169.254.169.254/").unwrap()));
        assert!(!guard.refuses_literal_host(&url::Url::parse("http://10.1.0.9:8080/").unwrap()));
    }
}
