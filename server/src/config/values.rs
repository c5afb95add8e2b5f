//! The plain values configuration is made of, parsed and checked here so that a bad setting names its key
//! at start-up. The layers and infra build their own types from them; configuration depends on nothing else
//! in the server.

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

/// Shortest accepted token signing secret.
pub const MIN_SECRET_BYTES: usize = 32;

/// `burst` calls per `period`, refilled evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub burst: NonZeroU32,
    pub period: Duration,
}

impl Quota {
    /// Parses `N/S`: N calls per S seconds, e.g. `20/60`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || format!("{text:?} is not CALLS/SECONDS, e.g. 20/60");
        let (calls, seconds) = text.split_once('/').ok_or_else(invalid)?;
        let burst = calls.trim().parse::<NonZeroU32>().map_err(|_| invalid())?;
        let seconds = seconds.trim().parse::<u64>().ok().filter(|s| (1..=86_400).contains(s)).ok_or_else(invalid)?;
        Ok(Self { burst, period: Duration::from_secs(seconds) })
    }
}

/// An allowed origin: `scheme://host[:port]`, or `scheme://host:*` for any port of that host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    /// `scheme://host`
    base: String,
    /// `None` = any port (or none); `Some("")` = no port; `Some("8080")` = that port.
    port: Option<String>,
}

impl OriginPattern {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let invalid = || format!("{pattern:?} is not an origin like http://localhost:* or https://app.example.com");
        let (scheme, rest) = pattern.split_once("://").ok_or_else(invalid)?;
        if !matches!(scheme, "http" | "https")
            || rest.is_empty()
            || (rest.contains(['/', '*', '?', '#', ' ']) && !rest.ends_with(":*"))
        {
            return Err(invalid());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, "*")) => (host, None),
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                (host, Some(port.to_owned()))
            }
            Some(_) => return Err(invalid()),
            None => (rest, Some(String::new())),
        };
        if host.is_empty() || host.contains(['*', '/']) {
            return Err(invalid());
        }
        Ok(Self { base: format!("{scheme}://{host}"), port })
    }

    pub fn matches(&self, origin: &str) -> bool {
        let Some(rest) = origin.strip_prefix(self.base.as_str()) else {
            return false;
        };
        match (&self.port, rest.strip_prefix(':')) {
            (None, None) => rest.is_empty(),
            (None, Some(port)) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
            (Some(wanted), None) => wanted.is_empty() && rest.is_empty(),
            (Some(wanted), Some(port)) => port == wanted,
        }
    }
}

/// An IP network, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || format!("{text:?} is not an address or network such as 10.0.0.0/8 or fd00::/8");
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| invalid())?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().ok().filter(|p| *p <= bits).ok_or_else(invalid)?,
            None => bits,
        };
        Ok(Self { network, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        // An IPv4 client seen through an IPv6 socket arrives as ::ffff:a.b.c.d.
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_parse_calls_per_seconds() {
        let quota = Quota::parse("20/60").unwrap();
        assert_eq!((quota.burst.get(), quota.period), (20, Duration::from_secs(60)));
        for bad in ["", "20", "0/60", "20/0", "x/60", "20/86401", "-1/5"] {
            assert!(Quota::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcard_ports_match_any_port_of_that_host_only() {
        let pattern = OriginPattern::parse("http://localhost:*").unwrap();
        for allowed in ["http://localhost:5173", "http://localhost:1", "http://localhost"] {
            assert!(pattern.matches(allowed), "{allowed}");
        }
        for denied in [
            "https://localhost:5173",
            "http://localhost.evil.com:80",
            "http://localhost:",
            "http://localhost:80x",
            "http://evil.com",
        ] {
            assert!(!pattern.matches(denied), "{denied}");
        }
    }

    #[test]
    fn exact_origins_match_exactly() {
        let pattern = OriginPattern::parse("https://app.example.com").unwrap();
        assert!(pattern.matches("https://app.example.com"));
        assert!(!pattern.matches("https://app.example.com:8443"));
        assert!(!pattern.matches("https://app.example.com.evil.io"));
        let with_port = OriginPattern::parse("http://127.0.0.1:8080").unwrap();
        assert!(with_port.matches("http://127.0.0.1:8080") && !with_port.matches("http://127.0.0.1:8081"));
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for bad in ["*", "localhost", "ftp://x", "http://", "http://*.example.com", "http://x/path", "http://x:port"] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
