//! shed: the door new arrivals come through (e.g. users joining a sale's queue). One that comes
//! while the service's committer is overloaded is refused at once, 503 with `Retry-After`,
//! rather than queued for seconds behind more work than the service does. What is already
//! admitted (a user's hold and payment, the sagas' events) is never shed, so it keeps its pace.
//! The refused are told to come back at the pace the service serves those it let in, one
//! after another, so the crowd returns as there is room: not all at once into the next rush,
//! nor long after the service has gone idle.

use super::problem::{Problem, kinds};
use crate::unit_of_work::Load;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Seconds after which a refused arrival may come back while the service has served no one
/// lately (so knows no pace): long enough that those waiting do not become a load of their own.
const COME_BACK: u64 = 3;
/// The longest a refused arrival is told to wait.
const LONGEST: u64 = 60;
/// The served rate over this last stretch is the pace.
const WINDOW: Duration = Duration::from_secs(1);
/// Slots of the window.
const SLOTS: usize = 10;
/// Those coming back are let in a quarter faster than the service served lately: one refused
/// again only comes back later once more, while a service left without work loses its time.
const MARGIN: f64 = 1.25;

/// The door: admits arrivals unless the committer is overloaded, and tells the refused when to
/// come back. The service says each time it served an admitted arrival's work
/// ([`Door::served`]: seat-svc, a hold).
#[derive(Clone)]
pub struct Door {
    load: Load,
    pace: Arc<Mutex<Pace>>,
}

impl Door {
    pub fn new(load: Load) -> Door {
        Door {
            load,
            pace: Arc::new(Mutex::new(Pace::new(Instant::now()))),
        }
    }

    /// Admits a new arrival, or refuses it while the committer is overloaded, telling it when
    /// to come back.
    pub fn admit(&self) -> Result<(), Problem> {
        if !self.load.overloaded() {
            return Ok(());
        }
        metrics::counter!("http_shed_total").increment(1);
        let after = self.pace().come_back(Instant::now());
        Err(Problem::new(
            kinds::OVERLOADED,
            "more users are arriving than the service can serve just now; nothing was done: \
             come back after the Retry-After seconds",
        )
        .retry_after(after))
    }

    /// An admitted arrival's work was served: the pace at which the refused come back.
    pub fn served(&self) {
        self.pace().served(Instant::now());
    }

    fn pace(&self) -> std::sync::MutexGuard<'_, Pace> {
        // Plain numbers: a panic elsewhere cannot leave them inconsistent.
        self.pace.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An arrival the door let in (from any state that gives the door, as a service's `AppState`
/// does). As a handler's first argument it asks the door before anything else of the request
/// is looked at: a crowd refused in an overload costs no token verified and no path or body
/// read (the refused, not the admitted, are most of a rush's requests). So an arrival refused
/// is told to come back even if its token would not have been good.
pub struct Admitted;

impl<S: Send + Sync> FromRequestParts<S> for Admitted
where
    Door: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(_: &mut Parts, state: &S) -> Result<Self, Problem> {
        Door::from_ref(state).admit().map(|()| Admitted)
    }
}

/// Arrivals served per slot of the last window, and the come-back time last given.
struct Pace {
    served: [u32; SLOTS],
    /// The slot now counting, and when it began.
    slot: usize,
    slot_start: Instant,
    /// When the first arrival of the window was served: a window only partly past counts as
    /// long as it is.
    since: Option<Instant>,
    /// When the last one refused was told to come back: the next comes one pace later.
    booked: Instant,
}

impl Pace {
    fn new(now: Instant) -> Pace {
        Pace {
            served: [0; SLOTS],
            slot: 0,
            slot_start: now,
            since: None,
            booked: now,
        }
    }

    /// Moves the window on to `now`, forgetting the slots that fell out of it.
    fn advance(&mut self, now: Instant) {
        let length = WINDOW / SLOTS as u32;
        if now.duration_since(self.slot_start) >= WINDOW {
            self.served = [0; SLOTS];
            self.slot_start = now;
            self.since = None;
            return;
        }
        while now.duration_since(self.slot_start) >= length {
            self.slot = (self.slot + 1) % SLOTS;
            self.served[self.slot] = 0;
            self.slot_start += length;
        }
    }

    fn served(&mut self, now: Instant) {
        self.advance(now);
        self.served[self.slot] += 1;
        self.since.get_or_insert(now);
    }

