//! endings: one saga of each way a saga ends, for the tests that follow them (timelines,
//! metrics).

use crate::frontend::Frontend;

/// One saga of each ending (see [`one_of_each_ending`]): the reservation ids.
pub struct Endings {
    pub confirmed: String,
    pub failed: String,
    pub cancelled: String,
    pub expired: String,
}

/// On the first four of `seats` (100 points or less): confirmed (cora), failed for want of points
/// (fred), cancelled (cass), expired (emma, never paid); answers once each has ended.
pub async fn one_of_each_ending(
    sys: &impl Frontend,
    schedule: &str,
    seats: &[String],
) -> anyhow::Result<Endings> {
    let seat = |i: usize| seats.get(i).cloned().into_iter().collect::<Vec<_>>();
    let confirmed = crate::flows::holding(sys, "cora", 100, schedule, &seat(0)).await?;
    crate::flows::pay(sys, "cora", &confirmed)
        .await?
        .expect(202);
    let failed = crate::flows::holding(sys, "fred", 10, schedule, &seat(1)).await?;
    crate::flows::pay(sys, "fred", &failed).await?.expect(202);
    let cancelled = crate::flows::holding(sys, "cass", 100, schedule, &seat(2)).await?;
    crate::flows::cancel(sys, "cass", &cancelled)
        .await?
        .expect(202);
    let expired = crate::flows::holding(sys, "emma", 100, schedule, &seat(3)).await?;
    let endings = Endings {
        confirmed,
        failed,
        cancelled,
        expired,
    };
    for (user, id, status) in endings.each() {
        crate::flows::wait_reservation(sys, user, id, status).await?;
    }
    Ok(endings)
}

impl Endings {
    /// (user, reservation id, final status) of each.
    pub fn each(&self) -> [(&'static str, &str, &'static str); 4] {
        [
            ("cora", &self.confirmed, "confirmed"),
            ("fred", &self.failed, "failed"),
            ("cass", &self.cancelled, "cancelled"),
            ("emma", &self.expired, "expired"),
        ]
    }
}
