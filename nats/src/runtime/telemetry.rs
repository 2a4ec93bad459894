//! telemetry: logs (tracing, `RUST_LOG`, default `info`; `LOG_FORMAT=json`) and the Prometheus recorder behind
//! `/metrics`; both are process-wide and installed once.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Logs to stderr: readable text, or one JSON object a line with `LOG_FORMAT=json` (for a log
/// pipeline; every handled event's line carries its type, id, correlation id and trace id).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests building several apps) keeps the first subscriber.
    let _ = if std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().with_current_span(false).try_init()
    } else {
        builder.try_init()
    };
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
