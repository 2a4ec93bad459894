//! problem: RFC 9457 problem+json, the one shape of every error answer, and the fallbacks for
//! unknown routes and methods, so no client error ever leaves as plain text or a 500. Every
//! answer names its kind ([`ProblemType`]): a stable `type` URI (`/problems/{slug}`) a client
//! tells errors apart by, never by parsing `detail`. A unit of work's outcome maps to a problem
//! here, once: a rejection to the 4xx its type names, an unavailable database to a 503 with
//! `Retry-After`, any other failure to a logged 500.

use crate::db;
use crate::unit_of_work::{self, Never};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::ser::{Serialize, SerializeStruct, Serializer};

/// A kind of error answer. Its `type` URI, title and status are the same for every answer of
/// the kind; only `detail` tells the case. The services' kinds live beside the refusals they
/// answer; the platform's are [`kinds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemType {
    /// The last segment of the `type` URI: lower-case words joined by `-`.
    pub slug: &'static str,
    pub status: StatusCode,
    pub title: &'static str,
}

/// Where problem types live: `type` is this followed by the slug.
pub const PROBLEM_BASE: &str = "/problems/";

impl ProblemType {
    pub const fn new(slug: &'static str, status: StatusCode, title: &'static str) -> Self {
        ProblemType {
            slug,
            status,
            title,
        }
    }

    /// The `type` of its answers, e.g. `/problems/seat-unavailable`.
    pub fn uri(&self) -> String {
        format!("{PROBLEM_BASE}{}", self.slug)
    }
}

/// The platform's problem types: those every service may answer.
pub mod kinds {
    use crate::web::problem::ProblemType;
    use axum::http::StatusCode as S;

    pub const NO_SUCH_ROUTE: ProblemType =
        ProblemType::new("no-such-route", S::NOT_FOUND, "No such route");
    pub const METHOD_NOT_ALLOWED: ProblemType = ProblemType::new(
        "method-not-allowed",
        S::METHOD_NOT_ALLOWED,
        "Method not allowed",
    );
    /// A path id that does not parse: nothing can be known by it.
    pub const NOT_FOUND: ProblemType = ProblemType::new("not-found", S::NOT_FOUND, "Not found");
    pub const MALFORMED_BODY: ProblemType =
        ProblemType::new("malformed-body", S::BAD_REQUEST, "Malformed body");
    /// Well-formed JSON of the wrong shape, or values out of their range.
    pub const INVALID_BODY: ProblemType =
        ProblemType::new("invalid-body", S::UNPROCESSABLE_ENTITY, "Invalid body");
    pub const UNSUPPORTED_MEDIA_TYPE: ProblemType = ProblemType::new(
        "unsupported-media-type",
        S::UNSUPPORTED_MEDIA_TYPE,
        "Unsupported media type",
    );
    pub const BODY_TOO_LARGE: ProblemType =
        ProblemType::new("body-too-large", S::PAYLOAD_TOO_LARGE, "Body too large");
    pub const INVALID_QUERY: ProblemType =
        ProblemType::new("invalid-query", S::BAD_REQUEST, "Invalid query");
    pub const INVALID_PAGE: ProblemType =
        ProblemType::new("invalid-page", S::UNPROCESSABLE_ENTITY, "Invalid page");
    pub const UNAUTHORIZED: ProblemType =
        ProblemType::new("unauthorized", S::UNAUTHORIZED, "Unauthorized");
    pub const ADMIN_ONLY: ProblemType = ProblemType::new("admin-only", S::FORBIDDEN, "Admin only");
    pub const TOO_MANY_REQUESTS: ProblemType = ProblemType::new(
        "too-many-requests",
        S::TOO_MANY_REQUESTS,
        "Too many requests",
    );
    /// The database is unavailable for a moment.
    pub const UNAVAILABLE: ProblemType =
        ProblemType::new("unavailable", S::SERVICE_UNAVAILABLE, "Service unavailable");
    /// New arrivals are refused while the service is overloaded.
    pub const OVERLOADED: ProblemType =
        ProblemType::new("overloaded", S::SERVICE_UNAVAILABLE, "Overloaded");
    pub const TIMED_OUT: ProblemType =
        ProblemType::new("timed-out", S::SERVICE_UNAVAILABLE, "Request timed out");
    pub const NOT_READY: ProblemType =
        ProblemType::new("not-ready", S::SERVICE_UNAVAILABLE, "Not ready");
    pub const INTERNAL: ProblemType =
        ProblemType::new("internal", S::INTERNAL_SERVER_ERROR, "Internal error");

    /// Every platform type, for the API's documentation.
    pub const ALL: &[ProblemType] = &[
        NO_SUCH_ROUTE,
        METHOD_NOT_ALLOWED,
        NOT_FOUND,
        MALFORMED_BODY,
        INVALID_BODY,
        UNSUPPORTED_MEDIA_TYPE,
        BODY_TOO_LARGE,
        INVALID_QUERY,
        INVALID_PAGE,
        UNAUTHORIZED,
        ADMIN_ONLY,
        TOO_MANY_REQUESTS,
        UNAVAILABLE,
        OVERLOADED,
        TIMED_OUT,
        NOT_READY,
        INTERNAL,
    ];
}

