//! upstream: the services behind the gateway — one pooled HTTP client, and for each service its
//! base URL, how long it may take to start answering, and its circuit breaker ([`breaker`]). A
//! request goes out here and only here, so every call, proxied or composed, counts toward the
//! breaker the same way.

mod breaker;

use crate::config::{Config, Upstream};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::response::Response;
use breaker::{Breaker, Permit};
use bytes::Bytes;
use nats::web::{Problem, ProblemType};
use std::time::Duration;

/// An upstream's breaker is open: its routes are refused at once.
pub const UPSTREAM_UNAVAILABLE: ProblemType = ProblemType::new(
    "upstream-unavailable",
    StatusCode::SERVICE_UNAVAILABLE,
    "Upstream unavailable",
);
/// An upstream did not start answering within its timeout.
pub const UPSTREAM_TIMED_OUT: ProblemType = ProblemType::new(
    "upstream-timed-out",
    StatusCode::GATEWAY_TIMEOUT,
    "Upstream timed out",
);

/// A request on its way to an upstream: what the caller asked, with the headers to pass on.
pub struct Outgoing {
    pub method: Method,
    /// The service's own path and query (without `/api`).
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Outgoing {
    pub fn get(path_and_query: impl Into<String>, headers: HeaderMap) -> Outgoing {
        Outgoing {
            method: Method::GET,
            path_and_query: path_and_query.into(),
            headers,
            body: Bytes::new(),
        }
    }
}

/// Why no answer came from an upstream.
#[derive(Debug)]
pub enum Failure {
    /// The breaker is open; it lets a probe through after this long.
    Open(Upstream, Duration),
    TimedOut(Upstream),
    Unreachable(Upstream, String),
    /// The answer began and was cut off before its end.
    CutOff(Upstream, String),
}

impl From<Failure> for Problem {
    fn from(f: Failure) -> Problem {
        match f {
            Failure::Open(u, after) => Problem::new(
                UPSTREAM_UNAVAILABLE,
                format!(
                    "{} is failing; the gateway stopped calling it for a moment",
                    u.name()
                ),
            )
            .retry_after(after.as_secs().max(1)),
            Failure::TimedOut(u) => Problem::new(
                UPSTREAM_TIMED_OUT,
                format!("{} did not answer in time", u.name()),
            )
            .retry_after(1),
            Failure::Unreachable(u, why) => Problem::new(
                UPSTREAM_UNAVAILABLE,
                format!("{} cannot be reached: {why}", u.name()),
            )
            .retry_after(1),
            Failure::CutOff(u, why) => Problem::new(
                UPSTREAM_UNAVAILABLE,
                format!("{}'s answer was cut off: {why}", u.name()),
            )
            .retry_after(1),
        }
    }
}

struct Backend {
    which: Upstream,
    base: String,
    breaker: Breaker,
}

/// The four services, and the one client every call to them goes through.
pub struct Upstreams {
    client: reqwest::Client,
    timeout: Duration,
    backends: Vec<Backend>,
}

/// Headers that belong to one connection (RFC 9110 7.6.1) or that the gateway sets itself: never
/// passed on. The session cookie is the gateway's; services get its token as `Authorization`.
const NOT_FORWARDED: [HeaderName; 9] = [
    header::CONNECTION,
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
];

impl Upstreams {
    pub fn new(config: &Config) -> anyhow::Result<Upstreams> {
        Ok(Upstreams {
            client: reqwest::Client::builder()
                .connect_timeout(config.upstream_timeout)
                .pool_idle_timeout(Duration::from_secs(30))
                .build()?,
            timeout: config.upstream_timeout,
            backends: config
                .upstreams
                .iter()
                .map(|(which, base)| Backend {
                    which: *which,
                    base: base.clone(),
                    breaker: Breaker::new(config.breaker_failures, config.breaker_open),
                })
                .collect(),
        })
    }

    fn backend(&self, which: Upstream) -> &Backend {
        self.backends
            .iter()
            .find(|b| b.which == which)
            .expect("every upstream is configured")
    }

    /// Sends `out` to `which`, unless its breaker is open. The answer's headers must arrive
    /// within the timeout; its body then streams for as long as it lasts (a live status
    /// stream). Counts toward the breaker: no answer, or a 500, 502 or 504, is a failure; a 503
    /// with `Retry-After` is the service's own advice and passes through without counting.
    pub async fn send(&self, which: Upstream, out: Outgoing) -> Result<reqwest::Response, Failure> {
        let backend = self.backend(which);
        if let Permit::Refused(after) = backend.breaker.permit() {
            return Err(Failure::Open(which, after));
        }
        let mut headers = out.headers;
        for name in NOT_FORWARDED {
            headers.remove(name);
        }
        let request = self
            .client
            .request(
                out.method,
                format!("{}{}", backend.base, out.path_and_query),
            )
            .headers(headers)
            .body(out.body);
        match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => {
                backend.breaker.failed();
                Err(Failure::TimedOut(which))
            }
            Ok(Err(e)) => {
                backend.breaker.failed();
                Err(Failure::Unreachable(which, without_url(&e)))
            }
            Ok(Ok(resp)) => {
                match resp.status() {
                    StatusCode::INTERNAL_SERVER_ERROR
                    | StatusCode::BAD_GATEWAY
                    | StatusCode::GATEWAY_TIMEOUT => backend.breaker.failed(),
                    _ => backend.breaker.succeeded(),
                }
                Ok(resp)
            }
        }
    }

    /// The upstreams whose `/readyz` does not answer 200 within the timeout.
    pub async fn down(&self) -> Vec<Upstream> {
        let checks = self.backends.iter().map(|b| async move {
            let ready = tokio::time::timeout(
                self.timeout,
                self.client.get(format!("{}/readyz", b.base)).send(),
            )
            .await
            .is_ok_and(|r| r.is_ok_and(|r| r.status() == StatusCode::OK));
            (!ready).then_some(b.which)
        });
        futures::future::join_all(checks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

/// The whole body of an answer of `which` (for the gateway to read, not to stream).
pub async fn body(which: Upstream, resp: reqwest::Response) -> Result<Bytes, Failure> {
    resp.bytes()
        .await
        .map_err(|e| Failure::CutOff(which, without_url(&e)))
}

/// A transport error's reason without the URL (an internal address is nobody's business).
fn without_url(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The upstream's answer as the gateway's, its body streamed through.
pub fn relay(resp: reqwest::Response) -> Response {
    let mut out = Response::builder().status(resp.status());
    if let Some(headers) = out.headers_mut() {
        for (name, value) in resp.headers() {
            if !NOT_FORWARDED.contains(name) {
                headers.append(name, value.clone());
            }
        }
    }
    out.body(Body::from_stream(resp.bytes_stream()))
        .unwrap_or_else(|e| axum::response::IntoResponse::into_response(Problem::internal(e)))
}
