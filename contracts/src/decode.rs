//! decode: why an incoming message cannot be read as an event. None of these get better with a
//! retry, so a consumer sends such a message to the DLQ with the reason.

/// Why an incoming message cannot be read. None of these get better with a retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("header {header} is invalid: {value:?}")]
    BadHeader { header: &'static str, value: String },
    #[error("unknown event type {0}")]
    UnknownType(String),
    #[error("event type {ce_type} has unsupported schema version {version}")]
    UnsupportedVersion { ce_type: String, version: u32 },
    #[error("payload does not match its schema: {0}")]
    Payload(String),
}
