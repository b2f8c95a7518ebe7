//! Prometheus metrics: one process-wide registry, served in the text
//! exposition format (OpenMetrics 1.0, which Prometheus scrapes natively) on
//! a port of its own, so scraping never competes with gRPC traffic and never
//! passes the auth layer.
//!
//! - `METRICS_ADDR` (read into [`crate::config::CommonConfig::metrics_addr`]):
//!   where the endpoint listens; default `0.0.0.0:<gRPC port + 1000>` (51051
//!   for the ticket service), `off` disables it. Any path answers with the
//!   exposition; `/metrics` is the conventional one.
//! - Every crate registers its own families once, through [`register`]; the
//!   kit's are the per-RPC series (a tower layer on the gRPC server) and the
//!   database pool gauges (sampled by the dependency probe).
//!
//! The endpoint runs as a supervised task started by
//! [`crate::service::Service::run`], so it stops with the service.
//! Counters are exposed with the `_total` suffix.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, LazyLock, Mutex, PoisonError},
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use http_body_util::Full;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tokio::net::TcpListener;

use crate::tasks::Task;

/// The environment variable that places (or, set to `off`, disables) the endpoint.
pub const ENV: &str = "METRICS_ADDR";
/// How far above the gRPC port the metrics port sits by default.
pub const PORT_OFFSET: u16 = 1000;
/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(Registry::default()));

/// Registers families in the process-wide registry. Call it once per family
/// (typically from a `LazyLock` holding the handles).
pub fn register(add: impl FnOnce(&mut Registry)) {
    add(&mut REGISTRY.lock().unwrap_or_else(PoisonError::into_inner));
}

/// The current exposition of every registered series.
pub fn encode() -> String {
    // Registers the kit's families (a family is listed once it has a series).
    LazyLock::force(&KIT);
    let mut text = String::new();
    let registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        tracing::error!(%error, "encoding metrics failed");
    }
    text
}

/// A latency histogram's buckets in seconds: 1 ms to about 65 s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// A family of latency histograms with [`latency_histogram`] buckets.
pub type LatencyFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// A new [`LatencyFamily`].
pub fn latency_family<L: Clone + std::hash::Hash + Eq>() -> LatencyFamily<L> {
    Family::new_with_constructor(latency_histogram)
}

/// Where the endpoint listens, from `METRICS_ADDR` and the gRPC address.
pub fn addr_from_env(grpc: SocketAddr) -> anyhow::Result<Option<SocketAddr>> {
    parse_addr(std::env::var(ENV).ok().as_deref(), grpc)
}

fn parse_addr(raw: Option<&str>, grpc: SocketAddr) -> anyhow::Result<Option<SocketAddr>> {
    match raw.map(str::trim) {
        Some("off") => Ok(None),
        Some(raw) if !raw.is_empty() => raw
            .parse()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("environment variable {ENV}={raw:?} is invalid: {e}")),
        _ => {
            let port = grpc.port().checked_add(PORT_OFFSET).ok_or_else(|| {
                anyhow::anyhow!("gRPC port {} leaves no default {ENV}; set it", grpc.port())
            })?;
            Ok(Some(SocketAddr::new(
                std::net::Ipv4Addr::UNSPECIFIED.into(),
                port,
            )))
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    grpc_service: String,
    grpc_method: String,
    grpc_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_service: String,
    grpc_method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    database: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DatabaseLabels {
    database: String,
}

struct KitMetrics {
    handled: Family<RpcLabels, Counter>,
    handling: LatencyFamily<MethodLabels>,
    pool: Family<PoolLabels, Gauge>,
    pool_max: Family<DatabaseLabels, Gauge>,
}

static KIT: LazyLock<KitMetrics> = LazyLock::new(|| {
    let kit = KitMetrics {
        handled: Family::default(),
        handling: latency_family(),
        pool: Family::default(),
        pool_max: Family::default(),
    };
    register(|r| {
        r.register(
            "grpc_server_handled",
            "gRPC calls completed, by service, method and status code",
            kit.handled.clone(),
        );
        r.register(
            "grpc_server_handling_seconds",
            "Time from request to the last byte of the response (streams: their lifetime)",
            kit.handling.clone(),
        );
        r.register(
            "db_pool_connections",
            "Database pool connections by state (in_use, idle)",
            kit.pool.clone(),
        );
        r.register(
            "db_pool_max_connections",
            "Configured maximum size of the database pool",
            kit.pool_max.clone(),
        );
    });
    kit
});

/// Samples a pool's gauges (the dependency probe calls this).
pub(crate) fn sample_pool(pool: &sqlx::PgPool) {
    let database = pool
        .connect_options()
        .get_database()
        .unwrap_or("postgres")
        .to_owned();
    let size = i64::from(pool.size());
    let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
    let gauge = |state| {
        KIT.pool.get_or_create(&PoolLabels {
            database: database.clone(),
            state,
        })
    };
    gauge("in_use").set((size - idle).max(0));
    gauge("idle").set(idle);
    KIT.pool_max
        .get_or_create(&DatabaseLabels {
            database: database.clone(),
        })
        .set(i64::from(pool.options().get_max_connections()));
}

/// The metrics endpoint, bound; see the module doc.
pub(crate) fn endpoint_task(listener: TcpListener) -> Task {
    let listener = Arc::new(listener);
    Task::new("metrics-endpoint", move |ctx| {
        let listener = listener.clone();
        async move {
            let stop = ctx.stop().clone();
            loop {
                let (stream, _) = tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    accepted = listener.accept() => accepted?,
                };
                let stop = stop.clone();
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, hyper::service::service_fn(scrape));
                    tokio::select! {
                        _ = connection => {}
                        () = stop.cancelled() => {}
                    }
                });
            }
        }
    })
}

