//! http: the admin's commands (register a concert, open a schedule) and the public reads
//! (concerts, and a concert's available dates with live seat counts).

use super::domain::{self, SeatInput};
use super::{CatalogRefused, open_schedule, register, store};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use contracts::ConcertId;
use nats::runtime::AppState;
use nats::unit_of_work::{Error, Never};
use nats::web::{Admin, Answer, CommandRequest, Id, Page, Problem, ProblemType, Query, Sent};
use serde::Deserialize;
use serde_json::json;

/// The catalog's routes, as the OpenAPI document describes them.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create_concert, list_concerts, create_schedule, list_schedules))]
pub struct Api;

pub fn routes() -> Router<AppState<()>> {
    Router::new()
        .route("/concerts", post(create_concert).get(list_concerts))
        .route(
            "/concerts/{id}/schedules",
            post(create_schedule).get(list_schedules),
        )
}

pub const UNKNOWN_CONCERT: ProblemType =
    ProblemType::new("unknown-concert", StatusCode::NOT_FOUND, "Unknown concert");
/// A title, start time or seat map that breaks the catalog's rules.
pub const INVALID_CATALOG_ENTRY: ProblemType = ProblemType::new(
    "invalid-catalog-entry",
    StatusCode::UNPROCESSABLE_ENTITY,
    "Invalid catalog entry",
);
/// A schedule whose show has started (or would have): not offered, queued for or held.
pub const SCHEDULE_PAST: ProblemType = ProblemType::new(
    "schedule-past",
    StatusCode::UNPROCESSABLE_ENTITY,
    "Schedule in the past",
);
/// A seat map too large to announce in one event.
pub const SEAT_MAP_TOO_LARGE: ProblemType = ProblemType::new(
    "seat-map-too-large",
    StatusCode::UNPROCESSABLE_ENTITY,
    "Seat map too large",
);

impl From<domain::Invalid> for Problem {
    fn from(e: domain::Invalid) -> Self {
        Problem::new(INVALID_CATALOG_ENTRY, e.to_string())
    }
}

impl From<CatalogRefused> for Problem {
    fn from(r: CatalogRefused) -> Self {
        match r {
            CatalogRefused::UnknownConcert(c) => unknown_concert(c),
            CatalogRefused::StartsInThePast => Problem::new(
                SCHEDULE_PAST,
                "starts_at is not in the future: a schedule opens for a show still to come",
            ),
            CatalogRefused::TooLarge(e) => Problem::new(
                SEAT_MAP_TOO_LARGE,
                format!(
                    "this seat map is too large to announce ({} bytes, at most {}): open it as \
                 several schedules or with shorter labels and grades",
                    e.bytes,
                    nats::unit_of_work::MAX_EVENT_BYTES
                ),
            ),
        }
    }
}

fn unknown_concert(concert: ConcertId) -> Problem {
    Problem::new(UNKNOWN_CONCERT, format!("no concert {concert}"))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewConcert {
    /// 1 to 200 characters, not all blank.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    title: String,
}

/// A concert registered.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ConcertCreated {
    id: ConcertId,
    title: String,
}

