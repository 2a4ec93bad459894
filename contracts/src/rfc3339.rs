//! rfc3339: how payloads' times appear in their JSON Schemas — RFC 3339 date-time strings, as
//! `time::serde::rfc3339` writes them.

/// Stands for an `OffsetDateTime` field in a schema (`#[schemars(with = "Rfc3339")]`).
pub(crate) struct Rfc3339;

json_schema_of!(Rfc3339, {"type": "string", "format": "date-time"});
