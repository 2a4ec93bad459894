//! load: whether the committer is overloaded — the one signal by which a service sheds new
//! arrivals early (503 with `Retry-After`) instead of queueing them for seconds. As in CoDel:
//! a queue that never empties within an interval (its shortest wait stays above a target) is a
//! standing queue, more work than the committer does, while a burst that drains is not. The
//! wait is a submission's time in the queue, not its run: a PostgreSQL commit's flush is no
//! sign of overload. And a short queue is not shed however long it waits: its wait is bounded
//! by the few callers in it (e.g. a fixed set of users each waiting for their answer).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The wait in the committer's queue that is still fine.
const TARGET: Duration = Duration::from_millis(5);
/// How long the shortest wait must stay above [`TARGET`] to be a standing queue; also how long
/// a verdict holds.
const INTERVAL: Duration = Duration::from_millis(100);
/// Submissions that may wait however long without a verdict of overload: as many as one
/// group takes.
const SHORT: usize = 128;

/// The committer's queue: how long submissions waited in it lately.
#[derive(Clone)]
pub struct Load(Arc<Shared>);

struct Shared {
    window: Mutex<Window>,
    /// Submissions handed over and not yet taken by a group.
    queued: AtomicUsize,
}

struct Window {
    start: Instant,
    /// The shortest wait since `start`.
    shortest: Duration,
    /// Overloaded until then (by the last whole interval).
    overloaded_until: Option<Instant>,
}

impl Default for Load {
    fn default() -> Self {
        Load(Arc::new(Shared {
            window: Mutex::new(Window {
                start: Instant::now(),
                shortest: Duration::MAX,
                overloaded_until: None,
            }),
            queued: AtomicUsize::new(0),
        }))
    }
}

impl Load {
    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        // Plain numbers: a panic elsewhere cannot leave them inconsistent.
        self.0.window.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A submission is being handed over: counted as queued from now on, unless the hand-over
    /// does not happen (the committer has stopped, or the caller gave up while the queue was
    /// full): then the returned guard takes it back when dropped.
    pub(super) fn queued(&self) -> Handing<'_> {
        self.0.queued.fetch_add(1, Ordering::Relaxed);
        Handing(Some(self))
    }

    /// A group takes `n` submissions.
    pub(super) fn taken(&self, n: usize) {
        self.0.queued.fetch_sub(n, Ordering::Relaxed);
    }

    /// A group starts with a submission that waited `waited` in the queue (its oldest).
    pub(super) fn waited(&self, waited: Duration) {
        // What an operator sees of overload: how long work waits for the committer, and how
        // much is waiting.
        metrics::histogram!("unit_of_work_queue_wait_seconds").record(waited.as_secs_f64());
        metrics::gauge!("unit_of_work_queued").set(self.0.queued.load(Ordering::Relaxed) as f64);
        let now = Instant::now();
        let mut w = self.window();
        w.shortest = w.shortest.min(waited);
        if now.duration_since(w.start) >= INTERVAL {
            w.overloaded_until = (w.shortest > TARGET).then(|| now + INTERVAL);
            w.start = now;
            w.shortest = Duration::MAX;
        }
    }

    /// Whether the committer has had more work than it does for the last interval: new
    /// commands are better refused now than answered late.
    pub fn overloaded(&self) -> bool {
        self.0.queued.load(Ordering::Relaxed) > SHORT
            && self
                .window()
                .overloaded_until
                .is_some_and(|until| Instant::now() < until)
    }
}

/// A submission counted as queued while it is being handed over.
pub(super) struct Handing<'a>(Option<&'a Load>);

impl Handing<'_> {
    /// It is in the queue: a group takes it off the count.
    pub(super) fn handed(mut self) {
        self.0 = None;
    }
}

impl Drop for Handing<'_> {
    fn drop(&mut self) {
        if let Some(load) = self.0 {
            load.taken(1);
        }
    }
}

#[cfg(test)]
impl Load {
    /// A load whose last interval ended with every wait `waited`.
    pub(crate) fn after_an_interval(&self, waited: Duration) {
        self.window().start = Instant::now() - INTERVAL;
        self.waited(waited);
    }

    /// A load overloaded for the last interval, with a long queue.
    pub(crate) fn overloaded_now() -> Load {
        let load = Load::default();
        (0..=SHORT).for_each(|_| load.queued().handed());
        load.after_an_interval(TARGET * 4);
        load
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_that_empties_is_not_overloaded_and_a_standing_one_is() {
        let load = Load::default();
        (0..=SHORT).for_each(|_| load.queued().handed());
        assert!(!load.overloaded());
        // A burst: one long wait, but also a short one within the interval.
        load.waited(Duration::from_millis(50));
        load.after_an_interval(Duration::from_micros(100));
        assert!(!load.overloaded());
        // Every wait of the interval above the target: a standing queue.
        load.waited(Duration::from_millis(30));
        load.after_an_interval(Duration::from_millis(20));
        assert!(load.overloaded());
        // It drains again.
        load.after_an_interval(Duration::from_millis(1));
        assert!(!load.overloaded());
    }

    #[test]
    fn a_short_queue_is_not_overloaded_however_long_it_waits() {
        let load = Load::overloaded_now();
        load.taken(SHORT);
        assert!(!load.overloaded(), "one submission left");
        // A hand-over under way counts; one that does not happen is taken back.
        let handing: Vec<_> = (0..SHORT).map(|_| load.queued()).collect();
        assert!(load.overloaded());
        drop(handing);
        assert!(!load.overloaded());
    }

    #[test]
    fn a_verdict_lapses_when_nothing_runs() {
        let load = Load::overloaded_now();
        assert!(load.overloaded());
        load.window().overloaded_until = Some(Instant::now() - Duration::from_millis(1));
        assert!(!load.overloaded());
    }
}