/// Registers a concert (admin).
#[utoipa::path(post, path = "/concerts", tag = "catalog", security(("bearer" = [])),
    params(nats::web::openapi::Command),
    request_body = NewConcert,
    responses(
        (status = 201, body = ConcertCreated),
        (status = 403, description = "admin-only", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid-catalog-entry, invalid-body", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_concert(
    State(s): State<AppState<()>>,
    Admin(admin): Admin,
    key: CommandRequest,
    sent: Sent<NewConcert>,
) -> Result<Answer, Problem> {
    let title = domain::parse_title(&sent.body.title)?;
    let (once, _handling) = key.claim(&admin, &sent.bytes)?;
    let registered = s.uow.decide(move |w| {
        let (once, title) = (once.clone(), title.clone());
        Box::pin(once.run(w, move |w| {
            Box::pin(async move {
                let id = register(w, title.clone()).await?;
                let body = json!(ConcertCreated { id, title });
                Ok::<_, Error<Never>>(Answer::new(StatusCode::CREATED, body))
            })
        }))
    });
    Ok(registered.await?)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ConcertFilter {
    /// Only concerts with a date still to come.
    #[serde(default)]
    upcoming: bool,
}

/// The concerts, in the order they were registered.
#[utoipa::path(get, path = "/concerts", tag = "catalog",
    params(ConcertFilter, nats::web::Page),
    responses(
        (status = 200, body = Vec<store::ConcertRow>),
        (status = 422, description = "invalid-page", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_concerts(
    State(s): State<AppState<()>>,
    page: Page,
    Query(filter): Query<ConcertFilter>,
) -> Result<impl IntoResponse, Problem> {
    let starting_after_ms = filter.upcoming.then(|| s.db.clock().now_ms());
    let mut read = s.db.reader().await?;
    Ok(Json(
        store::list_concerts(&mut read, starting_after_ms, page.limit, page.offset).await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewSchedule {
    /// When the show starts (RFC 3339); in the future.
    #[schema(format = DateTime)]
    starts_at: String,
    /// 1 to 10,000 seats.
    #[schema(min_items = 1, max_items = 10_000)]
    seats: Vec<SeatInput>,
}

/// A seat of a schedule just opened.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct OpenedSeat {
    seat_id: contracts::SeatId,
    label: String,
}

/// A schedule opened.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ScheduleCreated {
    id: contracts::ScheduleId,
    concert_id: ConcertId,
    #[serde(with = "time::serde::rfc3339")]
    starts_at: time::OffsetDateTime,
    seats: Vec<OpenedSeat>,
}

/// Opens a schedule of the concert with its seat map (admin): its seats go on sale.
#[utoipa::path(post, path = "/concerts/{id}/schedules", tag = "catalog", security(("bearer" = [])),
    params(("id" = ConcertId, Path, description = "The concert"), nats::web::openapi::Command),
    request_body = NewSchedule,
    responses(
        (status = 201, body = ScheduleCreated),
        (status = 403, description = "admin-only", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "unknown-concert", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid-catalog-entry, schedule-past, seat-map-too-large, invalid-body", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_schedule(
    State(s): State<AppState<()>>,
    Admin(admin): Admin,
    Id(concert): Id<ConcertId>,
    key: CommandRequest,
    sent: Sent<NewSchedule>,
) -> Result<Answer, Problem> {
    let starts_at = domain::parse_starts_at(&sent.body.starts_at)
        .map_err(|e| Problem::new(INVALID_CATALOG_ENTRY, e))?;
    let seats = domain::parse_seat_map(&sent.body.seats)?;
    let (once, _handling) = key.claim(&admin, &sent.bytes)?;
    let opened = s.uow.decide(move |w| {
        let (once, seats) = (once.clone(), seats.clone());
        Box::pin(once.run(w, move |w| {
            Box::pin(async move {
                let opened: Vec<_> = seats
                    .iter()
                    .map(|seat| OpenedSeat {
                        seat_id: seat.id,
                        label: seat.label.clone(),
                    })
                    .collect();
                let id = open_schedule(w, concert, starts_at, seats).await?;
                let body = json!(ScheduleCreated {
                    id,
                    concert_id: concert,
                    starts_at,
                    seats: opened,
                });
                Ok(Answer::new(StatusCode::CREATED, body))
            })
        }))
    });
    Ok(opened.await?)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ScheduleFilter {
    /// Schedules without seats left too.
    #[serde(default)]
    include_sold_out: bool,
    /// Schedules whose show has started too.
    #[serde(default)]
    include_past: bool,
}

/// The available dates: schedules still to come with seats left (`?include_sold_out=true`
/// adds those sold out, `?include_past=true` those that have started).
#[utoipa::path(get, path = "/concerts/{id}/schedules", tag = "catalog",
    params(("id" = ConcertId, Path, description = "The concert"), ScheduleFilter),
    responses(
        (status = 200, body = Vec<store::ScheduleRow>),
        (status = 404, description = "unknown-concert", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_schedules(
    State(s): State<AppState<()>>,
    Id(concert): Id<ConcertId>,
    Query(filter): Query<ScheduleFilter>,
) -> Result<impl IntoResponse, Problem> {
    let listing = store::Listing {
        include_sold_out: filter.include_sold_out,
        starting_after_ms: (!filter.include_past).then(|| s.db.clock().now_ms()),
    };
    store::list_schedules(&mut s.db.reader().await?, concert, listing)
        .await?
        .map(Json)
        .ok_or_else(|| unknown_concert(concert))
}