async fn scrape(
    _request: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let mut response = http::Response::new(Full::new(Bytes::from(encode())));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(CONTENT_TYPE),
    );
    Ok(response)
}

/// A tower layer counting and timing every gRPC call. Calls to paths outside
/// `known` (full gRPC service names) are recorded as `unknown`, so a stray
/// client cannot grow the label set.
#[derive(Clone)]
pub(crate) struct RpcMetricsLayer {
    known: Arc<Vec<String>>,
}

impl RpcMetricsLayer {
    pub(crate) fn new(known: Vec<String>) -> Self {
        LazyLock::force(&KIT);
        Self {
            known: Arc::new(known),
        }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcMetricsService {
            inner,
            known: self.known.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct RpcMetricsService<S> {
    inner: S,
    known: Arc<Vec<String>>,
}

/// Records one call when dropped: its code is the one seen in the response
/// headers or trailers, `CANCELLED` if the response never finished.
struct CallRecord {
    labels: MethodLabels,
    started: Instant,
    code: Option<tonic::Code>,
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(tonic::Code::Cancelled);
        if code == tonic::Code::Unimplemented {
            // Most likely a method nobody serves: do not keep its name.
            self.labels.grpc_method = "unknown".to_owned();
        }
        KIT.handled
            .get_or_create(&RpcLabels {
                grpc_service: self.labels.grpc_service.clone(),
                grpc_method: self.labels.grpc_method.clone(),
                grpc_code: code_name(code),
            })
            .inc();
        KIT.handling
            .get_or_create(&self.labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

fn status_of(headers: &http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .map(|v| tonic::Code::from_bytes(v.as_bytes()))
}

/// The response body, watched for its trailers.
struct RecordedBody {
    inner: tonic::body::Body,
    record: CallRecord,
}

impl http_body::Body for RecordedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_of) {
                    self.record.code = Some(code);
                }
            }
            Poll::Ready(Some(Err(status))) => self.record.code = Some(status.code()),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<S, B> tower::Service<http::Request<B>> for RpcMetricsService<S>
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
        let labels = method_labels(request.uri().path(), &self.known);
        let mut record = CallRecord {
            labels,
            started: Instant::now(),
            code: None,
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            // A trailers-only response (every error) carries its status here.
            record.code = status_of(response.headers());
            Ok(response.map(|inner| tonic::body::Body::new(RecordedBody { inner, record })))
        })
    }
}

fn method_labels(path: &str, known: &[String]) -> MethodLabels {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    match (parts.next(), parts.next()) {
        (Some(service), Some(method))
            if known.iter().any(|k| k == service)
                && !method.is_empty()
                && method.len() <= 128
                && !method.contains('/') =>
        {
            MethodLabels {
                grpc_service: service.to_owned(),
                grpc_method: method.to_owned(),
            }
        }
        _ => MethodLabels {
            grpc_service: "unknown".to_owned(),
            grpc_method: "unknown".to_owned(),
        },
    }
}

/// The canonical name of a gRPC status code, as other gRPC metrics use it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A gauge holding a float (ages, durations).
pub type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// The value of `series` (a name with its labels exactly as exposed, e.g.
/// `events_consumed_total{queue="q"}`) in an exposition; for tests and probes.
pub fn value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .split(' ')
            .next()?
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_defaults_to_the_grpc_port_plus_1000_and_can_be_turned_off() {
        let grpc: SocketAddr = "0.0.0.0:50051".parse().unwrap();
        assert_eq!(
            parse_addr(None, grpc).unwrap(),
            Some("0.0.0.0:51051".parse().unwrap())
        );
        assert_eq!(parse_addr(Some("off"), grpc).unwrap(), None);
        assert_eq!(
            parse_addr(Some("127.0.0.1:9100"), grpc).unwrap(),
            Some("127.0.0.1:9100".parse().unwrap())
        );
        assert!(parse_addr(Some("nine"), grpc).is_err());
    }

    #[test]
    fn unknown_paths_do_not_grow_the_label_set() {
        let known = vec!["support.v1.TicketService".to_owned()];
        let labels = method_labels("/support.v1.TicketService/CreateTicket", &known);
        assert_eq!(labels.grpc_method, "CreateTicket");
        assert_eq!(
            method_labels("/evil.Service/Anything", &known).grpc_service,
            "unknown"
        );
    }
}
