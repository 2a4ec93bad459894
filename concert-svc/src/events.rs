//! events: keeps the availability view from the `SEAT` stream.

use crate::domain::{apply, seats_of};
use crate::store;
use contracts::SeatEvent;
use platform::apply::Apply;
use platform::consumer::{Delivery, Outcome};
use platform::db::Tx;
use time::OffsetDateTime;

/// Seat events this service reads.
pub const SEAT_EVENTS: &[&str] = &["held", "sold", "released"];

pub struct ViewUpdater;

impl Apply<SeatEvent> for ViewUpdater {
    async fn apply(
        &self,
        tx: &mut Tx,
        d: &Delivery<SeatEvent>,
        _now: OffsetDateTime,
    ) -> anyhow::Result<Outcome> {
        for seat in seats_of(&d.event) {
            let Some(current) = store::view_seat(tx, *seat).await? else {
                // A seat this catalog never had: nothing to show it on.
                tracing::warn!(%seat, "seat event for an unknown seat");
                continue;
            };
            if let Some(next) = apply(&current, &d.event, d.stream_seq) {
                store::set_view_seat(tx, *seat, &next).await?;
            }
        }
        Ok(Outcome::Done)
    }
}
