//! Streams and subjects: one stream per context, owned by its publisher, plus the DLQ.
//! Subjects read `<context>.<event>.<aggregate id>` so one saga can be read back by filter.

/// The four bounded contexts; each publishes to exactly one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Context {
    Concert,
    Seat,
    Reservation,
    Payment,
}

/// Where messages that a consumer could not handle are kept, with the reason.
pub const DLQ_STREAM: &str = "DLQ";
/// Subjects of the DLQ: `dlq.<service>.<original subject>`.
pub const DLQ_PREFIX: &str = "dlq";

impl Context {
    pub const ALL: [Context; 4] = [
        Context::Concert,
        Context::Seat,
        Context::Reservation,
        Context::Payment,
    ];

    /// The subject prefix and the `ce-type` prefix of the context's events.
    pub fn prefix(self) -> &'static str {
        match self {
            Context::Concert => "concert",
            Context::Seat => "seat",
            Context::Reservation => "reservation",
            Context::Payment => "payment",
        }
    }

    /// The service that owns the context: the only one publishing its events.
    pub fn service(self) -> &'static str {
        match self {
            Context::Concert => "concert-svc",
            Context::Seat => "seat-svc",
            Context::Reservation => "reservation-svc",
            Context::Payment => "payment-svc",
        }
    }

    pub fn stream(self) -> &'static str {
        match self {
            Context::Concert => "CONCERT",
            Context::Seat => "SEAT",
            Context::Reservation => "RESERVATION",
            Context::Payment => "PAYMENT",
        }
    }

    /// Every subject of the context's stream.
    pub fn wildcard(self) -> String {
        format!("{}.>", self.prefix())
    }

    /// Filter subject for one event name of the context, any aggregate.
    pub fn filter(self, event: &str) -> String {
        format!("{}.{event}.*", self.prefix())
    }

    /// The context whose stream is `name`.
    pub fn of_stream(name: &str) -> Option<Context> {
        Context::ALL.into_iter().find(|c| c.stream() == name)
    }

    /// Where a dead letter of `consumer` is replayed: `<context>.replay.<consumer>.<original
    /// subject>`, on the context's own stream, seen by that consumer alone (every other filter
    /// names an event kind, and no event is called `replay`).
    pub fn replay_subject(self, consumer: &str, original_subject: &str) -> String {
        format!("{}.replay.{consumer}.{original_subject}", self.prefix())
    }

    /// The filter that gives `consumer` the dead letters replayed to it.
    pub fn replay_filter(self, consumer: &str) -> String {
        format!("{}.replay.{consumer}.>", self.prefix())
    }
}

/// DLQ subject for a message `service` could not handle.
pub fn dlq_subject(service: &str, original_subject: &str) -> String {
    format!("{DLQ_PREFIX}.{service}.{original_subject}")
}
