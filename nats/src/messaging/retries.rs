//! retries: when a consumer gives up on a message. Only a failure that repeats the same way for
//! the same message counts towards the DLQ; a database that is down (a failure that passes by
//! itself) never does, however many deliveries it takes.

use std::collections::HashMap;
use std::sync::Mutex;

/// Most messages whose failures are remembered at once; the oldest are forgotten beyond it (a
/// forgotten message just starts counting again).
const REMEMBERED: usize = 10_000;

/// The failures in a row of the messages that are failing now, by stream sequence.
#[derive(Default)]
pub struct Failures(Mutex<HashMap<u64, Failing>>);

struct Failing {
    reason: String,
    times: i64,
    /// For forgetting the oldest first.
    since: u64,
}

impl Failures {
    fn failing(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Failing>> {
        // Each method leaves the map consistent in one step: a panic elsewhere cannot tear it.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Message `seq` failed with `reason`; answers how many times in a row it has failed that
    /// way.
    pub fn failed(&self, seq: u64, reason: &str) -> i64 {
        let mut failing = self.failing();
        if failing.len() >= REMEMBERED
            && !failing.contains_key(&seq)
            && let Some(oldest) = failing.iter().min_by_key(|(_, f)| f.since).map(|(s, _)| *s)
        {
            failing.remove(&oldest);
        }
        let next = failing.values().map(|f| f.since).max().unwrap_or(0) + 1;
        let f = failing.entry(seq).or_insert(Failing {
            reason: String::new(),
            times: 0,
            since: next,
        });
        if f.reason == reason {
            f.times += 1;
        } else {
            f.reason = reason.to_owned();
            f.times = 1;
        }
        f.times
    }

    /// Message `seq` is settled (handled or dead-lettered).
    pub fn forget(&self, seq: u64) {
        self.failing().remove(&seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_failure_in_a_row_counts() {
        let f = Failures::default();
        assert_eq!(f.failed(7, "constraint x"), 1);
        assert_eq!(f.failed(7, "constraint x"), 2);
        assert_eq!(f.failed(7, "another reason"), 1);
        assert_eq!(f.failed(8, "constraint x"), 1);
        f.forget(7);
        assert_eq!(f.failed(7, "another reason"), 1);
    }
}
