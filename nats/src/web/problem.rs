//! problem: RFC 9457 problem+json, the one shape of every error answer, and the fallbacks for
//! unknown routes and methods, so no client error ever leaves as plain text or a 500. A unit of
//! work's outcome maps to a problem here, once: a rejection to the 4xx its type names, an
//! unavailable database to a 503 with `Retry-After`, any other failure to a logged 500.

use crate::db;
use crate::unit_of_work::{self, Never};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An RFC 9457 problem: the one shape of every error answer.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Seconds after which a retry may succeed (a `Retry-After` header).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
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
            Problem::unavailable("the database is unavailable; retry in a moment").retry_after(1)
        } else {
            Problem::internal(format!("{e:#}"))
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    /// A failure of ours: logged here with its cause, answered without it.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(error = %error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the service failed to handle the request; it has been logged",
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).expect("a problem always serialises");
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
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

pub async fn not_found_fallback() -> Problem {
    Problem::not_found("no such route")
}

pub async fn method_not_allowed_fallback() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not accept that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    #[tokio::test]
    async fn a_problem_is_problem_json_with_its_status() {
        let resp = Problem::conflict("seat A-1 is taken").into_response();
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = to_bytes(resp.into_body(), 1 << 16).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["status"], 409);
        assert_eq!(json["detail"], "seat A-1 is taken");
        assert_eq!(json["title"], "Conflict");
    }
}
