//! domain: the rules of the waiting queue — what a token is, and where it stands: active when
//! fewer than the limit of live tokens are ahead of it, else waiting. Pure.

use std::fmt;
use std::str::FromStr;

/// A queue token as a record of the unit of work (`Statement::record`): the token's row, and
/// the hold taken with it (one live hold per token, so the token's check must see it).
pub const TOKEN: &str = "queue_tokens";

contracts::string_enum! {
    /// Where a queue token stands: `waiting` in line (with a position), `active` (admitted: may
    /// hold seats), `expired` (unused for too long), `done` (its hold ended).
    pub enum TokenStatus { Waiting = "waiting", Active = "active", Expired = "expired", Done = "done" }
}

contracts::string_enum! {
    /// What the database keeps of a token: `live` (in line; waiting or active by its rank, see
    /// [`standing`]), `expired` or `done`. Admission is derived, not stored, so no admission
    /// takes a lock that every join and every ended hold of a schedule would queue behind.
    pub enum TokenState { Live = "live", Expired = "expired", Done = "done" }
}

/// Where a token stands, from its state and the live tokens ahead of it in line (`ahead`, at
/// least up to `limit`): its status and its position (1 for the first waiting; 0 when not
/// waiting). The first `limit` live tokens are active: when one ahead ends, the next moves up.
pub fn standing(state: TokenState, ahead: i64, limit: i64) -> (TokenStatus, i64) {
    match state {
        TokenState::Live if ahead < limit => (TokenStatus::Active, 0),
        TokenState::Live => (TokenStatus::Waiting, ahead - limit + 1),
        TokenState::Expired => (TokenStatus::Expired, 0),
        TokenState::Done => (TokenStatus::Done, 0),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_live_tokens_up_to_the_limit_are_active_the_rest_wait_in_order() {
        use TokenState::*;
        assert_eq!(standing(Live, 0, 100), (TokenStatus::Active, 0));
        assert_eq!(standing(Live, 99, 100), (TokenStatus::Active, 0));
        assert_eq!(standing(Live, 100, 100), (TokenStatus::Waiting, 1));
        assert_eq!(standing(Live, 120, 100), (TokenStatus::Waiting, 21));
        assert_eq!(standing(Done, 0, 100), (TokenStatus::Done, 0));
        assert_eq!(standing(Expired, 500, 100), (TokenStatus::Expired, 0));
    }
}
