//! telemetry: logs (tracing, `RUST_LOG`, default `info`; `LOG_FORMAT=json`), span export
//! ([`crate::traces`]) and the Prometheus recorder behind `/metrics`; all process-wide and
//! installed once.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Logs to stderr: readable text, or one JSON object a line with `LOG_FORMAT=json` (for a log
/// pipeline; every handled event's line carries its type, id, correlation id and trace id); and
/// the spans of [`crate::traces`] to an OTLP endpoint when one is configured.
pub fn init_logging(service: &str) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        .add_directive(
            format!("{}=off", crate::traces::TARGET)
                .parse()
                .expect("a valid directive"),
        );
    // A second call (tests building several apps) keeps the first subscriber. Without spans to
    // export, the filter is global: callsites below it are never even looked at (a filter per
    // layer, or an absent layer beside it, makes every debug and trace callsite of every crate
    // ask on each call: +15 % CPU per saga in the bench).
    let _ = match crate::traces::layer(service) {
        None => tracing_subscriber::registry()
            .with(filter)
            .with(lines())
            .try_init(),
        Some(spans) => tracing_subscriber::registry()
            .with(lines().with_filter(filter))
            .with(spans)
            .try_init(),
    };
}

/// The log lines: text, or JSON with `LOG_FORMAT=json`.
fn lines<S>() -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer as _;
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        lines.json().with_current_span(false).boxed()
    } else {
        lines.boxed()
    }
}

/// Upper bounds of every histogram's buckets, in seconds: 1 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's metrics recorder, installed on first use.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Histograms with buckets (not summaries): they add up across replicas.
        let recorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; then ours stays empty but valid.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
