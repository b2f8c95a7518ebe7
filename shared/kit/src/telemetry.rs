//! Logs and traces, the same in every service.
//!
//! **Traces.** Every span goes through `tracing-opentelemetry`, so each has
//! a W3C trace id and span id, continues the caller's or producer's trace
//! ([`set_remote_parent`], [`follow`]) and carries it on ([`current_trace`]).
//! Spans are exported over OTLP/gRPC only when an endpoint is configured
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`). Every
//! other standard `OTEL_*` variable is read by the OpenTelemetry SDK and
//! exporter themselves (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_*`); we only
//! supply defaults for `service.name`, `service.version` and
//! `service.instance.id`, which those variables override.
//!
//! Without an endpoint nothing is exported and, unless `OTEL_TRACES_SAMPLER`
//! says otherwise, spans of traces started here are not sampled
//! (`parentbased_always_off`): no span data is kept. Their ids still exist
//! and still travel, so logs of one request join on `trace_id` across
//! services with no collector at all, and a sampled trace coming in stays
//! sampled for the services downstream.
//!
//! **Logs.** JSON lines on stdout (`LOG_FORMAT=text` for humans), filtered
//! by `RUST_LOG` (default `info`). A line emitted inside a span carries that
//! span's `trace_id` and `span_id` ([`TraceIds`]).

use std::{
    collections::HashMap,
    fmt,
    hash::Hash,
    sync::{Arc, Mutex, OnceLock},
};

use opentelemetry::{
    KeyValue,
    propagation::TextMapPropagator,
    trace::{SpanContext, TraceContextExt, TracerProvider as _},
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    resource::{EnvResourceDetector, TelemetryResourceDetector},
    trace::{Sampler, SdkTracerProvider},
};
use tracing::{Dispatch, Event, Subscriber, dispatcher::WeakDispatch};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer,
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

/// Keeps the exporter alive; flushes spans when dropped at shutdown.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // shutdown() blocks; run it off the async workers.
            let _ = std::thread::spawn(move || provider.shutdown()).join();
        }
    }
}

/// Whether the standard variables ask for span export.
pub fn exporting() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let is = |name: &str, value: &str| {
        std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value))
    };
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && !is("OTEL_SDK_DISABLED", "true")
        && !is("OTEL_TRACES_EXPORTER", "none")
}

/// `service.name` (`name`), `service.version` (`version`) and a
/// `service.instance.id` unique to this process, each overridden by
/// `OTEL_RESOURCE_ATTRIBUTES`; `service.name` by `OTEL_SERVICE_NAME` first.
fn resource(name: &'static str, version: &'static str) -> Resource {
    let builder = Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", name),
            KeyValue::new("service.version", version),
            KeyValue::new("service.instance.id", uuid::Uuid::new_v4().to_string()),
        ])
        .with_detectors(&[
            Box::new(TelemetryResourceDetector),
            Box::new(EnvResourceDetector::new()),
        ]);
    match std::env::var("OTEL_SERVICE_NAME") {
        Ok(name) if !name.trim().is_empty() => builder.with_service_name(name),
        _ => builder,
    }
    .build()
}

