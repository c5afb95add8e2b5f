//! CORS for browsers calling over gRPC-web: only configured origins, mirrored back (never `*`), with the
//! request and response headers of the contract.

use std::{sync::Arc, time::Duration};

use http::{HeaderName, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Headers a browser may send.
pub const ALLOWED_HEADERS: [&str; 7] = [
    "authorization",
    "idempotency-key",
    "x-correlation-id",
    "x-grpc-web",
    "content-type",
    "grpc-timeout",
    "x-user-agent",
];
/// Response headers a browser script may read.
pub const EXPOSED_HEADERS: [&str; 5] =
    ["grpc-status", "grpc-message", "grpc-status-details-bin", "x-correlation-id", "idempotent-replayed"];

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

pub fn cors_layer(origins: &[OriginPattern]) -> CorsLayer {
    let origins: Arc<[OriginPattern]> = origins.into();
    let header_names = |names: &[&'static str]| names.iter().map(|n| HeaderName::from_static(n)).collect::<Vec<_>>();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin.to_str().is_ok_and(|origin| origins.iter().any(|pattern| pattern.matches(origin)))
        }))
        .allow_credentials(true)
        .allow_methods([Method::POST])
        .allow_headers(header_names(&ALLOWED_HEADERS))
        .expose_headers(header_names(&EXPOSED_HEADERS))
        .max_age(Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

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
