//! catalog: the public catalog reads (concerts, dates, a date's seats), with the last good
//! answer to each kept so that while concert-svc cannot answer the catalog still does, marked
//! stale (`X-Stale: true`, `Age`). The reservation composition reads through here too.

use crate::config::Upstream;
use crate::proxy::outgoing;
use crate::state::Gateway;
use crate::upstream::{self, Outgoing, relay};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use nats::web::Problem;
use std::sync::Arc;

/// Marks an answer served from what was kept while concert-svc could not answer.
pub const STALE: &str = "x-stale";

/// A catalog read's outcome.
pub enum Read {
    /// concert-svc's 200, just now.
    Fresh(Bytes),
    /// The last good answer, from `age` ago: concert-svc did not answer.
    Stale(Bytes, std::time::Duration),
    /// concert-svc's answer other than 200 (a 404, say), passed on as it is.
    Other(Response),
}

/// Reads `out` (a GET) from concert-svc, falling back to the last good answer when concert-svc
/// gives none (no answer, a 5xx, a body cut off).
pub async fn read(gw: &Gateway, out: Outgoing) -> Result<Read, Problem> {
    let key = out.path_and_query.clone();
    let stale = || {
        gw.catalog
            .kept(&key)
            .map(|(body, age)| Read::Stale(body, age))
    };
    match gw.upstreams.send(Upstream::Concert, out).await {
        Ok(resp) if resp.status() == StatusCode::OK => {
            match upstream::body(Upstream::Concert, resp).await {
                Ok(body) => {
                    gw.catalog.keep(&key, &body);
                    Ok(Read::Fresh(body))
                }
                Err(failure) => stale().ok_or_else(|| failure.into()),
            }
        }
        Ok(resp) if !resp.status().is_server_error() => Ok(Read::Other(relay(resp))),
        Ok(resp) => Ok(stale().unwrap_or_else(|| Read::Other(relay(resp)))),
        Err(failure) => stale().ok_or_else(|| failure.into()),
    }
}

/// `GET /api/concerts…`, `GET /api/schedules/{id}[/seats]`: the catalog, stale if need be.
pub async fn get(
    axum::extract::State(gw): axum::extract::State<Arc<Gateway>>,
    req: Request,
) -> Response {
    let out = match outgoing(req).await {
        Ok(out) => Outgoing::get(out.path_and_query, out.headers),
        Err(problem) => return problem.into_response(),
    };
    match read(&gw, out).await {
        Ok(Read::Fresh(body)) => json(body, HeaderMap::new()),
        Ok(Read::Stale(body, age)) => {
            let mut headers = HeaderMap::new();
            headers.insert(STALE, HeaderValue::from_static("true"));
            headers.insert(header::AGE, age.as_secs().into());
            json(body, headers)
        }
        Ok(Read::Other(resp)) => resp,
        Err(problem) => problem.into_response(),
    }
}

fn json(body: Bytes, headers: HeaderMap) -> Response {
    let mut resp = (
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from(body),
    )
        .into_response();
    resp.headers_mut().extend(headers);
    resp
}