/// Installs the global subscriber. Call once, inside the tokio runtime (the
/// OTLP exporter needs it). A second call (tests) is a no-op.
pub fn init(name: &'static str, version: &'static str) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = TraceIds::new(
        tracing_subscriber::fmt::format()
            .json()
            .flatten_event(true)
            // The span the line is in, with its fields; its ancestors are
            // in the trace (`trace_id`).
            .with_current_span(true)
            .with_span_list(false),
    );
    let slot = json.slot();
    let fmt = if std::env::var("LOG_FORMAT").as_deref() == Ok("text") {
        tracing_subscriber::fmt::layer().boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .event_format(json)
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .boxed()
    };

    let exporting = exporting();
    let mut provider = SdkTracerProvider::builder().with_resource(resource(name, version));
    if exporting {
        // Endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*. Our default
        // timeout is 3 s, not the SDK's 10 s: the last flush at a stop
        // must not hold the exit long when the collector is away.
        let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic();
        if std::env::var_os("OTEL_EXPORTER_OTLP_TIMEOUT").is_none()
            && std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT").is_none()
        {
            exporter = exporter.with_timeout(std::time::Duration::from_secs(3));
        }
        let exporter = exporter.build()?;
        provider = provider.with_batch_exporter(exporter);
    } else if std::env::var_os("OTEL_TRACES_SAMPLER").is_none() {
        provider = provider.with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
    }
    let provider = provider.build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(name))
        // Thread and source location on every span: noise at our volume.
        .with_threads(false)
        .with_location(false);

    let dispatch = Dispatch::new(
        tracing_subscriber::registry()
            .with(filter)
            .with(otel)
            .with(fmt),
    );
    slot.attach(&dispatch);
    let _ = dispatch.try_init();
    Ok(TelemetryGuard {
        provider: exporting.then_some(provider),
    })
}

/// For tests: human-readable logs when `TEST_LOG` is set, silence otherwise.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
            )
            .with_test_writer()
            .try_init();
    }
}

/// A JSON event formatter that puts the `trace_id` and `span_id` of the
/// span an event was emitted in at the front of its line (the
/// `tracing-subscriber` JSON format has no such fields). Lines outside any
/// span have neither.
///
/// The ids live in the OpenTelemetry layer's span data, reached through the
/// dispatcher; while an event is being dispatched the current-dispatcher
/// lookup answers "none" (it guards against recursion), so the formatter
/// keeps a weak handle of its own, set once the subscriber is built
/// ([`TraceIds::attach`]).
pub struct TraceIds<F> {
    inner: F,
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl<F> TraceIds<F> {
    /// Wraps `inner` (a JSON formatter).
    pub fn new(inner: F) -> Self {
        Self {
            inner,
            dispatch: Arc::default(),
        }
    }

    /// A handle to give the built subscriber's dispatcher to.
    pub fn slot(&self) -> DispatchSlot {
        DispatchSlot(self.dispatch.clone())
    }
}

/// Where [`TraceIds`] learns its dispatcher.
#[derive(Clone)]
pub struct DispatchSlot(Arc<OnceLock<WeakDispatch>>);

impl DispatchSlot {
    /// Tells the formatter which dispatcher holds its spans.
    pub fn attach(&self, dispatch: &Dispatch) {
        let _ = self.0.set(dispatch.downgrade());
    }
}

impl<S, N, F> FormatEvent<S, N> for TraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let span = ctx.event_scope().and_then(|mut scope| scope.next());
        let dispatch = self.dispatch.get().and_then(WeakDispatch::upgrade);
        let ids = span.zip(dispatch).and_then(|(span, dispatch)| {
            let context = tracing_opentelemetry::get_otel_context(&span.id(), &dispatch)?;
            let span = context.span();
            let ids = span.span_context();
            ids.is_valid().then(|| (ids.trace_id(), ids.span_id()))
        });
        let Some((trace_id, span_id)) = ids else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(
                writer,
                r#"{{"trace_id":"{trace_id}","span_id":"{span_id}",{rest}"#
            ),
            None => writer.write_str(&line),
        }
    }
}

/// W3C trace context: what crosses process boundaries (gRPC metadata,
/// AMQP headers, the outbox row) so one trace spans every service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// The W3C `traceparent` header value.
    pub traceparent: String,
    /// Vendor state; carried as is when present.
    pub tracestate: Option<String>,
}

/// The trace context of the current span (`None` outside any span).
pub fn current_trace() -> Option<TraceContext> {
    trace_of(&tracing::Span::current())
}

/// The trace context of `span`, to carry to another process or task.
pub fn trace_of(span: &tracing::Span) -> Option<TraceContext> {
    let context = span.context();
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    Some(TraceContext {
        traceparent: carrier.remove("traceparent")?,
        tracestate: carrier.remove("tracestate").filter(|s| !s.is_empty()),
    })
}

