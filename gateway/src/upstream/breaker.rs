//! breaker: one upstream's circuit breaker. After `failures` consecutive failures or timeouts
//! it opens: requests are refused at once instead of each waiting out a timeout. After `open`
//! one request goes through as a probe (half-open); its success closes the breaker, its failure
//! opens it again.
//!
//! Written here rather than taken from a crate: the state is three cases and a counter, and the
//! gateway needs to know when a refused request may come back (`Retry-After`), which the circuit
//! breaker crates looked at do not tell.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe is out; everything else is refused until it answers, or until `open` has
    /// passed again (a probe whose caller went away never answers).
    HalfOpen {
        since: Instant,
    },
}

#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    failures: u32,
    open: Duration,
}

/// What the breaker lets a request do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Go,
    /// Refused; the breaker lets a probe through after this long.
    Refused(Duration),
}

impl Breaker {
    pub fn new(failures: u32, open: Duration) -> Breaker {
        Breaker {
            state: Mutex::new(State::Closed { failures: 0 }),
            failures,
            open,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value: a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn permit(&self) -> Permit {
        self.permit_at(Instant::now())
    }

    fn permit_at(&self, now: Instant) -> Permit {
        let mut state = self.state();
        let probe_at = match *state {
            State::Closed { .. } => return Permit::Go,
            State::Open { until } => until,
            State::HalfOpen { since } => since + self.open,
        };
        if now >= probe_at {
            *state = State::HalfOpen { since: now };
            Permit::Go
        } else {
            Permit::Refused(probe_at - now)
        }
    }

    pub fn succeeded(&self) {
        *self.state() = State::Closed { failures: 0 };
    }

    pub fn failed(&self) {
        self.failed_at(Instant::now())
    }

    fn failed_at(&self, now: Instant) {
        let mut state = self.state();
        let open = State::Open {
            until: now + self.open,
        };
        *state = match *state {
            State::Closed { failures } if failures + 1 < self.failures => State::Closed {
                failures: failures + 1,
            },
            _ => open,
        };
        if matches!(*state, State::Open { .. }) {
            tracing::warn!(open_for = ?self.open, "upstream breaker open");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_a_success_in_between_resets() {
        let b = Breaker::new(3, Duration::from_secs(60));
        b.failed();
        b.failed();
        b.succeeded();
        b.failed();
        b.failed();
        assert_eq!(b.permit(), Permit::Go);
        b.failed();
        assert!(matches!(b.permit(), Permit::Refused(_)));
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_answer_decides() {
        let open = Duration::from_secs(5);
        let b = Breaker::new(1, open);
        let t0 = Instant::now();
        b.failed_at(t0);
        assert_eq!(
            b.permit_at(t0 + open / 2),
            Permit::Refused(open / 2),
            "open"
        );
        let t1 = t0 + open;
        assert_eq!(b.permit_at(t1), Permit::Go, "the probe");
        assert!(
            matches!(b.permit_at(t1), Permit::Refused(_)),
            "while it is out"
        );
        b.failed_at(t1);
        assert!(
            matches!(b.permit_at(t1 + open / 2), Permit::Refused(_)),
            "open again"
        );
        let t2 = t1 + open;
        assert_eq!(b.permit_at(t2), Permit::Go, "the next probe");
        assert_eq!(
            b.permit_at(t2 + open),
            Permit::Go,
            "a probe that never answered is replaced"
        );
        b.succeeded();
        assert_eq!(b.permit_at(t2), Permit::Go);
        assert_eq!(b.permit_at(t2), Permit::Go, "closed: everyone goes");
    }
}
