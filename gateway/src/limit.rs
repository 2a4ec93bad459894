//! limit: requests a second per caller — per signed-in user, or per IP address when anonymous —
//! as a GCRA bucket ([`governor`]) with bursts of twice the rate. Over it: 429 problem+json with
//! `Retry-After`, before any upstream is called.

use crate::identity::Caller;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use nats::web::{Problem, kinds};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Whose requests count together.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Ip(IpAddr),
}

pub struct Limiter {
    buckets: DefaultKeyedRateLimiter<Key>,
    clock: DefaultClock,
}

impl Limiter {
    pub fn new(per_sec: u32) -> Limiter {
        let rate = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = rate.saturating_mul(NonZeroU32::new(2).expect("2 is not zero"));
        Limiter {
            buckets: DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` when the caller is over the limit.
    fn check(&self, key: &Key) -> Result<(), Duration> {
        self.buckets
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets callers whose buckets are full again (run now and then: memory stays bounded by
    /// the callers of the last few seconds).
    pub fn forget_idle(&self) {
        self.buckets.retain_recent();
    }
}

/// Middleware: counts the request against its caller's bucket.
pub async fn per_caller(State(limiter): State<Arc<Limiter>>, req: Request, next: Next) -> Response {
    let key = match req.extensions().get::<Caller>() {
        Some(caller) => Key::User(caller.user.clone()),
        None => Key::Ip(
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip())
                .unwrap_or(IpAddr::from([0, 0, 0, 0])),
        ),
    };
    if let Err(wait) = limiter.check(&key) {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        return Problem::new(
            kinds::TOO_MANY_REQUESTS,
            "too many requests from you in a short time; slow down and retry after the pause",
        )
        .retry_after(seconds)
        .into_response();
    }
    next.run(req).await
}
