//! shed: a new arrival (e.g. a user joining a sale's queue) that comes while the service's
//! committer is overloaded is refused at once, 503 with `Retry-After`, rather than queued for
//! seconds behind more work than the service does. What is already admitted (a user's hold and
//! payment, the sagas' events) is never shed, so it keeps its pace and its latency; and the
//! client knows when to come back.

use super::problem::{Problem, kinds};
use crate::unit_of_work::Load;

/// Seconds after which a refused arrival may come back: long enough that those waiting do not
/// become a load of their own.
const COME_BACK: u64 = 3;

/// Admits a new arrival, or refuses it while `load` says the service is overloaded.
pub fn admit(load: &Load) -> Result<(), Problem> {
    if !load.overloaded() {
        return Ok(());
    }
    metrics::counter!("http_shed_total").increment(1);
    Err(Problem::new(
        kinds::OVERLOADED,
        "more users are arriving than the service can serve just now; nothing was done: \
         come back after the Retry-After seconds",
    )
    .retry_after(COME_BACK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_are_admitted_unless_overloaded_then_told_when_to_come_back() {
        assert!(admit(&Load::default()).is_ok());
        let refused = admit(&Load::overloaded_now()).expect_err("overloaded");
        assert_eq!(refused.kind, kinds::OVERLOADED);
        assert_eq!(refused.retry_after, Some(COME_BACK));
        assert!(refused.detail.contains("nothing was done"), "{refused:?}");
    }
}
