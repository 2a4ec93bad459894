//! The envelope: CloudEvents 1.0 attributes in binary content mode, i.e. as message headers, with
//! the JSON payload as the body. `Nats-Msg-Id` equals the event id so the broker drops re-publishes.

use crate::decode::DecodeError;
use crate::events::Event;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

pub const SPEC_VERSION: &str = "1.0";

pub mod header {
    pub const SPEC_VERSION: &str = "ce-specversion";
    pub const ID: &str = "ce-id";
    pub const TYPE: &str = "ce-type";
    pub const SOURCE: &str = "ce-source";
    pub const TIME: &str = "ce-time";
    pub const SUBJECT: &str = "ce-subject";
    pub const CORRELATION_ID: &str = "ce-correlationid";
    pub const CAUSATION_ID: &str = "ce-causationid";
    /// CloudEvents' `datacontenttype` in binary mode: the payload's media type.
    pub const DATA_CONTENT_TYPE: &str = "ce-datacontenttype";
    pub const TRACEPARENT: &str = "traceparent";
    /// The broker's de-duplication key.
    pub const MSG_ID: &str = "Nats-Msg-Id";
}

/// The CloudEvents attributes of one event.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    pub id: Uuid,
    /// `<context>.<event>.v<version>`, e.g. `seat.held.v1`.
    pub ce_type: String,
    /// The service that produced the event.
    pub source: String,
    pub time: OffsetDateTime,
    /// The aggregate id (the last subject token).
    pub subject: String,
    /// The reservation id of the saga, where there is one.
    pub correlation_id: Option<Uuid>,
    /// What caused this event: the id of the event it handles, or the request id
    /// (`X-Request-Id`) of the HTTP command it carries out.
    pub causation_id: Option<String>,
    pub traceparent: Option<String>,
}

/// A message ready to publish: subject, headers and body.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub id: Uuid,
    pub subject: String,
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Envelope {
    pub fn for_event<E: Event>(
        source: &str,
        event: &E,
        causation_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Self {
        Envelope {
            id: Uuid::now_v7(),
            ce_type: event.ce_type(),
            source: source.to_owned(),
            time: now,
            subject: event.aggregate_id().to_string(),
            correlation_id: event.reservation_id().map(|r| r.0),
            causation_id: causation_id.map(str::to_owned),
            traceparent: None,
        }
    }

    pub fn headers(&self) -> Vec<(String, String)> {
        let mut h = vec![
            (header::SPEC_VERSION, SPEC_VERSION.to_owned()),
            (header::ID, self.id.to_string()),
            (header::MSG_ID, self.id.to_string()),
            (header::TYPE, self.ce_type.clone()),
            (header::SOURCE, self.source.clone()),
            (
                header::TIME,
                self.time
                    .format(&Rfc3339)
                    .expect("a UTC time always formats as RFC 3339"),
            ),
            (header::SUBJECT, self.subject.clone()),
            (header::DATA_CONTENT_TYPE, "application/json".to_owned()),
        ];
        if let Some(c) = self.correlation_id {
            h.push((header::CORRELATION_ID, c.to_string()));
        }
        if let Some(c) = &self.causation_id {
            h.push((header::CAUSATION_ID, c.clone()));
        }
        if let Some(t) = &self.traceparent {
            h.push((header::TRACEPARENT, t.clone()));
        }
        h.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// Reads the envelope back from headers; `get` looks one header up by name.
    pub fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, DecodeError> {
        let required = |name: &'static str| get(name).ok_or(DecodeError::MissingHeader(name));
        let uuid = |name: &'static str, value: &str| {
            value.parse::<Uuid>().map_err(|_| DecodeError::BadHeader {
                header: name,
                value: value.to_owned(),
            })
        };
        let optional_uuid = |name: &'static str| get(name).map(|v| uuid(name, v)).transpose();

        let spec = required(header::SPEC_VERSION)?;
        if spec != SPEC_VERSION {
            return Err(DecodeError::BadHeader {
                header: header::SPEC_VERSION,
                value: spec.to_owned(),
            });
        }
        let time = required(header::TIME)?;
        Ok(Envelope {
            id: uuid(header::ID, required(header::ID)?)?,
            ce_type: required(header::TYPE)?.to_owned(),
            source: required(header::SOURCE)?.to_owned(),
            time: OffsetDateTime::parse(time, &Rfc3339).map_err(|_| DecodeError::BadHeader {
                header: header::TIME,
                value: time.to_owned(),
            })?,
            subject: required(header::SUBJECT)?.to_owned(),
            correlation_id: optional_uuid(header::CORRELATION_ID)?,
            causation_id: get(header::CAUSATION_ID).map(str::to_owned),
            traceparent: get(header::TRACEPARENT).map(str::to_owned),
        })
    }

    /// Decodes the body as an event of context `E`, checking the type names that context.
    pub fn decode<E: Event>(&self, body: &[u8]) -> Result<E, DecodeError> {
        let unknown = || DecodeError::UnknownType(self.ce_type.clone());
        let mut parts = self.ce_type.split('.');
        let (Some(context), Some(name), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(unknown());
        };
        if context != E::CONTEXT.prefix() {
            return Err(unknown());
        }
        let version = version
            .strip_prefix('v')
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(unknown)?;
        E::decode(name, version, body)
    }
}

impl Message {
    /// The same message in the trace `trace` (a `traceparent` header), if any.
    pub fn traced(mut self, trace: Option<&crate::trace::TraceParent>) -> Self {
        if let Some(t) = trace {
            self.headers.retain(|(k, _)| k != header::TRACEPARENT);
            self.headers
                .push((header::TRACEPARENT.to_owned(), t.to_string()));
        }
        self
    }

    /// The message for `event`, caused by `causation_id`, stamped `now`.
    pub fn new<E: Event>(
        source: &str,
        event: &E,
        causation_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Self {
        let envelope = Envelope::for_event(source, event, causation_id, now);
        Message {
            id: envelope.id,
            subject: event.subject(),
            headers: envelope.headers(),
            payload: event.encode(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{SeatEvent, SeatSold};
    use crate::ids::{ReservationId, SeatId};
    use std::collections::HashMap;

    #[test]
    fn headers_round_trip_and_carry_the_correlation_id() {
        let reservation = ReservationId::new();
        let cause = Uuid::now_v7().to_string();
        let event = SeatEvent::Sold(SeatSold {
            reservation_id: reservation,
            seat_ids: vec![SeatId::new()],
            versions: Default::default(),
        });
        let msg = Message::new("seat-svc", &event, Some(&cause), OffsetDateTime::now_utc());
        let map: HashMap<_, _> = msg.headers.iter().cloned().collect();
        assert_eq!(map[header::MSG_ID], msg.id.to_string());
        let env = Envelope::from_headers(|k| map.get(k).map(String::as_str)).unwrap();
        assert_eq!(env.correlation_id, Some(reservation.0));
        assert_eq!(env.causation_id, Some(cause));
        assert_eq!(map[header::DATA_CONTENT_TYPE], "application/json");
        assert_eq!(env.decode::<SeatEvent>(&msg.payload).unwrap(), event);
    }

    #[test]
    fn an_event_of_another_context_is_refused() {
        let event = SeatEvent::Sold(SeatSold {
            reservation_id: ReservationId::new(),
            seat_ids: vec![],
            versions: Default::default(),
        });
        let env = Envelope::for_event("seat-svc", &event, None, OffsetDateTime::now_utc());
        let err = env
            .decode::<crate::events::PaymentEvent>(&event.encode())
            .unwrap_err();
        assert!(matches!(err, DecodeError::UnknownType(_)));
    }
}
