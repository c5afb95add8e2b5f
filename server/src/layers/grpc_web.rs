//! Sends gRPC-web requests (binary and text) through tonic-web's translation and everything else straight
//! to the routes. tonic-web alone answers any other HTTP/1.1 request with 400, which would shut out plain
//! HTTP routes such as webhooks on the shared port.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use http::{Request, Response, header::CONTENT_TYPE};
use tonic::body::Body;
use tonic_web::{GrpcWebLayer, GrpcWebService};
use tower::{Layer, Service, ServiceExt as _};

#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcWebOrPlainLayer;

impl<S: Clone> Layer<S> for GrpcWebOrPlainLayer {
    type Service = GrpcWebOrPlain<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcWebOrPlain { web: GrpcWebLayer::new().layer(inner.clone()), plain: inner }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcWebOrPlain<S> {
    web: GrpcWebService<S>,
    plain: S,
}

fn is_grpc_web<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|content_type| content_type.starts_with("application/grpc-web"))
}

impl<S> Service<Request<Body>> for GrpcWebOrPlain<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is checked per call on the branch actually taken (see `call`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if is_grpc_web(&request) {
            Box::pin(self.web.clone().oneshot(request))
        } else {
            Box::pin(self.plain.clone().oneshot(request))
        }
    }
}
