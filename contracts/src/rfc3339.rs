//! rfc3339: how payloads' times appear in their JSON Schemas — RFC 3339 date-time strings, as
//! `time::serde::rfc3339` writes them.

use schemars::JsonSchema;

/// Stands for an `OffsetDateTime` field in a schema (`#[schemars(with = "Rfc3339")]`).
pub(crate) struct Rfc3339;

impl JsonSchema for Rfc3339 {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rfc3339".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "date-time"})
    }
}
