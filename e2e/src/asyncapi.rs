//! asyncapi: the events' published contract as an AsyncAPI 3.0 document, generated from the code
//! — channels (subject patterns, with their stream), messages (event types with their CloudEvents
//! headers and the payload schema committed under `contracts/schemas/`), and for each, the
//! service that sends it and those that receive it (their `Service::consumes`). Committed as
//! `contracts/asyncapi.yaml`; a test keeps it in step.

use contracts::Context;
use contracts::schemas::EventSchema;
use nats::messaging::topology::Consumes;
use serde_json::{Map, Value, json};

/// Each service's name and what it consumes.
pub type Consumers = Vec<(&'static str, Vec<Consumes>)>;

/// The four services' consumption, as their code declares it.
pub fn consumers() -> Consumers {
    use nats::runtime::Service;
    vec![
        (
            concert_svc::ConcertSvc::NAME,
            concert_svc::ConcertSvc::consumes(),
        ),
        (seat_svc::SeatSvc::NAME, seat_svc::SeatSvc::consumes()),
        (
            reservation_svc::ReservationSvc::NAME,
            reservation_svc::ReservationSvc::consumes(),
        ),
        (
            payment_svc::PaymentSvc::NAME,
            payment_svc::PaymentSvc::consumes(),
        ),
    ]
}

/// AsyncAPI keys allow letters, digits, `_` and `-`.
fn key(text: &str) -> String {
    text.replace('.', "_")
}

/// The document.
pub fn document(events: &[EventSchema], consumers: &Consumers) -> Value {
    let (mut channels, mut operations, mut messages) = (Map::new(), Map::new(), Map::new());
    for e in events {
        let (channel, message) = (
            key(&format!("{}.{}", e.context.prefix(), e.name)),
            key(&e.ce_type),
        );
        let aggregate = match e.context {
            Context::Concert => "The schedule's id.",
            _ => "The reservation's id: the saga's correlation id.",
        };
        channels.insert(
            channel.clone(),
            json!({
                "address": format!("{}.{}.{{id}}", e.context.prefix(), e.name),
                "description": format!("On stream {}, published by {} through its outbox.",
                    e.context.stream(), e.context.service()),
                "parameters": {"id": {"description": aggregate}},
                "messages": {message.clone(): {"$ref": format!("#/components/messages/{message}")}},
            }),
        );
        let operation = |action: &str, service: &str| {
            json!({
                "action": action,
                "channel": {"$ref": format!("#/channels/{channel}")},
                "messages": [{"$ref": format!("#/channels/{channel}/messages/{message}")}],
                "x-service": service,
            })
        };
        operations.insert(
            format!("{}-sends-{channel}", e.context.service()),
            operation("send", e.context.service()),
        );
        for (service, consumes) in consumers {
            let receives = consumes
                .iter()
                .any(|c| c.context == e.context && c.events.contains(&e.name));
            if receives {
                operations.insert(
                    format!("{service}-receives-{channel}"),
                    operation("receive", service),
                );
            }
        }
        messages.insert(
            message.clone(),
            json!({
                "name": e.ce_type,
                "title": e.ce_type,
                "contentType": "application/json",
                "headers": {"allOf": [
                    {"$ref": "#/components/schemas/CloudEventsHeaders"},
                    {"type": "object", "properties": {"ce-type": {"const": e.ce_type}}},
                ]},
                "payload": {"$ref": format!("./schemas/{}.json", e.ce_type)},
            }),
        );
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "ticketing events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The events of the ticketing saga on NATS JetStream: CloudEvents 1.0 \
                in binary mode (attributes as headers, the JSON payload as the body). A payload's \
                schema is versioned in its ce-type (seat.held.v1); docs/versioning.md says what \
                may change within a version.",
        },
        "defaultContentType": "application/json",
        "servers": {"nats": {"host": "localhost:4222", "protocol": "nats",
            "description": "JetStream; one stream per context (CONCERT, SEAT, RESERVATION, PAYMENT)."}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": {"CloudEventsHeaders": headers()}},
    })
}

fn headers() -> Value {
    let text = |description: &str| json!({"type": "string", "description": description});
    json!({
        "type": "object",
        "required": ["ce-specversion", "ce-id", "ce-type", "ce-source", "ce-time", "ce-subject",
            "ce-datacontenttype", "Nats-Msg-Id"],
        "properties": {
            "ce-specversion": {"const": "1.0"},
            "ce-id": {"type": "string", "format": "uuid", "description": "The event's id."},
            "ce-type": text("<context>.<event>.v<version>"),
            "ce-source": text("The service that produced it."),
            "ce-time": {"type": "string", "format": "date-time"},
            "ce-subject": text("The aggregate's id: the subject's last token."),
            "ce-datacontenttype": {"const": "application/json"},
            "ce-correlationid": {"type": "string", "format": "uuid",
                "description": "The reservation's id, on every event of its saga."},
            "ce-causationid": text("The id of the event it handles, or the X-Request-Id of \
                the HTTP command it carries out."),
            "traceparent": text("W3C trace context."),
            "Nats-Msg-Id": text("Equal to ce-id: the broker drops a re-publish."),
        },
    })
}

/// `value` as YAML: block style, every string double-quoted (JSON's escapes are YAML's), keys in
/// the document's order. Deterministic, for a committed file.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write(value, 0, &mut out);
    out
}

fn scalar(v: &Value) -> String {
    v.to_string()
}

fn write(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let k = scalar(&Value::String(k.clone()));
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        write(v, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        write(v, indent, out);
                    }
                    _ => out.push_str(&format!("{pad}{k}: {}\n", scalar(v))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let mut inner = String::new();
                        write(item, indent + 2, &mut inner);
                        // The first line of the item goes after the dash.
                        out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", scalar(item))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}
