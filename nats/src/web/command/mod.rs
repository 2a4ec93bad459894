//! command: what every HTTP command shares — its request id (`X-Request-Id`, the client's or
//! one made here, returned in the answer), which the events it emits name as their cause; and
//! its `Idempotency-Key`, as the IETF httpapi draft and payment APIs have it. A client that lost
//! an answer sends the command again with the same key and gets the first answer again, with no
//! second effect: the answer is stored in the same transaction as the effect, so a kill between
//! the two cannot split them. The same key with another request is refused (422); while the
//! first is still being handled here, 409. A command that is refused keeps nothing, its key
//! included: sending it again runs it again. Keys are kept
//! [`crate::runtime::housekeeping::Retention::keys`] (24 h), then purged.

use super::problem::{Problem, ProblemType};
use crate::db::Sql;
use crate::db::sql::Retained;
use crate::traces;
use crate::unit_of_work::{Error, Rejection, Work};
use axum::extract::FromRequestParts;
use axum::http::{HeaderValue, StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use contracts::UserId;
use contracts::envelope::header::TRACEPARENT;
use contracts::trace::TraceParent;
use futures::future::BoxFuture;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tracing::Instrument as _;

/// The header a client names a command's key in.
pub const HEADER: &str = "Idempotency-Key";
/// The header an answer given again carries (as Stripe's).
pub const REPLAYED: &str = "Idempotent-Replayed";
/// The longest key: 255 visible ASCII characters.
pub const MAX_KEY: usize = 255;

pub const INVALID_KEY: ProblemType = ProblemType::new(
    "invalid-idempotency-key",
    StatusCode::BAD_REQUEST,
    "Invalid idempotency key",
);
/// The key was used before for another request.
pub const KEY_REUSED: ProblemType = ProblemType::new(
    "idempotency-key-reused",
    StatusCode::UNPROCESSABLE_ENTITY,
    "Idempotency key reused",
);
/// The first request with this key is still being handled.
pub const KEY_IN_USE: ProblemType = ProblemType::new(
    "idempotency-key-in-use",
    StatusCode::CONFLICT,
    "Idempotency key in use",
);

pub fn ddl() -> Vec<Cow<'static, str>> {
    vec![
        Cow::Borrowed(
            "CREATE TABLE IF NOT EXISTS idempotency_keys (
                user_id TEXT NOT NULL,
                idempotency_key TEXT NOT NULL,
                request TEXT NOT NULL,
                status INTEGER NOT NULL,
                body TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (user_id, idempotency_key)
            )",
        ),
        Cow::Borrowed(
            "CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at)",
        ),
    ]
}

/// The stored keys and answers, forgotten after their retention window.
pub const RETAINED: Retained = Retained {
    table: "idempotency_keys",
    key: "user_id, idempotency_key",
    written_at: "created_at",
};

/// A command's answer: its status and JSON body; told again as it was for the same key.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    /// Given again for a key seen before.
    pub replayed: bool,
}

impl Answer {
    pub fn new(status: StatusCode, body: Value) -> Self {
        Answer {
            status,
            body,
            replayed: false,
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if self.replayed {
            let headers = response.headers_mut();
            headers.insert(REPLAYED, HeaderValue::from_static("true"));
        }
        response
    }
}

/// Keys whose first request this process is handling now: another with the same key is 409.
#[derive(Clone, Default)]
pub struct InFlight(Arc<Mutex<HashSet<(UserId, String)>>>);

/// While a request with a key is handled; the key is free again when it is dropped.
pub struct Handling {
    in_flight: InFlight,
    id: (UserId, String),
}

impl Drop for Handling {
    fn drop(&mut self) {
        if let Ok(mut keys) = self.in_flight.0.lock() {
            keys.remove(&self.id);
        }
    }
}

/// The request id a command's answer carries (`X-Request-Id`), made here when the client sent
/// none (by the service runtime's layer, before any handler runs).
pub const REQUEST_ID: &str = "x-request-id";
/// The longest request id that becomes its events' cause.
pub const MAX_REQUEST_ID: usize = 200;

/// What identifies a command: its request id, and its `Idempotency-Key` if one was sent, with
/// what identifies the request it came with (method, path and body) and the keys in flight
/// here ([`InFlight`], put on every request by the service runtime).
pub struct CommandRequest {
    request_id: Option<String>,
    /// The caller's trace (`traceparent`), or one begun here.
    trace: TraceParent,
    key: Option<Sent>,
}

struct Sent {
    key: String,
    request: Sha256,
    in_flight: InFlight,
}

impl<S: Send + Sync> FromRequestParts<S> for CommandRequest {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        // A client's id travels on every event the command causes: a long one is not taken.
        let request_id = parts
            .headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|id| id.len() <= MAX_REQUEST_ID)
            .map(str::to_owned);
        // The trace every event the command causes is part of (W3C trace context): the
        // request's span when spans are exported, else the caller's trace (or a new one).
        let trace = traces::traceparent_of(&tracing::Span::current()).unwrap_or_else(|| {
            parts
                .headers
                .get(TRACEPARENT)
                .and_then(|v| v.to_str().ok())
                .and_then(TraceParent::parse)
                .map_or_else(TraceParent::root, |t| t.child())
        });
        let Some(raw) = parts.headers.get(HEADER) else {
            return Ok(CommandRequest {
                request_id,
                trace,
                key: None,
            });
        };
        let key = raw
            .to_str()
            .ok()
            .filter(|k| !k.is_empty() && k.len() <= MAX_KEY)
            .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                Problem::new(
                    INVALID_KEY,
                    format!("an {HEADER} is 1 to {MAX_KEY} visible ASCII characters"),
                )
            })?;
        let path = parts.uri.path().to_owned();
        let mut request = Sha256::new();
        request.update(parts.method.as_str());
        request.update(b" ");
        request.update(path);
        request.update(b"\n");
        let in_flight = parts
            .extensions
            .get::<InFlight>()
            .cloned()
            .ok_or_else(|| Problem::internal("no InFlight extension on the router"))?;
        Ok(CommandRequest {
            request_id,
            trace,
            key: Some(Sent {
                key: key.to_owned(),
                request,
                in_flight,
            }),
        })
    }
}