/// An RFC 9457 problem: the one shape of every error answer.
#[derive(Debug, Clone)]
pub struct Problem {
    pub kind: ProblemType,
    pub detail: String,
    /// Seconds after which a retry may succeed (a `Retry-After` header). A 503 or 429 always
    /// has one: a second unless said.
    pub retry_after: Option<u64>,
}

impl Serialize for Problem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut p = s.serialize_struct("Problem", 4)?;
        p.serialize_field("type", &self.kind.uri())?;
        p.serialize_field("title", self.kind.title)?;
        p.serialize_field("status", &self.kind.status.as_u16())?;
        p.serialize_field("detail", &self.detail)?;
        p.end()
    }
}

impl Problem {
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Problem {
            kind,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// Tells the client when to try again.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// A technical failure: 503 with `Retry-After` when the database is unavailable (it passes
    /// by itself), else a logged 500.
    pub fn failed(e: &anyhow::Error) -> Self {
        if db::unavailable(e) {
            tracing::warn!(error = %format!("{e:#}"), "database unavailable");
            Problem::new(
                kinds::UNAVAILABLE,
                "the database is unavailable; retry in a moment",
            )
            .retry_after(1)
        } else {
            Problem::internal(format!("{e:#}"))
        }
    }

    /// A failure of ours: logged here with its cause, answered without it.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(error = %error, "request failed");
        Self::new(
            kinds::INTERNAL,
            "the service failed to handle the request; it has been logged",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).expect("a problem always serialises");
        let retry_after = match self.kind.status {
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                Some(self.retry_after.unwrap_or(1))
            }
            _ => self.retry_after,
        };
        let mut response = (
            self.kind.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl<R: Into<Problem>> From<unit_of_work::Error<R>> for Problem {
    fn from(e: unit_of_work::Error<R>) -> Self {
        match e {
            unit_of_work::Error::Rejected(r) => r.into(),
            unit_of_work::Error::Failed(e) => Problem::failed(&e),
        }
    }
}

impl From<Never> for Problem {
    fn from(never: Never) -> Self {
        match never {}
    }
}

impl From<anyhow::Error> for Problem {
    fn from(e: anyhow::Error) -> Self {
        Problem::failed(&e)
    }
}

/// What `GET /problems/{slug}` answers: the kind a problem's `type` names, among `known`.
pub async fn describe(
    known: Vec<ProblemType>,
    axum::extract::Path(slug): axum::extract::Path<String>,
) -> Result<axum::Json<serde_json::Value>, Problem> {
    let kind = known
        .into_iter()
        .find(|k| k.slug == slug)
        .ok_or_else(|| Problem::new(kinds::NOT_FOUND, format!("no problem type {slug:?}")))?;
    Ok(axum::Json(serde_json::json!({
        "type": kind.uri(),
        "title": kind.title,
        "status": kind.status.as_u16(),
    })))
}

pub async fn not_found_fallback() -> Problem {
    Problem::new(kinds::NO_SUCH_ROUTE, "no such route")
}

pub async fn method_not_allowed_fallback() -> Problem {
    Problem::new(
        kinds::METHOD_NOT_ALLOWED,
        "this route does not accept that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    const SEAT_TAKEN: ProblemType =
        ProblemType::new("seat-unavailable", StatusCode::CONFLICT, "Seat unavailable");

    async fn answered(p: Problem) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let resp = p.into_response();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let body = to_bytes(resp.into_body(), 1 << 16).await.unwrap();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_problem_is_problem_json_with_its_type_and_status() {
        let (status, headers, json) = answered(Problem::new(SEAT_TAKEN, "seat A-1 is taken")).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(json["type"], "/problems/seat-unavailable");
        assert_eq!(json["status"], 409);
        assert_eq!(json["detail"], "seat A-1 is taken");
        assert_eq!(json["title"], "Seat unavailable");
        assert!(headers.get(header::RETRY_AFTER).is_none());
    }

    #[tokio::test]
    async fn every_503_and_429_says_when_to_come_back() {
        let (_, headers, _) = answered(Problem::new(kinds::NOT_READY, "not yet")).await;
        assert_eq!(headers[header::RETRY_AFTER], "1");
        let (_, headers, _) =
            answered(Problem::new(kinds::TOO_MANY_REQUESTS, "slow down").retry_after(5)).await;
        assert_eq!(headers[header::RETRY_AFTER], "5");
    }

    #[test]
    fn platform_slugs_are_unique_lowercase_words() {
        let mut seen = std::collections::HashSet::new();
        for kind in kinds::ALL {
            assert!(seen.insert(kind.slug), "{} twice", kind.slug);
            assert!(
                kind.slug
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-'),
                "{}",
                kind.slug
            );
        }
    }
}
