//! reorder: puts the rows a relay takes from memory back in commit order. Transactions that
//! run side by side (several committers, or replicas, on PostgreSQL) finish in another order
//! than they drew their `seq`, so a commit's rows can arrive just ahead of a row another one is
//! still committing. They wait here for it a moment, rather than sending the relay to read the
//! table back.

use crate::unit_of_work::outbox::Pending;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long rows wait behind a missing `seq` before the relay reads the table instead: long
/// enough for a commit under way to land, short for a gap that will not fill (a transaction
/// that rolled back, a replica's rows).
pub const GAP_WAIT: Duration = Duration::from_millis(10);

/// What the relay does with what was committed.
#[derive(Debug, PartialEq)]
pub enum Take {
    /// Publish these: they follow the last row published with nothing between (maybe none).
    Rows(Vec<Pending>),
    /// Rows wait behind a gap: look again when woken, or after [`GAP_WAIT`].
    Wait,
    /// Read the table: nothing is known yet, or a gap did not fill in time.
    Scan,
}

/// Committed rows in `seq` order, and where the published ones end.
#[derive(Default)]
pub struct Reorder {
    /// The `seq` the next row must have: every row before it is published. `None` until a
    /// read of the table says so.
    next: Option<i64>,
    /// Rows committed ahead of `next`, waiting for the rows between.
    ahead: BTreeMap<i64, Pending>,
    /// Since when rows have waited behind a gap.
    gap_since: Option<Instant>,
}

impl Reorder {
    /// Forgets what it holds: the table is read next, and knows every committed row.
    pub fn reset(&mut self) {
        *self = Reorder::default();
    }

    /// The rows up to `last` are published.
    pub fn published_through(&mut self, last: i64) {
        self.next = Some(self.next.map_or(last + 1, |n| n.max(last + 1)));
        self.ahead.retain(|&seq, _| seq > last);
    }

    /// Whether rows wait behind a gap.
    pub fn holding(&self) -> bool {
        !self.ahead.is_empty()
    }

    /// Takes newly `committed` rows in, and answers what to publish now.
    pub fn take(&mut self, committed: Vec<Pending>, now: Instant) -> Take {
        let Some(mut next) = self.next else {
            return Take::Scan;
        };
        // Rows below `next` were published from a read of the table already.
        self.ahead.extend(
            committed
                .into_iter()
                .filter(|r| r.seq >= next)
                .map(|r| (r.seq, r)),
        );
        let mut rows = Vec::new();
        while let Some(row) = self.ahead.remove(&next) {
            rows.push(row);
            next += 1;
        }
        if !rows.is_empty() || self.ahead.is_empty() {
            self.gap_since = self.holding().then_some(now);
            return Take::Rows(rows);
        }
        let since = *self.gap_since.get_or_insert(now);
        match now.duration_since(since) >= GAP_WAIT {
            true => Take::Scan,
            false => Take::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64) -> Pending {
        Pending {
            seq,
            subject: format!("s.{seq}"),
            headers: Vec::new(),
            payload: String::new(),
        }
    }

    fn seqs(take: Take) -> Vec<i64> {
        match take {
            Take::Rows(rows) => rows.iter().map(|r| r.seq).collect(),
            other => panic!("expected rows, got {other:?}"),
        }
    }

    #[test]
    fn rows_behind_a_gap_wait_for_it_then_go_in_order() {
        let t = Instant::now();
        let mut order = Reorder::default();
        assert_eq!(order.take(vec![row(1)], t), Take::Scan, "nothing known yet");
        order.published_through(1);
        assert_eq!(seqs(order.take(vec![row(2)], t)), [2]);
        order.published_through(2);
        // 3 is still being committed: 4 and 5 wait for it.
        assert_eq!(order.take(vec![row(4), row(5)], t), Take::Wait);
        assert!(order.holding());
        assert_eq!(seqs(order.take(vec![row(3)], t)), [3, 4, 5]);
        order.published_through(5);
        assert!(!order.holding());
        // Already published (read from the table): not again.
        assert_eq!(seqs(order.take(vec![row(5)], t)), Vec::<i64>::new());
    }

    #[test]
    fn a_gap_that_does_not_fill_sends_the_relay_to_the_table() {
        let t = Instant::now();
        let mut order = Reorder::default();
        order.published_through(10);
        assert_eq!(order.take(vec![row(12)], t), Take::Wait);
        assert_eq!(order.take(vec![row(13)], t + GAP_WAIT / 2), Take::Wait);
        assert_eq!(order.take(Vec::new(), t + GAP_WAIT), Take::Scan);
        order.reset();
        assert!(!order.holding());
        assert_eq!(order.take(vec![row(14)], t), Take::Scan);
    }
}