/// The span context a `traceparent` (and `tracestate`) names, if valid.
pub fn remote_context(traceparent: &str, tracestate: Option<&str>) -> Option<SpanContext> {
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    if let Some(tracestate) = tracestate {
        carrier.insert("tracestate".to_owned(), tracestate.to_owned());
    }
    let context = TraceContextPropagator::new().extract(&carrier);
    let span = context.span().span_context().clone();
    span.is_valid().then_some(span)
}

/// Makes `span` a child of a remote trace context (a server continuing its
/// caller's trace, a consumer continuing the producer's). Call before the
/// span is first entered.
pub fn set_remote_parent(
    span: &tracing::Span,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) {
    if let Some(parent) = traceparent.and_then(|t| remote_context(t, tracestate)) {
        follow(span, [parent]);
    }
}

/// Ties a span that works for others (a batch, a task woken by them) to
/// their traces: when they all belong to one trace, `span` becomes a child
/// of the first, so a single request still reads as one trace; when they
/// belong to several, `span` starts its own trace with a link to each
/// (OpenTelemetry's way for one operation serving many). Call before the
/// span is first entered.
pub fn follow(span: &tracing::Span, causes: impl IntoIterator<Item = SpanContext>) {
    let causes: Vec<SpanContext> = causes.into_iter().filter(|c| c.is_valid()).collect();
    let Some(first) = causes.first() else {
        return;
    };
    if causes.iter().all(|c| c.trace_id() == first.trace_id()) {
        let parent = opentelemetry::Context::new().with_remote_span_context(first.clone());
        let _ = span.set_parent(parent);
    } else {
        for cause in causes {
            span.add_link(cause);
        }
    }
}

/// The span context of `span` (invalid when tracing is not installed).
pub fn span_context(span: &tracing::Span) -> SpanContext {
    span.context().span().span_context().clone()
}

/// Remembers, per key, the span that caused later work in this process
/// (a ticket queued by an event, a delivery stored by one), so the task
/// that does that work can [`follow`] it. Bounded: past `capacity` keys
/// the map is emptied (the worst case is a trace that is not continued).
/// In memory: work picked up by another replica or after a restart starts
/// its own trace.
pub struct Causes<K> {
    map: Mutex<HashMap<K, SpanContext>>,
    capacity: usize,
}

impl<K: Eq + Hash> Causes<K> {
    /// An empty map holding at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Remembers the current span as the cause of the work on `key`, when
    /// it is sampled (an unsampled trace is not worth the memory: the work
    /// then logs under ids of its own).
    pub fn remember(&self, key: K) {
        let cause = span_context(&tracing::Span::current());
        if !cause.is_sampled() {
            return;
        }
        let mut map = self.map.lock().expect("causes lock");
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(key, cause);
    }

    /// The cause remembered for `key`.
    pub fn get(&self, key: &K) -> Option<SpanContext> {
        self.map.lock().expect("causes lock").get(key).cloned()
    }

