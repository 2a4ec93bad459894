//! The gateway: the saga through its one port (the status stream signed in by the cookie
//! alone), reservations composed with the catalog, and the edge — CORS, rate limits, a hung
//! upstream's breaker, a stale catalog while concert-svc is down.

use crate::helpers::on_system;
use e2e::system::Options;
use e2e::{Frontend, Gateway, flows};
use nats::runtime::Service as _;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The header that marks a catalog answer served from the gateway's last good copy.
const STALE: &str = "x-stale";

/// Signs `user` in through the development login: the session cookie (`name=value`) and the
/// token it holds.
async fn dev_login(gw: &Gateway, user: &str) -> anyhow::Result<(String, String)> {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/dev/login", gw.url()))
        .json(&json!({"user_id": user}))
        .send()
        .await?;
    anyhow::ensure!(resp.status() == 200, "dev login: {}", resp.status());
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        anyhow::ensure!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned();
    let body: Value = resp.json().await?;
    Ok((
        cookie,
        body["token"].as_str().unwrap_or_default().to_owned(),
    ))
}

/// Opens the reservation's live status stream with the session cookie alone (as a browser's
/// `EventSource` does) and reads it to its end.
async fn statuses_by_cookie(
    gw: &Gateway,
    cookie: &str,
    id: &str,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<Vec<String>>>> {
    let resp = reqwest::Client::new()
        .get(format!("{}/api/reservations/{id}/events", gw.url()))
        .header("cookie", cookie)
        .timeout(Duration::from_secs(60))
        .send()
        .await?;
    let (opened, first) = tokio::sync::oneshot::channel();
    let reading = tokio::spawn(flows::read_statuses(resp, opened));
    tokio::time::timeout(flows::STEP, first).await??;
    Ok(reading)
}

#[tokio::test]
async fn the_saga_runs_through_the_gateways_one_port() {
    on_system(Options::default(), async |sys| {
        let gw = Gateway::start(sys, &[]).await?;
        let fe = gw.client();
        let s = flows::open_schedule(&fe, "Gateway Nights", &flows::numbered_seats("G", 3, 100))
            .await?;
        flows::wait_view(&fe, &s.schedule_id, &s.seat_ids, "available").await?;

        // Happy path: alice, her live status read with nothing but the session cookie.
        let (cookie, token) = dev_login(&gw, "alice").await?;
        flows::charge(&fe, "alice", 1000).await?;
        let place = flows::join_queue(&fe, "alice", &s.schedule_id).await?;
        let queue_token = place["token"].as_str().unwrap_or_default();
        let held = flows::hold(&fe, "alice", &s.schedule_id, queue_token, &s.seat_ids[..1])
            .await?
            .expect(201);
        let id = held.str("reservation_id");
        flows::wait_reservation(&fe, "alice", &id, "awaiting_payment").await?;
        let stream = statuses_by_cookie(&gw, &cookie, &id).await?;
        flows::pay(&fe, "alice", &id).await?.expect(202);
        let statuses = tokio::time::timeout(flows::STEP, stream).await???;
        assert_eq!(
            statuses.first().map(String::as_str),
            Some("awaiting_payment")
        );
        assert_eq!(
            statuses.last().map(String::as_str),
            Some("confirmed"),
            "{statuses:?}"
        );

        // The reservation composed with the catalog: title, date, each seat's label and price.
        let r = fe
            .reservation()
            .get(&format!("/reservations/{id}"), Some(&token))
            .await?
            .expect(200);
        assert_eq!(r.body["concert_title"], "Gateway Nights", "{}", r.body);
        assert_eq!(r.body["starts_at"], s.starts_at.as_str());
        assert_eq!(
            r.body["seats"],
            json!([{"seat_id": s.seat_ids[0], "label": "G1", "grade": "R", "price": 100}])
        );
        let mine = fe
            .reservation()
            .get("/reservations", Some(&token))
            .await?
            .expect(200);
        assert_eq!(
            mine.body[0]["concert_title"], "Gateway Nights",
            "{}",
            mine.body
        );

        // A cancel: bob holds and cancels.
        let bobs = flows::holding(&fe, "bob", 1000, &s.schedule_id, &s.seat_ids[1..2]).await?;
        flows::cancel(&fe, "bob", &bobs).await?.expect(202);
        flows::wait_reservation(&fe, "bob", &bobs, "cancelled").await?;

        // A payment refused: carol has 50 points for a 100-point seat.
        let carols = flows::holding(&fe, "carol", 50, &s.schedule_id, &s.seat_ids[2..3]).await?;
        flows::pay(&fe, "carol", &carols).await?.expect(202);
        let failed = flows::wait_reservation(&fe, "carol", &carols, "failed").await?;
        assert_eq!(failed["reason"], "insufficient_points", "{failed}");
        assert_eq!(flows::balance(&fe, "carol").await?, 50);

        every_documented_operation_is_routed(&gw).await?;
        let report = sys.settle(Duration::from_secs(30)).await?;
        assert!(report.is_clean(), "{report}");
        Ok(())
    })
    .await;
}

/// The merged document and the gateway's routes agree: every operation it lists is routed
/// (answered by a service or the gateway, never `no-such-route` or `method-not-allowed`), and it
/// lists every service's public operation.
async fn every_documented_operation_is_routed(gw: &Gateway) -> anyhow::Result<()> {
    let doc = gw
        .api()
        .get("/api/openapi.json", None)
        .await?
        .expect(200)
        .body;
    let paths = doc["paths"].as_object().expect("paths");
    for service in [
        concert_svc::ConcertSvc::api(),
        seat_svc::SeatSvc::api(),
        reservation_svc::ReservationSvc::api(),
        payment_svc::PaymentSvc::api(),
    ] {
        for path in service.paths.paths.keys() {
            assert!(
                paths.contains_key(&format!("/api{path}")),
                "{path} is not published"
            );
        }
    }
    let admin = gw.client().admin_token();
    let unknown = harness::id_made_long_ago().to_string();
    let (empty, mut checked) = (json!({}), 0);
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", &unknown)
            .replace("{token}", "no-such-token")
            .replace("{slug}", "not-found");
        for method in item.as_object().expect("an operation").keys() {
            let method: reqwest::Method = method.to_uppercase().parse()?;
            let body = (method == reqwest::Method::POST).then_some(harness::RawBody::Json(&empty));
            let r = gw
                .api()
                .send(method.clone(), &concrete, Some(&admin), &[], body)
                .await?;
            let kind = r.body["type"].as_str().unwrap_or_default();
            assert!(
                kind != "/problems/no-such-route" && kind != "/problems/method-not-allowed",
                "{method} {path}: {}",
                r.body
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} operations");
    Ok(())
}

#[tokio::test]
async fn the_edge_answers_cors_limits_and_identity_itself() {
    on_system(Options::default(), async |sys| {
        let allowed = "https://tickets.example";
        let gw = Gateway::start(
            sys,
            &[("CORS_ORIGINS", allowed), ("RATE_LIMIT_PER_SEC", "5")],
        )
        .await?;
        let http = reqwest::Client::new();
        let preflight = async |origin: &str| {
            http.request(
                reqwest::Method::OPTIONS,
                format!("{}/api/wallet/charge", gw.url()),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key",
            )
            .send()
            .await
        };
        let ok = preflight(allowed).await?;
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.headers()["access-control-allow-origin"], allowed);
        assert_eq!(ok.headers()["access-control-allow-credentials"], "true");
        let methods = ok.headers()["access-control-allow-methods"]
            .to_str()?
            .to_owned();
        assert!(methods.contains("POST"), "{methods}");
        let other = preflight("https://evil.example").await?;
        assert!(
            other.headers().get("access-control-allow-origin").is_none(),
            "another origin is not allowed: {:?}",
            other.headers()
        );

        // Identity at the edge: no token, a forged one.
        let api = gw.client().payment;
        api.get("/wallet", None)
            .await?
            .expect_problem(401, "unauthorized");
        let forged = nats::web::Auth::new("another-secret-another-secret-another").issue(
            "alice",
            None,
            Duration::from_secs(60),
        );
        api.get("/wallet", Some(&forged))
            .await?
            .expect_problem(401, "unauthorized");
        // A request id is made when absent, and the one given comes back.
        let r = api
            .get("/wallet", Some(&gw.client().user_token("dave")))
            .await?
            .expect(200);
        assert!(
            r.request_id.as_ref().is_some_and(|id| id.len() >= 32),
            "{r:?}"
        );
        let r = api
            .send(
                reqwest::Method::GET,
                "/wallet",
                Some(&gw.client().user_token("dave")),
                &[("x-request-id", "page-load-42")],
                None,
            )
            .await?;
        assert_eq!(r.request_id.as_deref(), Some("page-load-42"));

        // A burst over the limit: 5 a second with bursts of 10, per user.
        let erin = gw.client().user_token("erin");
        let mut refused = None;
        for _ in 0..40 {
            let r = api.get("/wallet", Some(&erin)).await?;
            if r.is(429) {
                refused = Some(r);
                break;
            }
            r.expect(200);
        }
        let refused = refused.expect("a burst of 40 over 5/s is refused somewhere");
        assert!(
            refused
                .retry_after
                .is_some_and(|d| d >= Duration::from_secs(1)),
            "{refused:?}"
        );
        refused.expect_problem(429, "too-many-requests");
        // Someone else is not held back by erin.
        api.get("/wallet", Some(&gw.client().user_token("frank")))
            .await?
            .expect(200);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_hung_upstream_is_cut_off_at_once_and_the_catalog_outlives_its_service() {
    on_system(Options::default(), async |sys| {
        let gw = Gateway::start(
            sys,
            &[("UPSTREAM_TIMEOUT_MS", "300"), ("BREAKER_OPEN_MS", "1000")],
        )
        .await?;
        let fe = gw.client();
        let s =
            flows::open_schedule(&fe, "Breaker Blues", &flows::numbered_seats("B", 2, 10)).await?;
        flows::wait_view(&fe, &s.schedule_id, &s.seat_ids, "available").await?;
        flows::charge(&fe, "alice", 100).await?;
        let catalog = fe.concert();
        let concerts = catalog.get("/concerts", None).await?.expect(200);
        let seats_path = format!("/schedules/{}/seats", s.schedule_id);
        let seats = catalog.get(&seats_path, None).await?.expect(200);

        // payment-svc hung: connections accepted, nothing answered. The first calls time out;
        // then the breaker answers at once.
        sys.payment.pause()?;
        let token = fe.user_token("alice");
        let wallet = fe.payment();
        let mut timed_out = 0;
        loop {
            let r = wallet.get("/wallet", Some(&token)).await?;
            if r.body["type"] == "/problems/upstream-unavailable" {
                break;
            }
            r.expect_problem(504, "upstream-timed-out");
            timed_out += 1;
            assert!(timed_out <= 5, "the breaker opens after 5 timeouts");
        }
        for _ in 0..5 {
            let started = Instant::now();
            let r = wallet.get("/wallet", Some(&token)).await?;
            let took = started.elapsed();
            assert!(r.retry_after.is_some(), "{r:?}");
            r.expect_problem(503, "upstream-unavailable");
            assert!(took < Duration::from_millis(50), "answered in {took:?}");
        }
        // The other services are not held up.
        fe.reservation()
            .get("/reservations", Some(&token))
            .await?
            .expect(200);

        sys.payment.resume()?;
        let balance = e2e::eventually(
            "payment-svc behind the gateway again",
            flows::STEP,
            async || {
                let r = wallet.get("/wallet", Some(&token)).await?;
                Ok(r.is(200).then_some(r.body["balance"].clone()))
            },
        )
        .await?;
        assert_eq!(balance, 100);

        // concert-svc gone: the catalog answers what it last knew, marked stale.
        sys.concert.kill();
        let http = reqwest::Client::new();
        for (path, fresh) in [
            ("/concerts", &concerts.body),
            (seats_path.as_str(), &seats.body),
        ] {
            let resp = http.get(format!("{}/api{path}", gw.url())).send().await?;
            assert_eq!(resp.status(), 200, "{path}");
            assert_eq!(resp.headers()[STALE], "true", "{path}");
            assert_eq!(&resp.json::<Value>().await?, fresh, "{path}");
        }
        // What was never read has nothing to fall back on.
        catalog
            .get("/concerts?upcoming=true&limit=7", None)
            .await?
            .expect_problem(503, "upstream-unavailable");
        let ready = gw
            .api()
            .get("/readyz", None)
            .await?
            .expect_problem(503, "not-ready");
        assert!(
            ready.str("detail").contains("concert-svc"),
            "{}",
            ready.body
        );
        Ok(())
    })
    .await;
}
