//! domain: the rules of the waiting queue — what a token is, where it stands, and how many
//! waiting tokens may become active. Pure.

use std::fmt;
use std::str::FromStr;

contracts::string_enum! {
    /// Where a queue token stands: `waiting` in line (with a position), `active` (admitted: may
    /// hold seats), `expired` (unused for too long), `done` (its hold ended).
    pub enum TokenStatus { Waiting = "waiting", Active = "active", Expired = "expired", Done = "done" }
}

impl TokenStatus {
    /// Waiting or active: a user has at most one such token per schedule.
    pub const LIVE: [TokenStatus; 2] = [TokenStatus::Waiting, TokenStatus::Active];
}

/// A queue token: the user's place in one schedule's line, and their admission to hold seats.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct QueueToken(String);

impl QueueToken {
    /// A new token. Time-ordered (UUIDv7, ordered within a process), because the line is
    /// ordered by (taken at, token): two tokens taken in the same millisecond keep the order
    /// they were taken in. Its 62 random bits keep it unguessable.
    pub fn new() -> Self {
        QueueToken(uuid::Uuid::now_v7().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for QueueToken {
    fn default() -> Self {
        Self::new()
    }
}

/// Any text may be presented as a token; one that was never issued is simply unknown.
impl From<&str> for QueueToken {
    fn from(s: &str) -> Self {
        QueueToken(s.to_owned())
    }
}

impl FromStr for QueueToken {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(s.into())
    }
}

impl fmt::Display for QueueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl nats::db::ToArg for QueueToken {
    fn to_arg(&self) -> nats::db::sql::Arg {
        nats::db::ToArg::to_arg(&self.0)
    }
}

/// How many waiting tokens may become active now.
pub fn admissions(active: i64, limit: i64) -> i64 {
    (limit - active).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_admits_up_to_the_limit() {
        assert_eq!(admissions(0, 100), 100);
        assert_eq!(admissions(99, 100), 1);
        assert_eq!(admissions(120, 100), 0);
    }
}
