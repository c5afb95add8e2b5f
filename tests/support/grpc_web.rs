//! A minimal gRPC-web client over plain HTTP/1.1, written from the wire format (not tonic-web's client),
//! so the tests check what a browser really sends and receives.

use std::{collections::HashMap, net::SocketAddr};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use bytes::{Buf as _, Bytes};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/grpc-web+proto`
    Binary,
    /// `application/grpc-web-text` (base64)
    Text,
}

#[derive(Debug)]
pub struct WebResponse {
    pub http_status: StatusCode,
    pub headers: HeaderMap,
    pub messages: Vec<Bytes>,
    /// Trailers sent in the body's trailer frame.
    pub trailers: HashMap<String, String>,
}

impl WebResponse {
    /// `grpc-status`, from the trailer frame or, for trailers-only responses, the headers.
    pub fn grpc_status(&self) -> Option<i32> {
        self.trailers
            .get("grpc-status")
            .cloned()
            .or_else(|| self.headers.get("grpc-status").and_then(|v| v.to_str().ok()).map(str::to_owned))
            .and_then(|s| s.parse().ok())
    }

    /// The rich status, rebuilt from whichever of trailers or headers carried it.
    pub fn status(&self) -> tonic::Status {
        let mut map = self.headers.clone();
        for (name, value) in &self.trailers {
            map.insert(http::HeaderName::try_from(name.as_str()).unwrap(), value.parse().unwrap());
        }
        tonic::Status::from_header_map(&map).expect("grpc-status present")
    }

    pub fn decode<M: prost::Message + Default>(&self) -> M {
        assert_eq!(self.messages.len(), 1, "one message: {self:?}");
        M::decode(self.messages[0].clone()).expect("message decodes")
    }
}

/// Calls `path` with `message` framed as gRPC-web, with extra request headers (e.g. `origin`).
pub async fn call(
    addr: SocketAddr,
    path: &str,
    message: &impl prost::Message,
    encoding: Encoding,
    headers: &[(&str, &str)],
) -> WebResponse {
    call_raw(addr, path, &message.encode_to_vec(), encoding, headers).await
}

/// Like [`call`] with already-encoded message bytes (which may be garbage on purpose).
pub async fn call_raw(
    addr: SocketAddr,
    path: &str,
    payload: &[u8],
    encoding: Encoding,
    headers: &[(&str, &str)],
) -> WebResponse {
    call_over(http::Version::HTTP_11, addr, path, payload, encoding, headers).await
}

/// Like [`call_raw`] over the given HTTP version (HTTP/2 is spoken with prior knowledge, as proxies do).
pub async fn call_over(
    version: http::Version,
    addr: SocketAddr,
    path: &str,
    payload: &[u8],
    encoding: Encoding,
    headers: &[(&str, &str)],
) -> WebResponse {
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    let (content_type, body) = match encoding {
        Encoding::Binary => ("application/grpc-web+proto", frame),
        Encoding::Text => ("application/grpc-web-text", STANDARD.encode(frame).into_bytes()),
    };
    let mut request = Request::post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .header("x-grpc-web", "1")
        .header("accept", content_type);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from(body))).expect("request");
    let client =
        Client::builder(TokioExecutor::new()).http2_only(version == http::Version::HTTP_2).build_http::<Full<Bytes>>();
    let response = client.request(request).await.expect("HTTP exchange");
    assert_eq!(response.version(), version);
    let (parts, body) = response.into_parts();
    let raw = body.collect().await.expect("body").to_bytes();
    let raw = match encoding {
        Encoding::Binary => raw,
        Encoding::Text => decode_text(&raw),
    };
    let (messages, trailers) = parse_frames(raw);
    WebResponse { http_status: parts.status, headers: parts.headers, messages, trailers }
}

/// grpc-web-text bodies are base64 chunks, each possibly padded; every 4-character group decodes alone.
fn decode_text(raw: &[u8]) -> Bytes {
    let mut out = Vec::new();
    for quad in raw.chunks(4) {
        out.extend(STANDARD.decode(quad).expect("base64 group"));
    }
    Bytes::from(out)
}

fn parse_frames(mut raw: Bytes) -> (Vec<Bytes>, HashMap<String, String>) {
    let mut messages = Vec::new();
    let mut trailers = HashMap::new();
    while raw.has_remaining() {
        let flag = raw.get_u8();
        let len = raw.get_u32() as usize;
        let payload = raw.split_to(len);
        if flag & 0x80 != 0 {
            for line in String::from_utf8_lossy(&payload).split("\r\n").filter(|l| !l.is_empty()) {
                let (name, value) = line.split_once(':').expect("trailer line");
                trailers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        } else {
            messages.push(payload);
        }
    }
    (messages, trailers)
}
