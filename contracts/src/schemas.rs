//! schemas: the published contract of every event — a JSON Schema (2020-12) per event type and
//! version, generated from the payload types, committed under `contracts/schemas/` as
//! `<context>.<event>.v<version>.json` (a test keeps the files and the types in step).

use crate::events::{
    ConcertEvent, Event, PaymentEvent, ReservationEvent, SCHEMA_VERSION, SeatEvent,
};
use crate::streams::Context;
use serde_json::Value;

/// One event type's schema.
pub struct EventSchema {
    pub context: Context,
    /// The event name within its context (`held`).
    pub name: &'static str,
    /// `seat.held.v1`: the `ce-type` of its events, and the file's name.
    pub ce_type: String,
    pub schema: Value,
}

/// Every event type's schema, context by context.
pub fn all() -> Vec<EventSchema> {
    let mut out = Vec::new();
    out.extend(of::<ConcertEvent>(ConcertEvent::payload_schemas()));
    out.extend(of::<SeatEvent>(SeatEvent::payload_schemas()));
    out.extend(of::<ReservationEvent>(ReservationEvent::payload_schemas()));
    out.extend(of::<PaymentEvent>(PaymentEvent::payload_schemas()));
    out
}

fn of<E: Event>(schemas: Vec<(&'static str, schemars::Schema)>) -> Vec<EventSchema> {
    let context = E::CONTEXT;
    schemas
        .into_iter()
        .map(|(name, schema)| {
            let ce_type = format!("{}.{name}.v{SCHEMA_VERSION}", context.prefix());
            let mut schema = schema.to_value();
            if let Value::Object(map) = &mut schema {
                map.insert("$id".into(), Value::String(format!("{ce_type}.json")));
                map.insert("title".into(), Value::String(ce_type.clone()));
            }
            EventSchema {
                context,
                name,
                ce_type,
                schema,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed schemas are what the payload types give: renaming or retyping a field, or
    /// adding an event, fails here until the files are regenerated with `BLESS=1 cargo test -p
    /// contracts` (and the change is then visible in review, as a contract change).
    #[test]
    fn the_committed_event_schemas_are_what_the_types_give() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let schemas = all();
        if std::env::var_os("BLESS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            for old in std::fs::read_dir(&dir).unwrap() {
                std::fs::remove_file(old.unwrap().path()).unwrap();
            }
        }
        for s in &schemas {
            let path = dir.join(format!("{}.json", s.ce_type));
            let text = serde_json::to_string_pretty(&s.schema).unwrap() + "\n";
            if std::env::var_os("BLESS").is_some() {
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == text,
                "{} differs from what the payload type gives: regenerate with `BLESS=1 cargo test \
                 -p contracts` if the contract is meant to change (docs/versioning.md)",
                path.display()
            );
        }
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(
            files,
            schemas.len(),
            "a schema file of an event that no longer exists"
        );
    }

    #[test]
    fn every_event_type_has_a_schema_naming_its_fields() {
        let schemas = all();
        assert_eq!(schemas.len(), 11);
        let held = schemas
            .iter()
            .find(|s| s.ce_type == "seat.held.v1")
            .unwrap();
        let required = held.schema["required"].as_array().unwrap();
        assert!(
            required.contains(&"reservation_id".into()),
            "{}",
            held.schema
        );
        assert_eq!(
            held.schema["properties"]["expires_at"]["format"],
            "date-time"
        );
    }
}
