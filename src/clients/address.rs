//! Which picture addresses may be fetched. Picture links come from scraped or uploaded data, so
//! they are input: a link is fetched only over https, only from a host on the allow-list
//! (Instagram's CDN by default), and never from a private, loopback, link-local or otherwise
//! non-public address. The rule is checked on the link, on every redirect, and on every address
//! a host name resolves to (a public name that points inside is refused too).
//! `allow_local` lifts the scheme and address rules (never the host list) for tests and the
//! demo's own picture server; production refuses it.
//!
//! Owns: the address rule and the resolver that applies it. Uses: `config::PictureSettings`.

use std::net::{IpAddr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::PictureSettings;

/// Whether `ip` is an ordinary public address (not private, loopback, link-local, shared,
/// documentation, multicast, broadcast, unspecified or reserved).
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [first, second, ..] = a.octets();
            let shared = first == 100 && (64..128).contains(&second);
            let benchmarking = first == 198 && (second == 18 || second == 19);
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_documentation()
                || a.is_multicast()
                || shared
                || benchmarking
                || first == 0
                || first >= 240)
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = a.segments()[0];
            let unique_local = first & 0xfe00 == 0xfc00;
            let link_local = first & 0xffc0 == 0xfe80;
            let documentation = first == 0x2001 && a.segments()[1] == 0x0db8;
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || unique_local
                || link_local
                || documentation)
        }
    }
}

/// The rule for one client.
#[derive(Debug, Clone)]
pub struct AddressPolicy {
    hosts: Vec<String>,
    allow_local: bool,
}

impl From<&PictureSettings> for AddressPolicy {
    fn from(s: &PictureSettings) -> Self {
        let hosts = s
            .allowed_hosts
            .iter()
            .map(|h| h.trim().trim_start_matches('.').trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        Self { hosts, allow_local: s.allow_local }
    }
}

impl AddressPolicy {
    /// Whether local addresses are allowed (then no resolver filter is needed).
    #[must_use]
    pub fn allows_local(&self) -> bool {
        self.allow_local
    }

    fn host_listed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|allowed| host == *allowed || host.ends_with(&format!(".{allowed}")))
    }

    /// Why `url` may not be fetched, if it may not. The reason names the host, never the whole
    /// link (signed CDN links identify the person).
    ///
    /// # Errors
    /// The reason, for the picture's record.
    pub fn check(&self, url: &Url) -> Result<(), String> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_local => {}
            other => return Err(format!("only https picture links are fetched, not {other}")),
        }
        let name = url.host_str().ok_or("the picture link has no host")?;
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let ip = name.parse::<IpAddr>().ok();
        if !self.host_listed(name) {
            return Err(format!("host {name} is not on pictures.allowed_hosts"));
        }
        if let Some(ip) = ip.filter(|ip| !self.allow_local && !is_public(*ip)) {
            return Err(format!("address {ip} is not public"));
        }
        Ok(())
    }
}

/// The refusal of a name that resolves to no public address.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to no public address")]
pub struct NotPublic(pub String);

/// Resolves names with the system resolver and keeps public addresses only.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicResolver;

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = found.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(NotPublic(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], allow_local: bool) -> AddressPolicy {
        AddressPolicy { hosts: hosts.iter().map(|h| (*h).to_owned()).collect(), allow_local }
    }

    fn check(p: &AddressPolicy, url: &str) -> Result<(), String> {
        p.check(&Url::parse(url).expect("url"))
    }

    #[test]
    fn only_https_links_to_listed_hosts() {
        let p = policy(&["cdninstagram.com", "fbcdn.net"], false);
        assert!(check(&p, "https://scontent-dus1-1.cdninstagram.com/v/t51.2885-19/x.jpg?oe=1").is_ok());
        assert!(check(&p, "https://instagram.fdus1-1.fna.fbcdn.net/v/x.jpg").is_ok());
        assert!(check(&p, "https://CDNINSTAGRAM.COM./x.jpg").is_ok());
        assert!(check(&p, "http://scontent.cdninstagram.com/x.jpg").unwrap_err().contains("https"));
        assert!(check(&p, "https://evilcdninstagram.com/x.jpg").unwrap_err().contains("allowed_hosts"));
        assert!(check(&p, "https://cdninstagram.com.evil.net/x.jpg").is_err());
        assert!(check(&p, "https://127.0.0.1/x.jpg").is_err());
        assert!(check(&p, "file:///etc/passwd").is_err());
        let e = check(&p, "https://example.org/secret-signature?oh=abc").unwrap_err();
        assert!(!e.contains("secret-signature") && !e.contains("oh=abc"), "{e}");
    }

    #[test]
    fn listed_addresses_must_still_be_public() {
        let p = policy(&["127.0.0.1", "10.0.0.8", "169.254.169.254", "[::1]", "::1", "93.184.215.14"], false);
        for url in
            ["https://127.0.0.1/x", "https://10.0.0.8/x", "https://169.254.169.254/latest", "https://[::1]/x"]
        {
            assert!(check(&p, url).unwrap_err().contains("not public"), "{url}");
        }
        assert!(check(&p, "https://93.184.215.14/x").is_ok());
        let local = policy(&["127.0.0.1"], true);
        assert!(check(&local, "http://127.0.0.1:8080/x.jpg").is_ok());
        assert!(check(&local, "http://localhost:8080/x.jpg").is_err(), "the host list still holds");
    }

    #[test]
    fn public_means_public() {
        let public = |s: &str| is_public(s.parse().expect("ip"));
        for s in
            ["10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "169.254.1.1", "100.64.0.1", "0.0.0.0"]
        {
            assert!(!public(s), "{s}");
        }
        for s in
            ["::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2001:db8::1", "ff02::1"]
        {
            assert!(!public(s), "{s}");
        }
        for s in ["157.240.1.1", "31.13.64.1", "2a03:2880:f12d::1", "::ffff:157.240.1.1"] {
            assert!(public(s), "{s}");
        }
    }
}
