//! trace: W3C Trace Context (`traceparent`) as it travels with a saga's events: taken from the
//! command that started it (or begun there), stored with each outbox row, sent as a NATS header,
//! and continued — same trace id, a span of its own — by every event a handler emits.

use uuid::Uuid;

/// One `traceparent` (version 00): `00-<trace id: 32 hex>-<parent span id: 16 hex>-<flags>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: String,
    span_id: String,
    flags: String,
}

fn lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A random, non-zero id of `len` hex digits (a v4 UUID's randomness).
fn random_hex(len: usize) -> String {
    let hex = Uuid::new_v4().simple().to_string();
    hex[..len].to_owned()
}

impl TraceParent {
    /// Reads a `traceparent` header; `None` for anything not a valid version-00 value (an
    /// all-zero id included), as the W3C spec says a receiver must then start a new trace.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let mut parts = value.trim().split('-');
        let (Some(version), Some(trace), Some(span), Some(flags), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let valid = version == "00"
            && lower_hex(trace, 32)
            && trace.bytes().any(|b| b != b'0')
            && lower_hex(span, 16)
            && span.bytes().any(|b| b != b'0')
            && lower_hex(flags, 2);
        valid.then(|| TraceParent {
            trace_id: trace.to_owned(),
            span_id: span.to_owned(),
            flags: flags.to_owned(),
        })
    }

    /// A new trace, begun where a command arrives without one while this process records no
    /// spans (when it exports them, the span's own context is used instead). Not sampled (flags
    /// `00`), as the W3C spec has it for a trace nobody records — and because nats-server lifts
    /// every header of a message whose `traceparent` is sampled into a map, to look for an
    /// account's trace destination (ADR-41): 6–8 % of its CPU in a sale, for nothing.
    pub fn root() -> TraceParent {
        TraceParent {
            trace_id: random_hex(32),
            span_id: random_hex(16),
            flags: "00".to_owned(),
        }
    }

    /// A span of the same trace, caused by this one.
    pub fn child(&self) -> TraceParent {
        TraceParent {
            trace_id: self.trace_id.clone(),
            span_id: random_hex(16),
            flags: self.flags.clone(),
        }
    }

    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_round_trips_and_its_children_keep_the_trace() {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parent = TraceParent::parse(value).expect("the spec's example");
        assert_eq!(parent.to_string(), value);
        let child = parent.child();
        assert_eq!(child.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(child.to_string(), value);
        assert_eq!(TraceParent::parse(&child.to_string()), Some(child.clone()));
        assert!(
            child.to_string().ends_with("-01"),
            "a child keeps the caller's sampling"
        );
        let root = TraceParent::root();
        assert_eq!(TraceParent::parse(&root.to_string()), Some(root.clone()));
        // A trace nobody records is not sampled, nor are its children.
        assert!(root.to_string().ends_with("-00"), "{root}");
        assert!(root.child().to_string().ends_with("-00"));
    }

    #[test]
    fn anything_else_is_no_traceparent() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }
}
