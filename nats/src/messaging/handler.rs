//! handler: what a service writes to handle one context's events — the [`EventHandler`] trait,
//! the [`Delivery`] it is given (read from a message by [`decode`]), and [`NotHandled`], how it
//! says "not now" or "never". The loop around it, and every ack, is [`super::consumer`]'s.

use crate::unit_of_work::{Ahead, Error, Rejection, Work};
use contracts::{Envelope, Event};
use std::future::Future;
use std::sync::Arc;

/// One decoded message.
#[derive(Clone, Debug)]
pub struct Delivery<E> {
    pub envelope: Envelope,
    pub event: E,
    /// Position in the stream: later events of one stream have higher sequences.
    pub stream_seq: u64,
    /// 1 on first delivery.
    pub delivered: i64,
}

/// Why a handler did not handle an event now. A business "no" is not one of these: it is
/// answered with an event, and the delivery is handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotHandled {
    /// It cannot be handled yet (e.g. the event it follows has not arrived): retry later.
    NotYet(String),
    /// It can never be handled: to the DLQ with the reason.
    Never(String),
}

impl Rejection for NotHandled {}

/// Handles one event of context `E` inside a unit of work: its effects and the events it emits
/// commit together with the inbox record, or not at all. It may run more than once before the
/// commit (when another event of its batch does not succeed, the batch is rolled back and runs
/// again without it), so it changes nothing outside `w`: what others must hear of goes in
/// [`Work::after_commit`].
pub trait EventHandler<E: Event>: Send + Sync + 'static {
    fn handle(
        &self,
        w: &mut Work,
        d: &Delivery<E>,
    ) -> impl Future<Output = Result<(), Error<NotHandled>>> + Send;

    /// Reads ahead, in one statement, what handling `events` (a batch, before any of them is
    /// handled) will read one event at a time, keeping the rows in `w`
    /// ([`Work::keep_read_ahead`]) for [`EventHandler::handle`] to take: on PostgreSQL each
    /// read spared is a round trip. By default nothing.
    fn read_ahead(
        &self,
        w: &mut Work,
        events: &[&Delivery<E>],
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        let _ = (w, events);
        async { Ok(()) }
    }
}

/// A batch's read ahead, as the unit of work runs it: `handler`'s, over the deliveries whose
/// units are about to run.
pub(super) fn read_ahead<E: Event, H: EventHandler<E>>(
    handler: Arc<H>,
    deliveries: Arc<Vec<Arc<Delivery<E>>>>,
) -> Ahead {
    Arc::new(move |w: &mut Work, running: &[usize]| {
        let handler = handler.clone();
        let picked: Vec<Arc<Delivery<E>>> =
            running.iter().map(|&i| deliveries[i].clone()).collect();
        Box::pin(async move {
            let events: Vec<&Delivery<E>> = picked.iter().map(|d| d.as_ref()).collect();
            handler.read_ahead(w, &events).await
        })
    })
}

/// Reads the envelope and payload of a message as an event of context `E`; the error says why not.
pub fn decode<E: Event>(msg: &async_nats::jetstream::Message) -> Result<(Envelope, E), String> {
    let headers = msg
        .headers
        .as_ref()
        .ok_or_else(|| "message has no headers (no CloudEvents envelope)".to_owned())?;
    let envelope = Envelope::from_headers(|name| headers.get(name).map(|v| v.as_str()))
        .map_err(|e| e.to_string())?;
    let event = envelope
        .decode::<E>(&msg.payload)
        .map_err(|e| e.to_string())?;
    Ok((envelope, event))
}
