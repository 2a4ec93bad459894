//! extract: request extractors whose rejections are problems too — a JSON body (400 malformed,
//! 422 wrong shape, 415 not JSON), query parameters (400), and id path segments (404 when they
//! do not parse: an id that cannot exist is simply unknown).

use super::problem::{Problem, kinds};
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{StatusCode, request::Parts};
use serde::de::DeserializeOwned;
use std::str::FromStr;

/// A JSON request body: malformed JSON is 400, well-formed JSON of the wrong shape is 422 (text
/// with a NUL character too: no database stores one), and a missing `Content-Type:
/// application/json` is 415, each as a problem with serde's explanation.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        Sent::from_request(req, state)
            .await
            .map(|sent| Body(sent.body))
    }
}

/// A JSON request body as [`Body`] has it, with the bytes it came as: what identifies the
/// request of an `Idempotency-Key` ([`super::command`]).
pub struct Sent<T> {
    pub body: T,
    pub bytes: Bytes,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Sent<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let (parts, body) = req.into_parts();
        let read = Request::from_parts(parts.clone(), body);
        let bytes = Bytes::from_request(read, state)
            .await
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => Problem::new(kinds::BODY_TOO_LARGE, e.body_text()),
                _ => Problem::new(kinds::MALFORMED_BODY, e.body_text()),
            })?;
        let again = Request::from_parts(parts, axum::body::Body::from(bytes.clone()));
        let body = match axum::Json::<T>::from_request(again, state).await {
            Ok(axum::Json(v)) => v,
            Err(rejection) => return Err(refused(rejection)),
        };
        if has_nul(&bytes) {
            return Err(Problem::new(
                kinds::INVALID_BODY,
                "text in the body may not contain the NUL character (\\u0000)",
            ));
        }
        Ok(Sent { body, bytes })
    }
}

/// Whether a JSON document (valid, as parsed) has a NUL character in a string: only the escape
/// `\u0000` can write one, so the text is walked only when it holds that escape.
fn has_nul(json: &[u8]) -> bool {
    fn walk(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(walk),
            serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || walk(v)),
            _ => false,
        }
    }
    json.windows(6).any(|w| w == b"\\u0000")
        && serde_json::from_slice::<serde_json::Value>(json).is_ok_and(|v| walk(&v))
}

/// The problem a body's rejection is.
fn refused(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::JsonSyntaxError(e) => Problem::new(
            kinds::MALFORMED_BODY,
            format!("the body is not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::JsonDataError(e) => Problem::new(
            kinds::INVALID_BODY,
            format!(
                "the body does not have the expected fields: {}",
                e.body_text()
            ),
        ),
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            kinds::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with Content-Type: application/json",
        ),
        // A body over the limit, or one that could not be read.
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(kinds::BODY_TOO_LARGE, other.body_text())
        }
        other => Problem::new(kinds::MALFORMED_BODY, other.body_text()),
    }
}

/// Query parameters; ones that do not parse are a 400 problem naming what is wrong.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|e| Problem::new(kinds::INVALID_QUERY, e.body_text()))
    }
}

/// Most items a list answers at once.
pub const MAX_PAGE: i64 = 500;
/// Items a list answers when not asked for a number.
pub const DEFAULT_PAGE: i64 = 100;

/// A page of a list: `?limit=` (1 to [`MAX_PAGE`], default [`DEFAULT_PAGE`]) items after
/// skipping `?offset=` (default 0). A client reads pages until one comes back shorter than its
/// limit. Out of range is a 422 problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl utoipa::IntoParams for Page {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let number = |name: &str, min: i64, max: Option<i64>, description: String| {
            let schema = ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(min))
                .maximum(max);
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .description(Some(description))
                .schema(Some(schema))
                .build()
        };
        vec![
            number(
                "limit",
                1,
                Some(MAX_PAGE),
                format!("Items at most (default {DEFAULT_PAGE})."),
            ),
            number("offset", 0, None, "Items skipped first (default 0).".into()),
        ]
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        #[derive(serde::Deserialize)]
        struct Asked {
            limit: Option<i64>,
            offset: Option<i64>,
        }
        let Query(asked) = Query::<Asked>::from_request_parts(parts, state).await?;
        let page = Page {
            limit: asked.limit.unwrap_or(DEFAULT_PAGE),
            offset: asked.offset.unwrap_or(0),
        };
        if !(1..=MAX_PAGE).contains(&page.limit) {
            return Err(Problem::new(
                kinds::INVALID_PAGE,
                format!(
                    "limit must be between 1 and {MAX_PAGE} (got {})",
                    page.limit
                ),
            ));
        }
        if page.offset < 0 {
            return Err(Problem::new(
                kinds::INVALID_PAGE,
                format!("offset must not be negative (got {})", page.offset),
            ));
        }
        Ok(page)
    }
}

/// The one id segment of a path, parsed; anything unparsable is simply an unknown id (404).
pub struct Id<T>(pub T);

impl<T: FromStr + Send, S: Send + Sync> FromRequestParts<S> for Id<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| Problem::new(kinds::NOT_FOUND, e.body_text()))?;
        raw.parse::<T>().map(Id).map_err(|_| {
            Problem::new(
                kinds::NOT_FOUND,
                format!("nothing is known by the id {raw:?}"),
            )
        })
    }
}