    /// Forgets the cause of `key` (its work is done).
    pub fn forget(&self, key: &K) {
        self.map.lock().expect("causes lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex as StdMutex};

    use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    fn otel() -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync {
        let provider = SdkTracerProvider::builder().build();
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
    }

    #[test]
    fn a_consumer_span_continues_the_producers_trace() {
        tracing::subscriber::with_default(otel(), || {
            let producer = tracing::info_span!("producer");
            let traceparent = producer
                .in_scope(current_trace)
                .expect("a trace context")
                .traceparent;
            let producer_trace = producer.context().span().span_context().trace_id();
            assert!(
                traceparent.contains(&producer_trace.to_string()),
                "{traceparent}"
            );

            let consumer = tracing::info_span!("consumer");
            set_remote_parent(&consumer, Some(&traceparent), Some("vendor=1"));
            assert_eq!(
                consumer.context().span().span_context().trace_id(),
                producer_trace
            );
        });
        assert!(
            tracing::subscriber::with_default(tracing_subscriber::registry(), current_trace)
                .is_none()
        );
    }

    #[test]
    fn a_batch_of_one_trace_is_its_child_and_of_many_links_them() {
        tracing::subscriber::with_default(otel(), || {
            let a = span_context(&tracing::info_span!("a"));
            let b = span_context(&tracing::info_span!("b"));
            assert_ne!(a.trace_id(), b.trace_id());

            let one = tracing::info_span!("one");
            follow(&one, [a.clone(), a.clone()]);
            assert_eq!(span_context(&one).trace_id(), a.trace_id());

            let many = tracing::info_span!("many");
            follow(&many, [a.clone(), b.clone()]);
            let own = span_context(&many).trace_id();
            assert!(own != a.trace_id() && own != b.trace_id());

            let causes = Causes::new(1);
            tracing::info_span!("cause").in_scope(|| causes.remember(1));
            tracing::info_span!("other").in_scope(|| causes.remember(2));
            assert!(causes.get(&1).is_none(), "over capacity: forgotten");
            assert!(causes.get(&2).is_some());
            causes.forget(&2);
            assert!(causes.get(&2).is_none(), "forgotten");
        });
    }

    /// Collects what the formatter writes.
    #[derive(Clone, Default)]
    struct Lines(Arc<StdMutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_inside_a_span_carry_its_trace_and_span_ids() {
        let lines = Lines::default();
        let writer = lines.clone();
        // As `init` without an exporter: ids exist though nothing is sampled.
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
            .build();
        let json = TraceIds::new(tracing_subscriber::fmt::format().json().flatten_event(true));
        let slot = json.slot();
        let dispatch = Dispatch::new(
            tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
                .with(
                    tracing_subscriber::fmt::layer()
                        .event_format(json)
                        .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                        .with_writer(move || writer.clone()),
                ),
        );
        slot.attach(&dispatch);
        let (trace_id, span_id) = tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!("outside");
            let span = tracing::info_span!("work", ticket = "TKT-ABC123");
            let ids = span_context(&span);
            span.in_scope(|| tracing::info!(n = 1, "inside"));
            (ids.trace_id().to_string(), ids.span_id().to_string())
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let parsed: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(parsed.len(), 2, "{text}");
        assert!(parsed[0].get("trace_id").is_none(), "{text}");
        assert_eq!(parsed[1]["trace_id"], trace_id.as_str(), "{text}");
        assert_eq!(parsed[1]["span_id"], span_id.as_str(), "{text}");
        assert_eq!(parsed[1]["message"], "inside", "{text}");
        assert_eq!(parsed[1]["n"], 1, "{text}");
    }

    /// What the always-installed OpenTelemetry layer costs a span with one
    /// log line in it when nothing is exported (figures in the report of
    /// the change; docs/operations.md "Traces").
    #[test]
    #[ignore = "a measurement: cargo test --release -p helpdesk-kit --lib span_cost -- --ignored --nocapture"]
    fn span_cost() {
        const N: u32 = 200_000;
        fn run(dispatch: &Dispatch) -> f64 {
            tracing::dispatcher::with_default(dispatch, || {
                let started = std::time::Instant::now();
                for i in 0..N {
                    let span = tracing::info_span!("work", ticket = "TKT-ABC123");
                    span.in_scope(|| tracing::info!(i, "inside"));
                }
                started.elapsed().as_nanos() as f64 / f64::from(N)
            })
        }
        let plain = Dispatch::new(
            tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::sink),
            ),
        );
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
            .build();
        let json = TraceIds::new(tracing_subscriber::fmt::format().json().flatten_event(true));
        let slot = json.slot();
        let traced = Dispatch::new(
            tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")))
                .with(
                    tracing_subscriber::fmt::layer()
                        .event_format(json)
                        .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                        .with_writer(std::io::sink),
                ),
        );
        slot.attach(&traced);
        let (_, _) = (run(&plain), run(&traced)); // warm-up
        let (plain, traced) = (run(&plain), run(&traced));
        println!(
            "span + 1 JSON line: {plain:.0} ns without the OpenTelemetry layer, {traced:.0} ns with it (no exporter)"
        );
    }
}
