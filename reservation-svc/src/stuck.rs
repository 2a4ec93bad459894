//! stuck: sagas not terminal long after they should be (`SAGA_STUCK_AFTER_SECS`, default the
//! hold's 300 s plus a minute: by then every saga has ended, if only by expiry) — counted in the
//! `sagas_stuck` gauge and listed for admins by `GET /admin/sagas/stuck`, each with the step it
//! waits for.

use crate::domain::Status;
use crate::store;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use nats::db::{Db, from_millis};
use nats::runtime::{AppState, FromEnv, env_parse};
use nats::web::{Admin, Problem};
use serde::Serialize;
use std::time::Duration;

/// How many a listing shows at most (the gauge counts them all).
const LISTED: i64 = 1_000;

#[derive(Clone, Debug)]
pub struct Threshold {
    pub after: Duration,
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold {
            after: Duration::from_secs(360),
        }
    }
}

impl FromEnv for Threshold {
    fn from_env() -> anyhow::Result<Self> {
        let default = Threshold::default().after.as_secs();
        Ok(Threshold {
            after: Duration::from_secs(env_parse("SAGA_STUCK_AFTER_SECS", default)?),
        })
    }
}

impl Threshold {
    /// How often the gauge is counted again: well within the threshold.
    pub fn recount_every(&self) -> Duration {
        (self.after / 4).clamp(Duration::from_millis(500), Duration::from_secs(15))
    }
}

/// A stuck saga as an admin sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Stuck {
    pub id: contracts::ReservationId,
    pub status: Status,
    /// When the saga began (the hold).
    #[serde(with = "time::serde::rfc3339")]
    pub since: time::OffsetDateTime,
    /// When its status last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
    /// The event the saga waits for, and from whom.
    pub waiting_for: String,
}

fn waiting_for(status: Status) -> String {
    match status {
        Status::AwaitingPayment => {
            "the user's payment, or seat.released (expired) from seat-svc: the hold is past its \
             expiry"
        }
        Status::PaymentPending => "payment.completed or payment.failed from payment-svc",
        _ => "nothing: it has ended",
    }
    .to_owned()
}

/// When a saga that has not ended by now began too long ago.
fn cutoff(db: &Db, threshold: &Threshold) -> i64 {
    db.clock().now_ms() - threshold.after.as_millis() as i64
}

/// Counts the stuck sagas into the `sagas_stuck` gauge.
pub async fn count(db: Db, threshold: Threshold) -> anyhow::Result<()> {
    let stuck = store::count_unfinished(&mut db.reader().await?, cutoff(&db, &threshold)).await?;
    metrics::gauge!("sagas_stuck").set(stuck as f64);
    Ok(())
}

pub fn routes() -> Router<AppState<Threshold>> {
    Router::new().route("/admin/sagas/stuck", get(list))
}

/// The sagas not terminal `SAGA_STUCK_AFTER_SECS` after they began, oldest first (admin).
#[utoipa::path(get, path = "/admin/sagas/stuck", tag = "sagas", security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Stuck>),
        (status = 403, description = "admin-only", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list(
    State(s): State<AppState<Threshold>>,
    _: Admin,
) -> Result<impl IntoResponse, Problem> {
    let rows = store::unfinished(
        &mut s.db.reader().await?,
        cutoff(&s.db, &s.settings),
        LISTED,
    )
    .await?;
    let listed: Vec<Stuck> = rows
        .into_iter()
        .map(|r| Stuck {
            id: r.id,
            status: r.status,
            since: from_millis(r.created_at_ms),
            updated_at: from_millis(r.updated_at_ms),
            waiting_for: waiting_for(r.status),
        })
        .collect();
    Ok(Json(listed))
}
