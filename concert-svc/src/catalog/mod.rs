//! catalog: concerts, their schedules (dates) and each schedule's seat map with grades and
//! prices. Opening a schedule announces its seat map (`concert.schedule_opened`), from which
//! seat-svc builds its inventory.

pub mod domain;
pub mod http;
pub mod store;

use crate::view;
use contracts::events::ScheduleOpened;
use contracts::{ConcertEvent, ConcertId, ScheduleId, SeatSpec};
use domain::NewSeat;
use nats::unit_of_work::{Error, EventTooLarge, Rejection, Work};
use time::OffsetDateTime;

/// Why a catalog command is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogRefused {
    UnknownConcert(ConcertId),
    /// The seat map is too large to announce in one event.
    TooLarge(EventTooLarge),
    /// The show would have started already: nobody could queue for it or hold its seats.
    StartsInThePast,
}

impl Rejection for CatalogRefused {}

/// Registers a concert.
pub async fn register(w: &mut Work, title: String) -> anyhow::Result<ConcertId> {
    let id = ConcertId::new();
    let now = w.now_ms();
    store::insert_concert(w, id, &title, now).await?;
    Ok(id)
}

/// Opens a schedule of `concert` with `seats`, shown available, and announces its seat map.
pub async fn open_schedule(
    w: &mut Work,
    concert: ConcertId,
    starts_at: OffsetDateTime,
    seats: Vec<NewSeat>,
) -> Result<ScheduleId, Error<CatalogRefused>> {
    if !store::concert_exists(w, concert).await? {
        return Err(CatalogRefused::UnknownConcert(concert).into());
    }
    if starts_at <= w.now() {
        return Err(CatalogRefused::StartsInThePast.into());
    }
    let id = ScheduleId::new();
    let specs = seats
        .iter()
        .map(|seat| SeatSpec {
            seat_id: seat.id,
            label: seat.label.clone(),
            grade: seat.grade.clone(),
            price: seat.price,
        })
        .collect();
    let opened = ConcertEvent::ScheduleOpened(ScheduleOpened {
        schedule_id: id,
        concert_id: concert,
        starts_at,
        seats: specs,
    });
    // Refused before anything is written: seat-svc could never receive it.
    w.fits(&opened).map_err(CatalogRefused::TooLarge)?;
    let now = w.now_ms();
    store::insert_schedule(w, id, concert, nats::db::to_millis(starts_at), &seats, now).await?;
    let seat_ids: Vec<_> = seats.iter().map(|s| s.id).collect();
    view::store::add(w, id, &seat_ids).await?;
    w.emit(&opened);
    Ok(id)
}
