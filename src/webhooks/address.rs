//! Which addresses a webhook may reach. Without the operator's leave
//! (`--allow-private-webhooks`), a webhook cannot point into the server's
//! own network: loopback, private, link-local (the cloud metadata
//! addresses among them), CGNAT, unspecified, multicast and the like are
//! refused, when the webhook is subscribed and again, after DNS
//! resolution, at every delivery, so that a name which later resolves to
//! 127.0.0.1 is still refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

/// How long resolving a webhook's host may take (a subscribe waits for it).
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether deliveries may go to internal addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddressPolicy {
    pub allow_private: bool,
}

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the url is not a valid absolute URL")]
    Malformed,
    #[error("the url must start with http:// or https://")]
    Scheme,
    #[error("the url must not carry a user name or password")]
    Credentials,
    #[error("the url's host could not be resolved")]
    Unresolved,
    #[error("the url's host resolves to {0}, an internal address")]
    Internal(IpAddr),
}

impl AddressPolicy {
    /// Checks what can be checked without DNS: an absolute http(s) URL,
    /// and its host when it is an IP address.
    pub fn check_url(&self, url: &str) -> Result<Url, Refused> {
        let parsed = Url::parse(url).map_err(|_| Refused::Malformed)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Refused::Scheme);
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Refused::Credentials);
        }
        match parsed.host() {
            None => return Err(Refused::Malformed),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip))?,
            Some(url::Host::Domain(_)) => {}
        }
        Ok(parsed)
    }

    /// Checks the URL and every address its host resolves to.
    pub async fn check_resolved(&self, url: &str) -> Result<Url, Refused> {
        let parsed = self.check_url(url)?;
        if let Some(url::Host::Domain(host)) = parsed.host() {
            let port = parsed.port_or_known_default().unwrap_or(80);
            self.resolve(host, port).await?;
        }
        Ok(parsed)
    }

    /// Resolves `host`, refusing it when any address is internal (a name
    /// with one public and one private address could be steered to the
    /// private one).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        let lookup = tokio::net::lookup_host((host, port));
        let addresses: Vec<SocketAddr> = tokio::time::timeout(RESOLVE_TIMEOUT, lookup)
            .await
            .map_err(|_| Refused::Unresolved)?
            .map_err(|_| Refused::Unresolved)?
            .collect();
        if addresses.is_empty() {
            return Err(Refused::Unresolved);
        }
        for address in &addresses {
            self.check_ip(address.ip())?;
        }
        Ok(addresses)
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        if self.allow_private || is_public(ip) {
            Ok(())
        } else {
            Err(Refused::Internal(ip))
        }
    }
}

/// Whether `ip` is an ordinary address on the internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(ip)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // CGNAT, 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local (fc00::/7, where fd00:ec2::254 is a metadata
        // address) and link-local (fe80::/10).
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // NAT64 (64:ff9b::/96) would reach any IPv4 address behind it.
        || (first == 0x64 && ip.segments()[1] == 0xff9b)
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0xdb8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        AddressPolicy::default().check_url(url).is_err()
    }

    #[test]
    fn internal_addresses_are_refused() {
        for url in [
            "http://127.0.0.1/hook",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "ftp://example.com/",
            "javascript:alert(1)",
            "http://user:pass@example.com/",
            "not a url",
        ] {
            assert!(refused(url), "{url} must be refused");
        }
    }

    #[test]
    fn public_addresses_and_names_pass_the_first_check() {
        for url in [
            "https://93.184.216.34/hook",
            "http://[2606:2800:220:1::]/",
            "https://hooks.example.com/callbell",
        ] {
            assert!(!refused(url), "{url} must pass");
        }
    }

    #[test]
    fn the_operator_may_allow_internal_addresses() {
        let policy = AddressPolicy {
            allow_private: true,
        };
        assert!(policy.check_url("http://127.0.0.1:9000/").is_ok());
        assert!(policy.check_url("ftp://127.0.0.1/").is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused() {
        let policy = AddressPolicy::default();
        assert!(matches!(
            policy.check_resolved("http://localhost:9/").await,
            Err(Refused::Internal(_))
        ));
    }
}
