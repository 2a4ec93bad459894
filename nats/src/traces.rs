//! traces: OpenTelemetry spans, exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set
//! (to Jaeger, say): HTTP requests, commands' units of work, handled events and publishes, each
//! continuing the W3C trace the saga carries ([`contracts::trace`]), so the events a span emits
//! name it as their parent. Without an endpoint the spans are never even built.

use contracts::Envelope;
use contracts::trace::TraceParent;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use std::sync::OnceLock;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

/// The target of the spans for the exporter; log lines leave them out.
pub const TARGET: &str = "otel";

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The layer that exports this process's spans, when an endpoint is configured.
pub fn layer<S>(service: &str) -> Option<impl Layer<S>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT")?;
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("OTEL_EXPORTER_OTLP_ENDPOINT is set, but no exporter: {e}");
            return None;
        }
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_owned())
                .build(),
        )
        .build();
    let tracer = provider.tracer(service.to_owned());
    let _ = PROVIDER.set(provider);
    Some(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(Targets::new().with_target(TARGET, tracing::Level::INFO)),
    )
}

/// Sends the spans still buffered (at shutdown).
pub fn flush() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.force_flush();
    }
}

/// Makes `span` continue the trace `parent` (nothing when not exporting).
pub fn continue_trace(span: &tracing::Span, parent: &TraceParent) {
    let carrier = HashMap::from([("traceparent".to_owned(), parent.to_string())]);
    let _ = span.set_parent(TraceContextPropagator::new().extract(&carrier));
}

/// Makes `span` continue the caller's `traceparent` header, if it sent one and spans are
/// exported (nothing is parsed otherwise).
pub fn follow(span: &tracing::Span, traceparent: Option<&str>) {
    if span.is_disabled() {
        return;
    }
    if let Some(parent) = traceparent.and_then(TraceParent::parse) {
        continue_trace(span, &parent);
    }
}

/// The span's own place in its trace, as the traceparent of what it emits; `None` when not
/// exporting (the caller then continues the trace with an id of its own).
pub fn traceparent_of(span: &tracing::Span) -> Option<TraceParent> {
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span_ref = context.span();
    let sc = span_ref.span_context();
    if !sc.is_valid() {
        return None;
    }
    TraceParent::parse(&format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    ))
}

/// A span (of target [`TARGET`]) continuing `parent`, and the traceparent its work emits under:
/// the span's own when exporting, else a child of `parent` (or a new trace without one).
pub fn continued(
    span: tracing::Span,
    parent: Option<&TraceParent>,
) -> (tracing::Span, TraceParent) {
    let own = || parent.map_or_else(TraceParent::root, TraceParent::child);
    // Not exported: nothing to build (the common case costs no allocation here).
    if span.is_disabled() {
        return (span, own());
    }
    if let Some(p) = parent {
        continue_trace(&span, p);
    }
    let emitted = traceparent_of(&span).unwrap_or_else(own);
    (span, emitted)
}

/// The span an event is handled in, continuing the event's trace, and the traceparent of what
/// the handling emits — `None` when the event carries no trace and spans are not exported.
pub fn handling(envelope: &Envelope) -> (tracing::Span, Option<TraceParent>) {
    let parent = envelope.traceparent.as_deref().and_then(TraceParent::parse);
    let span = tracing::info_span!(target: TARGET, "handle event",
        event.r#type = %envelope.ce_type, event.id = %envelope.id);
    let (span, emitted) = continued(span, parent.as_ref());
    let traced = parent.is_some() || !span.is_disabled();
    (span, traced.then_some(emitted))
}
