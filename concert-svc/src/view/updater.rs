//! updater: keeps the availability view from seat-svc's events. The same [`update`] serves the
//! live view (rows in the database, inside the consumer's unit of work) and a rebuild (rows in
//! memory while the `SEAT` stream is replayed), so a rebuild is the live path replayed.

use super::domain::{Shown, ViewSeat, after, newer, seats_of, version_of};
use super::store::{self, View};
use contracts::{SeatEvent, SeatId, SeatKind};
use nats::messaging::consumer::{Delivery, EventHandler, NotHandled};
use nats::messaging::topology::Subscription;
use nats::unit_of_work::{Error, Work};
use std::future::Future;

/// The seat events the view follows.
pub const SUBSCRIPTION: Subscription<SeatEvent> =
    Subscription::to(&[SeatKind::Held, SeatKind::Sold, SeatKind::Released]);

/// Where a view's seats are kept while it is updated.
pub trait Seats: Send {
    /// Shows `seat` as `next` if `next` is newer than what it shows ([`newer`]).
    fn show(
        &mut self,
        seat: SeatId,
        next: ViewSeat,
    ) -> impl Future<Output = anyhow::Result<Shown>> + Send;
}

/// Moves each seat `event` touches, if the event is newer than what the seat shows.
pub async fn update(seats: &mut impl Seats, event: &SeatEvent) -> anyhow::Result<()> {
    for seat in seats_of(event) {
        let Some(next) = after(event, version_of(event, *seat)) else {
            continue;
        };
        if seats.show(*seat, next).await? == Shown::Unknown {
            // Nothing to show it on.
            tracing::warn!(%seat, "seat event for an unknown seat");
        }
    }
    Ok(())
}

/// The live view: rows of `seat_view`, in the consumer's unit of work.
struct Live<'w>(&'w mut Work);

impl Seats for Live<'_> {
    async fn show(&mut self, seat: SeatId, next: ViewSeat) -> anyhow::Result<Shown> {
        store::show(self.0, seat, &next).await
    }
}

/// A view being rebuilt, in memory.
impl Seats for View {
    async fn show(&mut self, seat: SeatId, next: ViewSeat) -> anyhow::Result<Shown> {
        Ok(match self.get_mut(&seat) {
            None => Shown::Unknown,
            Some((_, row)) if newer(row.version, next.version) => {
                *row = next;
                Shown::Changed
            }
            Some(_) => Shown::NotNewer,
        })
    }
}

/// The consumer of the live view.
pub struct ViewUpdater;

impl EventHandler<SeatEvent> for ViewUpdater {
    async fn handle(&self, w: &mut Work, d: &Delivery<SeatEvent>) -> Result<(), Error<NotHandled>> {
        update(&mut Live(w), &d.event).await?;
        Ok(())
    }
}