    /// Arrivals served a second lately, if any were.
    fn rate(&mut self, now: Instant) -> Option<f64> {
        self.advance(now);
        let served: u32 = self.served.iter().sum();
        let since = self.since?;
        let over = now
            .duration_since(since)
            .clamp(WINDOW / SLOTS as u32, WINDOW);
        (served > 0).then(|| f64::from(served) / over.as_secs_f64())
    }

    /// Seconds until a refused arrival comes back: the one after the last one refused, at the
    /// pace the service serves (a little faster), or [`COME_BACK`] without a pace.
    fn come_back(&mut self, now: Instant) -> u64 {
        let Some(rate) = self.rate(now) else {
            return COME_BACK;
        };
        self.booked = self.booked.max(now) + Duration::from_secs_f64(1.0 / (rate * MARGIN));
        let wait = self.booked.duration_since(now).as_secs_f64().ceil() as u64;
        wait.clamp(1, LONGEST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_are_admitted_unless_overloaded_then_told_when_to_come_back() {
        assert!(Door::new(Load::default()).admit().is_ok());
        let refused = Door::new(Load::overloaded_now())
            .admit()
            .expect_err("overloaded");
        assert_eq!(refused.kind, kinds::OVERLOADED);
        assert_eq!(refused.retry_after, Some(COME_BACK), "no pace known yet");
        assert!(refused.detail.contains("nothing was done"), "{refused:?}");
    }

    /// A join as seat-svc's is declared: the door first, then the caller's token.
    async fn join(_: Admitted, _: crate::web::User) -> &'static str {
        "joined"
    }

    async fn kind_of(door: Door, token: Option<&str>) -> (u16, String) {
        use tower::ServiceExt as _;
        let app = axum::Router::new()
            .route("/", axum::routing::post(join))
            .layer(axum::Extension(crate::web::Auth::new("s3cret")))
            .with_state(door);
        let mut request = axum::http::Request::post("/");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let answer = app
            .oneshot(request.body(axum::body::Body::empty()).expect("a request"))
            .await
            .expect("an answer");
        let status = answer.status().as_u16();
        let body = axum::body::to_bytes(answer.into_body(), 1 << 16)
            .await
            .expect("a body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn an_arrival_refused_at_the_door_is_not_asked_for_its_token() {
        let token = crate::web::Auth::new("s3cret").issue("ann", None, Duration::from_secs(60));
        assert_eq!(
            kind_of(Door::new(Load::default()), Some(&token)).await.0,
            200
        );
        let (status, problem) = kind_of(Door::new(Load::default()), None).await;
        assert_eq!(status, 401, "{problem}");
        let (status, problem) = kind_of(Door::new(Load::overloaded_now()), None).await;
        assert_eq!(status, 503, "{problem}");
        assert!(problem.contains("overloaded"), "{problem}");
    }

    #[test]
    fn the_refused_are_told_to_come_back_one_after_another_at_the_pace_served() {
        let start = Instant::now();
        let mut pace = Pace::new(start);
        // 1,000 served over a second: 1,250 a second come back, one after another.
        for i in 0..1000 {
            pace.served(start + Duration::from_millis(i));
        }
        let now = start + Duration::from_millis(999);
        let waits: Vec<u64> = (0..3000).map(|_| pace.come_back(now)).collect();
        let told = |secs| waits.iter().filter(|&&w| w == secs).count();
        assert_eq!(waits[0], 1);
        assert!((1249..=1252).contains(&told(1)), "{}", told(1));
        assert!((1249..=1252).contains(&told(2)), "{}", told(2));
        assert_eq!(waits[2999], 3);
        // Later refusals queue behind those told already; none waits beyond the longest.
        assert!((0..200_000).all(|_| pace.come_back(now) <= LONGEST));
        assert_eq!(pace.come_back(now), LONGEST);
    }

    #[test]
    fn a_window_only_partly_past_counts_as_long_as_it_is_and_an_old_one_is_forgotten() {
        let start = Instant::now();
        let mut pace = Pace::new(start);
        assert_eq!(pace.rate(start), None);
        // 100 served in the first 200 ms: 500 a second, not 100.
        for i in 0..100 {
            pace.served(start + Duration::from_millis(2 * i));
        }
        let rate = pace
            .rate(start + Duration::from_millis(200))
            .expect("served");
        assert!((rate - 500.0).abs() < 1.0, "{rate}");
        // Half the window later the first slots have fallen out of it; a window later, all.
        assert_eq!(pace.rate(start + Duration::from_millis(1150)), None);
        assert_eq!(pace.come_back(start + Duration::from_secs(3)), COME_BACK);
    }
}
