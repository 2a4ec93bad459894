//! updater: keeps the availability view from seat-svc's events. The same [`update`] serves the
//! live view (rows in the database, inside the consumer's unit of work) and a rebuild (rows in
//! memory while the `SEAT` stream is replayed), so a rebuild is the live path replayed.

use super::domain::{ViewSeat, evolve, seats_of, version_of};
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
    fn get(
        &mut self,
        seat: SeatId,
    ) -> impl Future<Output = anyhow::Result<Option<ViewSeat>>> + Send;
    fn set(
        &mut self,
        seat: SeatId,
        view: ViewSeat,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Moves each seat `event` touches, if the event is newer than what the seat shows.
pub async fn update(seats: &mut impl Seats, event: &SeatEvent) -> anyhow::Result<()> {
    for seat in seats_of(event) {
        let Some(current) = seats.get(*seat).await? else {
            // A seat this catalog never had: nothing to show it on.
            tracing::warn!(%seat, "seat event for an unknown seat");
            continue;
        };
        if let Some(next) = evolve(&current, event, version_of(event, *seat)) {
            seats.set(*seat, next).await?;
        }
    }
    Ok(())
}

/// The live view: rows of `seat_view`, in the consumer's unit of work.
struct Live<'w>(&'w mut Work);

impl Seats for Live<'_> {
    async fn get(&mut self, seat: SeatId) -> anyhow::Result<Option<ViewSeat>> {
        store::get(self.0, seat).await
    }

    async fn set(&mut self, seat: SeatId, view: ViewSeat) -> anyhow::Result<()> {
        store::set(self.0, seat, &view).await
    }
}

/// A view being rebuilt, in memory.
impl Seats for View {
    async fn get(&mut self, seat: SeatId) -> anyhow::Result<Option<ViewSeat>> {
        // The map's own `get`, not this trait's.
        Ok(std::collections::BTreeMap::get(self, &seat).map(|(_, v)| v.clone()))
    }

    async fn set(&mut self, seat: SeatId, view: ViewSeat) -> anyhow::Result<()> {
        if let Some((_, row)) = self.get_mut(&seat) {
            *row = view;
        }
        Ok(())
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
