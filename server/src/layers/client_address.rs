//! The address of the client behind a call, for rate limits and sign-in attempt counts.
//!
//! The TCP peer is the client unless it is a trusted proxy (`AEROBOOK_TRUSTED_PROXIES`, e.g. the load
//! balancer in front of gRPC-web). Only then are `Forwarded` (RFC 7239) and `X-Forwarded-For` read, from
//! the right: the first address that is not itself a trusted proxy is the client. Anything left of it was
//! written by the client and proves nothing, so a caller cannot pick its own address.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use http::HeaderMap;
use tonic::transport::server::TcpConnectInfo;

use crate::config::Cidr;

/// The client's address, set on every call's extensions by [`resolve_client_address`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub Option<IpAddr>);

impl ClientAddress {
    pub fn of(extensions: &http::Extensions) -> Self {
        extensions.get::<ClientAddress>().copied().unwrap_or(ClientAddress(None))
    }

    /// How rate limits name an anonymous caller.
    pub fn principal(&self) -> String {
        match self.0 {
            Some(address) => format!("ip:{address}"),
            None => "ip:unknown".to_owned(),
        }
    }
}

pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(proxies: Vec<Cidr>) -> Arc<Self> {
        Arc::new(Self(proxies))
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(address))
    }

    /// The client of a call from `peer` carrying `headers`.
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        let forwarded = forwarded_for(headers);
        let chain = if forwarded.is_empty() { x_forwarded_for(headers) } else { forwarded };
        // Right to left: each hop appended the address it received the call from.
        chain.into_iter().rev().find(|hop| !self.trusts(*hop)).or(Some(peer))
    }
}

pub async fn resolve_client_address(
    State(proxies): State<Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request.extensions().get::<TcpConnectInfo>().and_then(TcpConnectInfo::remote_addr).map(|a| a.ip());
    let client = proxies.client(peer, request.headers());
    request.extensions_mut().insert(ClientAddress(client));
    next.run(request).await
}

/// Addresses of the `for=` parameters of every `Forwarded` header, in order. Obfuscated identifiers
/// (`for=_hidden`, `for=unknown`) end the chain: nothing to their left can be placed.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let mut chain = Vec::new();
    for value in headers.get_all("forwarded").iter().filter_map(|v| v.to_str().ok()) {
        for element in value.split(',') {
            for pair in element.split(';') {
                let Some((name, value)) = pair.trim().split_once('=') else { continue };
                if name.trim().eq_ignore_ascii_case("for") {
                    chain.push(node_address(value.trim().trim_matches('"')));
                }
            }
        }
    }
    truncate_at_unknown(chain)
}

fn x_forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let chain = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|hop| node_address(hop.trim()))
        .collect();
    truncate_at_unknown(chain)
}

/// Keeps the hops right of the last one that is not an address.
fn truncate_at_unknown(chain: Vec<Option<IpAddr>>) -> Vec<IpAddr> {
    let start = chain.iter().rposition(Option::is_none).map_or(0, |i| i + 1);
    chain[start..].iter().flatten().copied().collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711` or `2001:db8::1`.
fn node_address(node: &str) -> Option<IpAddr> {
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| node.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies(list.iter().map(|c| Cidr::parse(c).unwrap()).collect())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn forwarding_headers_are_believed_only_from_trusted_proxies() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let forwarded = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(trusted.client(ip("198.51.100.1"), &forwarded), ip("198.51.100.1"), "an untrusted peer");
        assert_eq!(trusted.client(ip("10.0.0.2"), &forwarded), ip("203.0.113.7"));
        assert_eq!(proxies(&[]).client(ip("10.0.0.2"), &forwarded), ip("10.0.0.2"), "no proxy is trusted by default");
        assert_eq!(trusted.client(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"), "a proxy's own call");
        assert_eq!(trusted.client(None, &forwarded), None);
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop_so_spoofed_entries_do_not_count() {
        let trusted = proxies(&["10.0.0.0/8", "fd00::/8"]);
        let spoofed = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.9")]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &spoofed), ip("203.0.113.7"));
        let split = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "203.0.113.8")]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &split), ip("203.0.113.8"));
        let rfc = headers(&[("forwarded", r#"for=1.1.1.1, for="[2001:db8::5]:4711";proto=https, for=10.1.1.1"#)]);
        assert_eq!(trusted.client(ip("fd00::1"), &rfc), ip("2001:db8::5"), "Forwarded wins over X-Forwarded-For");
        let hidden = headers(&[("forwarded", "for=1.1.1.1, for=_hidden, for=10.1.1.1")]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &hidden), ip("10.0.0.2"), "nothing placeable beyond the proxies");
        let garbage = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &garbage), ip("10.0.0.2"));
    }
}
