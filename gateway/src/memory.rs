//! memory: what the gateway keeps of the services' answers, to answer with when a service cannot —
//! the last good answer to each public catalog read, and each service's API document.

use crate::config::Upstream;
use bytes::Bytes;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most kept, all answers together: the oldest go first.
const MAX_KEPT_BYTES: usize = 64 << 20;
/// The most answers kept: distinct queries are the caller's choice, and finding the oldest to
/// let go of looks at every one.
const MAX_KEPT_ANSWERS: usize = 4_096;

/// The last good answer to each catalog read, by path and query.
#[derive(Default)]
pub struct Catalog {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    answers: HashMap<String, (Bytes, Instant)>,
    bytes: usize,
}

impl Catalog {
    pub fn keep(&self, key: &str, body: &Bytes) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if body.len() > MAX_KEPT_BYTES / 8 {
            return;
        }
        if let Some((old, _)) = kept.answers.remove(key) {
            kept.bytes -= old.len();
        }
        while kept.bytes + body.len() > MAX_KEPT_BYTES || kept.answers.len() >= MAX_KEPT_ANSWERS {
            let Some(oldest) = kept
                .answers
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((old, _)) = kept.answers.remove(&oldest) {
                kept.bytes -= old.len();
            }
        }
        kept.bytes += body.len();
        kept.answers
            .insert(key.to_owned(), (body.clone(), Instant::now()));
    }

    pub fn kept(&self, key: &str) -> Option<(Bytes, Duration)> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.answers
            .get(key)
            .map(|(body, at)| (body.clone(), at.elapsed()))
    }
}

/// Each service's API document, as last fetched.
#[derive(Default)]
pub struct Documents(Mutex<HashMap<Upstream, Value>>);

impl Documents {
    pub fn keep(&self, which: Upstream, doc: Value) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(which, doc);
    }

    pub fn kept(&self, which: Upstream) -> Option<Value> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&which)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_kept_stays_bounded_and_the_newest_answers_stay() {
        let catalog = Catalog::default();
        for i in 0..MAX_KEPT_ANSWERS + 100 {
            catalog.keep(&format!("/concerts?offset={i}"), &Bytes::from_static(b"[]"));
        }
        let kept = catalog.kept.lock().unwrap();
        assert_eq!(kept.answers.len(), MAX_KEPT_ANSWERS);
        assert_eq!(kept.bytes, 2 * MAX_KEPT_ANSWERS);
        drop(kept);
        let last = format!("/concerts?offset={}", MAX_KEPT_ANSWERS + 99);
        assert!(catalog.kept(&last).is_some());
    }
}
