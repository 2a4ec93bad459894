//! work: what a unit of work sees and how it ends — [`Work`] (the transaction, the time it
//! runs at, the events it emits, what to do after the commit) and [`Error`] (a business
//! rejection or a technical failure).

use crate::db::{Clock, Row, Sql, Statement, Tx, to_millis};
use contracts::trace::TraceParent;
use contracts::{Event, Message};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use std::borrow::Cow;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use time::OffsetDateTime;

/// The largest event (payload and headers) a unit of work may emit: nats-server's default
/// `max_payload` is 1 MiB (the committed configs keep it), less room for the protocol.
pub const MAX_EVENT_BYTES: usize = 1_000_000;

/// An event too large to publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the event {subject} would be {bytes} bytes, more than the {MAX_EVENT_BYTES} an event may be"
)]
pub struct EventTooLarge {
    pub subject: String,
    pub bytes: usize,
}

pub(super) fn size_of(msg: &Message) -> usize {
    msg.payload.len()
        + msg
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>()
}

/// How a unit of work did not succeed.
#[derive(Debug)]
pub enum Error<R> {
    /// A business "no" (seat taken, not the caller's, not awaiting payment): nothing is kept.
    Rejected(R),
    /// Something technical went wrong (database, a broken invariant): nothing is kept.
    Failed(anyhow::Error),
}

/// A business rejection a unit of work may end with; each boundary maps it once (HTTP: to a
/// 4xx problem).
pub trait Rejection: Send + 'static {}

/// For units that cannot be rejected, only fail.
#[derive(Debug)]
pub enum Never {}
impl Rejection for Never {}

impl<R: Rejection> From<R> for Error<R> {
    fn from(r: R) -> Self {
        Error::Rejected(r)
    }
}

impl<R> From<anyhow::Error> for Error<R> {
    fn from(e: anyhow::Error) -> Self {
        Error::Failed(e)
    }
}

impl From<Error<Never>> for anyhow::Error {
    fn from(e: Error<Never>) -> Self {
        match e {
            Error::Failed(e) => e,
            Error::Rejected(never) => match never {},
        }
    }
}

/// What a unit of work sees: the transaction, the time it runs at, and the events it emits.
pub struct Work {
    pub(super) tx: Tx,
    service: &'static str,
    now: OffsetDateTime,
    /// Where `now` comes from: the database's time, so every replica agrees on deadlines.
    clock: Clock,
    cause: Option<String>,
    /// The trace the unit's events are part of (their `traceparent`).
    trace: Option<TraceParent>,
    /// Events of the unit running now; they join `committing` if it succeeds.
    emitted: Vec<Message>,
    /// Events of the units that succeeded in this transaction, written at the commit.
    pub(super) committing: Vec<Message>,
    /// What the unit running now asked to run once its effects are durable.
    hooks: Vec<Hook>,
    /// Those of the units that succeeded in this transaction, run after the commit.
    pub(super) committed_hooks: Vec<Hook>,
    /// Rows a consumer's batch read ahead for its units, by kind of record and key
    /// ([`Work::take_read_ahead`]); forgotten when the batch's pass ends.
    ahead: HashMap<&'static str, HashMap<String, Row>>,
}

/// Something to do once a unit's effects are committed (e.g. wake who watches them).
pub(super) type Hook = Box<dyn FnOnce() + Send>;

impl Work {
    pub(super) fn new(tx: Tx, service: &'static str, clock: Clock) -> Work {
        Work {
            tx,
            service,
            now: clock.now(),
            clock,
            cause: None,
            trace: None,
            emitted: Vec::new(),
            committing: Vec::new(),
            hooks: Vec::new(),
            committed_hooks: Vec::new(),
            ahead: HashMap::new(),
        }
    }

