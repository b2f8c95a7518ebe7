//! The gRPC server every service runs: its routes behind the [`AuthLayer`],
//! server reflection (open, listing only what is served), a span per call
//! continuing the caller's trace, gRPC-Web beside gRPC on the same port (for
//! browsers and admin tools that cannot speak HTTP/2 gRPC), and a graceful
//! stop: when `shutdown`
//! completes, health turns NOT_SERVING, the listener closes, in-flight calls
//! finish (at most 20 s), and idle connections close.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use tokio::net::TcpListener;
use tonic::{
    service::Routes,
    transport::{Server, server::TcpIncoming},
};

use crate::{
    auth::{AuthLayer, Verifier},
    health::Health,
};

/// The standard services every server also serves, and lists.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// How long in-flight calls may take to finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// After the last call, how long idle connections get to close themselves.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Counts calls in progress, so a stop waits for exactly those.
#[derive(Clone, Default)]
struct InFlight {
    count: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

impl InFlight {
    fn layer(&self) -> InFlightLayer {
        InFlightLayer(self.clone())
    }

    /// Completes when no call is in progress, or after `grace`.
    async fn drained(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let idle = self.idle.notified();
            let calls = self.count.load(Ordering::SeqCst);
            if calls == 0 {
                return;
            }
            tokio::select! {
                () = idle => {}
                () = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(calls, "grace period over; abandoning in-flight calls");
                    return;
                }
            }
        }
    }
}

/// Decrements the count when a call's response is ready (or dropped).
struct CallGuard(InFlight);

impl Drop for CallGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[derive(Clone)]
struct InFlightLayer(InFlight);

impl<S> tower::Layer<S> for InFlightLayer {
    type Service = InFlightService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        InFlightService {
            inner,
            in_flight: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct InFlightService<S> {
    inner: S,
    in_flight: InFlight,
}

/// A response body that keeps its call counted until it is fully sent.
struct CountedBody {
    inner: tonic::body::Body,
    _guard: CallGuard,
}

impl http_body::Body for CountedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<S, B> tower::Service<http::Request<B>> for InFlightService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.in_flight.count.fetch_add(1, Ordering::SeqCst);
        let guard = CallGuard(self.in_flight.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            // Counted until the last byte of the body (trailers included) went out.
            Ok(response.map(|inner| {
                tonic::body::Body::new(CountedBody {
                    inner,
                    _guard: guard,
                })
            }))
        })
    }
}

/// Binds `addr` (port 0 picks a free port; tests read it back).
pub async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    Ok(TcpListener::bind(addr).await?)
}

/// Serves `routes` on `listener` until `shutdown` completes.
///
/// `served` are the full gRPC names of the services in `routes` (for
/// example `support.v1.TicketService`): reflection lists exactly those plus
/// health and reflection, so `buf curl` and grpcurl users are shown only
/// what answers. `health` turns NOT_SERVING before the listener closes.
/// Services use this through [`crate::service::Service`].
pub async fn serve(
    listener: TcpListener,
    verifier: Verifier,
    routes: Routes,
    served: &[&str],
    health: &Health,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // v1 for current clients (buf curl, grpcurl), v1alpha for older ones.
    let reflection = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(helpdesk_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(HEALTH_SERVICE)
            .with_service_name(REFLECTION_V1)
            .with_service_name(REFLECTION_V1ALPHA);
        for name in served {
            builder = builder.with_service_name(*name);
        }
        builder
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let routes = routes
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let addr = listener.local_addr()?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let stopping = CancellationToken::new();
    let stop = {
        let stopping = stopping.clone();
        let health = health.clone();
        async move {
            shutdown.await;
            // Tell load balancers first, then stop accepting.
            health.stopping().await;
            tracing::info!("draining in-flight calls");
            stopping.cancel();
        }
    };

    tracing::info!(%addr, "gRPC server listening");
    let in_flight = InFlight::default();
    let server = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // gRPC-Web arrives over HTTP/1.1 as well as HTTP/2.
        .accept_http1(true)
        .trace_fn(|request| {
            // `/support.v1.TicketService/CreateTicket` -> span name
            // `support.v1.TicketService/CreateTicket` (OpenTelemetry's RPC naming).
            let path = request.uri().path();
            let (service, method) = path
                .trim_start_matches('/')
                .split_once('/')
                .unwrap_or((path, ""));
            let span = tracing::info_span!(
                "grpc",
                otel.name = path.trim_start_matches('/'),
                otel.kind = "server",
                rpc.system = "grpc",
                rpc.service = service,
                rpc.method = method,
                rpc = path,
            );
            // Continue the caller's trace (the gateway or another service).
            let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
            crate::telemetry::set_remote_parent(&span, header("traceparent"), header("tracestate"));
            span
        })
        // Outermost: gRPC-Web calls are translated to gRPC (trailers out of
        // the body, base64 text decoded) before any other layer sees them, so
        // counting, metrics and auth treat both protocols alike. Plain gRPC
        // passes through untouched. No CORS here: browsers reach us through
        // the gateway, which owns the origin policy.
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(in_flight.layer())
        .layer(crate::metrics::RpcMetricsLayer::new(
            served
                .iter()
                .map(|s| (*s).to_owned())
                .chain([HEALTH_SERVICE, REFLECTION_V1, REFLECTION_V1ALPHA].map(str::to_owned))
                .collect(),
        ))
        .layer(AuthLayer::new(verifier))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, stop);
    // tonic's drain also waits for idle keep-alive connections to go away,
    // which a gateway's pooled connections never do (hyperium/hyper#4170).
    // So the stop completes when the last in-flight call has answered, or
    // after the grace period, whichever comes first.
    tokio::select! {
        served = server => served?,
        () = async {
            stopping.cancelled().await;
            in_flight.drained(SHUTDOWN_GRACE).await;
            // Clients that heard the GOAWAY close their connections and the
            // drain above ends first; the rest are cut after this linger.
            tokio::time::sleep(CLOSE_LINGER).await;
        } => {}
    }
    tracing::info!("gRPC server stopped");
    Ok(())
}