impl CommandRequest {
    /// The key as `user`'s, for a request whose body is `body` (the bytes the client sent;
    /// empty for a command without one): 409 while another request of theirs with this key is
    /// being handled here. Keep the [`Handling`] until the answer is sent.
    pub fn claim(self, user: &UserId, body: &[u8]) -> Result<(Once, Option<Handling>), Problem> {
        let (cause, trace) = (self.request_id, self.trace);
        let Some(Sent {
            key,
            mut request,
            in_flight,
        }) = self.key
        else {
            return Ok((
                Once {
                    cause,
                    trace,
                    key: None,
                },
                None,
            ));
        };
        request.update(body);
        let id = (user.clone(), key.clone());
        let fresh = in_flight.0.lock().map(|mut keys| keys.insert(id.clone()));
        if !fresh.unwrap_or(false) {
            return Err(Problem::new(
                KEY_IN_USE,
                format!(
                    "a request with this {HEADER} is still being handled; ask again in a moment"
                ),
            )
            .retry_after(1));
        }
        let handling = Handling { in_flight, id };
        let request = hex(&request.finalize());
        let key = Some(Claimed {
            user: user.clone(),
            key,
            request,
        });
        Ok((Once { cause, trace, key }, Some(handling)))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone)]
struct Claimed {
    user: UserId,
    key: String,
    request: String,
}

/// Runs a command at most once per key, inside its unit of work, as the cause of the events it
/// emits.
#[derive(Clone)]
pub struct Once {
    /// The command's request id.
    cause: Option<String>,
    trace: TraceParent,
    key: Option<Claimed>,
}

/// A command refused, or its key reused for another request.
#[derive(Debug)]
pub enum Refused<R> {
    Command(R),
    KeyReused,
}

impl<R: Rejection> Rejection for Refused<R> {}

impl<R: Into<Problem>> From<Refused<R>> for Problem {
    fn from(r: Refused<R>) -> Self {
        match r {
            Refused::Command(r) => r.into(),
            Refused::KeyReused => Problem::new(
                KEY_REUSED,
                format!(
                    "this {HEADER} was used before for another request (another path or body): \
                     use a new key for a new command"
                ),
            ),
        }
    }
}

impl Once {
    /// Runs `command` in `w` and stores its answer with the key, in the same transaction; for a
    /// key stored before, answers what was answered then and runs nothing.
    pub async fn run<R, F>(self, w: &mut Work, command: F) -> Result<Answer, Error<Refused<R>>>
    where
        F: for<'w> FnOnce(&'w mut Work) -> BoxFuture<'w, Result<Answer, Error<R>>>,
    {
        let refused = |e: Error<R>| match e {
            Error::Rejected(r) => Error::Rejected(Refused::Command(r)),
            Error::Failed(e) => Error::Failed(e),
        };
        if let Some(cause) = &self.cause {
            w.caused_by(cause);
        }
        // The command's unit of work: a span of the request's trace; its events name it.
        let span = tracing::info_span!(target: traces::TARGET, "unit of work");
        let (span, emitted) = traces::continued(span, Some(&self.trace));
        w.in_trace(emitted);
        let Some(c) = self.key else {
            return command(w).instrument(span).await.map_err(refused);
        };
        // Claimed before the command runs: a request with the same key at another replica
        // waits for this transaction (PostgreSQL) and then finds its answer.
        let now = w.now_ms();
        let claimed = w
            .sql(
                "INSERT INTO idempotency_keys
                     (user_id, idempotency_key, request, status, body, created_at)
                 VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT DO NOTHING",
            )
            .bind(&c.user)
            .bind(&c.key)
            .bind(&c.request)
            .bind(now)
            .execute()
            .await?;
        if claimed == 0 {
            return stored(w, &c).await;
        }
        let answer = command(w).instrument(span).await.map_err(refused)?;
        w.sql(
            "UPDATE idempotency_keys SET status = $1, body = $2
             WHERE user_id = $3 AND idempotency_key = $4",
        )
        .bind(i64::from(answer.status.as_u16()))
        .bind(answer.body.to_string())
        .bind(&c.user)
        .bind(&c.key)
        .execute()
        .await?;
        Ok(answer)
    }
}

/// The answer stored for `c`'s key, or the refusal of a key used for another request.
async fn stored<R>(w: &mut Work, c: &Claimed) -> Result<Answer, Error<Refused<R>>> {
    let row = w
        .sql(
            "SELECT request, status, body FROM idempotency_keys
             WHERE user_id = $1 AND idempotency_key = $2",
        )
        .bind(&c.user)
        .bind(&c.key)
        .fetch_one()
        .await?;
    if row.get::<String>("request")? != c.request {
        return Err(Error::Rejected(Refused::KeyReused));
    }
    let status: i64 = row.get("status")?;
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| anyhow::anyhow!("an idempotency key stored with status {status}"))?;
    let body: String = row.get("body")?;
    let body = serde_json::from_str(&body)
        .map_err(|e| anyhow::anyhow!("the answer stored for an idempotency key: {e}"))?;
    Ok(Answer {
        status,
        body,
        replayed: true,
    })
}

#[cfg(test)]
mod tests;