    /// The time the unit runs at (the database's clock): every timestamp it writes.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    pub fn now_ms(&self) -> i64 {
        to_millis(self.now)
    }

    /// Emits `event`, caused by what the unit handles (see [`Work::caused_by`]): it is written
    /// to the outbox with the unit's effects and published after the commit. An event too large
    /// to publish fails the unit (see [`Work::fits`] to refuse it first).
    pub fn emit<E: Event>(&mut self, event: &E) {
        self.emitted.push(
            Message::new(self.service, event, self.cause.as_deref(), self.now)
                .traced(self.trace.as_ref()),
        );
    }

    /// Runs `hook` after the commit that makes this unit's effects durable; never if the unit
    /// or its transaction does not succeed. For telling this process's watchers of a change.
    pub fn after_commit(&mut self, hook: impl FnOnce() + Send + 'static) {
        self.hooks.push(Box::new(hook));
    }

    /// Whether `event` is small enough to publish, as this unit would emit it.
    pub fn fits<E: Event>(&self, event: &E) -> Result<(), EventTooLarge> {
        let msg = Message::new(self.service, event, self.cause.as_deref(), self.now)
            .traced(self.trace.as_ref());
        match size_of(&msg) {
            bytes if bytes > MAX_EVENT_BYTES => Err(EventTooLarge {
                subject: msg.subject,
                bytes,
            }),
            _ => Ok(()),
        }
    }

    /// The event or command the unit's events are caused by (their `ce-causationid`).
    pub fn caused_by(&mut self, cause: impl ToString) {
        self.cause = Some(cause.to_string());
    }

    /// The trace span the unit's events are emitted in (their `traceparent`): the command's, or
    /// a child of the handled event's.
    pub fn in_trace(&mut self, span: TraceParent) {
        self.trace = Some(span);
    }

    /// Runs `unit` in this transaction: its events are kept for the commit if it succeeds.
    pub(super) async fn unit<T, R>(
        &mut self,
        unit: impl for<'w> FnOnce(&'w mut Work) -> BoxFuture<'w, Result<T, Error<R>>>,
    ) -> Result<T, Error<R>> {
        self.now = self.clock.now();
        self.cause = None;
        self.trace = None;
        self.emitted.clear();
        self.hooks.clear();
        // A unit that panics fails like any error (it keeps nothing); the others go on.
        let mut outcome = match AssertUnwindSafe(unit(self)).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::Failed(anyhow::anyhow!("the unit of work panicked"))),
        };
        // The writes it sent later are part of it: their failure is its own (in a batch, where
        // they may wait on, see `Tx::blurred`).
        if outcome.is_ok()
            && let Err(e) = self.tx.unit_ended().await
        {
            outcome = Err(Error::Failed(e));
        }
        if outcome.is_err() {
            self.tx.forget_later();
        }
        // One oversized event would stall the relay: a unit emitting one keeps nothing.
        if outcome.is_ok()
            && let Some(msg) = self.emitted.iter().find(|m| size_of(m) > MAX_EVENT_BYTES)
        {
            let (subject, bytes) = (msg.subject.clone(), size_of(msg));
            outcome = Err(Error::Failed(EventTooLarge { subject, bytes }.into()));
        }
        if outcome.is_ok() {
            self.committing.append(&mut self.emitted);
            self.committed_hooks.append(&mut self.hooks);
        }
        outcome
    }
}

/// Rows read ahead: a consumer's batch reads in one statement the records its units will each
/// read ([`crate::messaging::consumer::EventHandler::read_ahead`]), since on PostgreSQL every
/// statement is a round trip. A row serves the first read of its record only: that reader may
/// write it, so a second read goes to the database (after the writes waiting for it).
impl Work {
    /// Keeps `row`, read ahead for the record `key` of kind `kind`, for this pass of the batch.
    pub fn keep_read_ahead(&mut self, kind: &'static str, key: String, row: Row) {
        self.ahead.entry(kind).or_default().insert(key, row);
    }

    /// The row read ahead for the record `key` of kind `kind`, if any; once.
    pub fn take_read_ahead(&mut self, kind: &'static str, key: &str) -> Option<Row> {
        self.ahead.get_mut(kind)?.remove(key)
    }

    /// Forgets what was read ahead: the pass it was read for has ended.
    pub(super) fn forget_read_ahead(&mut self) {
        self.ahead.clear();
    }
}

/// How many kept events and hooks the transaction had at a savepoint: rolled back to it, it
/// has as many again.
pub(super) struct Mark {
    events: usize,
    hooks: usize,
}

impl Work {
    pub(super) fn mark(&self) -> Mark {
        Mark {
            events: self.committing.len(),
            hooks: self.committed_hooks.len(),
        }
    }

    /// Forgets the events and hooks kept since `mark` (their units were rolled back).
    pub(super) fn rewind(&mut self, mark: &Mark) {
        self.committing.truncate(mark.events);
        self.committed_hooks.truncate(mark.hooks);
    }
}

impl Sql for Work {
    fn statement(&mut self, text: Cow<'static, str>) -> Statement<'_> {
        self.tx.statement(text)
    }
}

/// A unit of work of a batch: code over [`Work`] with an outcome.
pub type Unit<T, R> =
    Arc<dyn for<'w> Fn(&'w mut Work) -> BoxFuture<'w, Result<T, Error<R>>> + Send + Sync>;

/// What a batch reads ahead, at the start of each pass, for the units it is about to run (their
/// indexes in the batch): see [`Work::keep_read_ahead`].
pub type Ahead = Arc<
    dyn for<'w> Fn(&'w mut Work, &'w [usize]) -> BoxFuture<'w, anyhow::Result<()>> + Send + Sync,
>;
