//! concert-svc over HTTP, with a real nats-server and SQLite: the catalog commands, their bad
//! input, and the event that builds seat inventory.

use concert_svc::ConcertSvc;
use concert_svc::view::domain::{SeatStatus, ViewSeat};
use contracts::events::{SeatHeld, SeatSold};
use contracts::{Points, ReservationId, ScheduleId, SeatEvent, SeatId, UserId};
use harness::{Api, RawBody, TestEnv};
use nats::runtime::Service;
use reqwest::Method;
use serde_json::json;

async fn start() -> (TestEnv, Api) {
    let env = TestEnv::new().expect("test env");
    let api = env
        .start::<ConcertSvc>(())
        .await
        .expect("concert-svc ready");
    (env, api)
}

async fn concert(env: &TestEnv, api: &Api) -> String {
    api.post("/concerts", Some(&env.admin()), &json!({"title": "Test"}))
        .await
        .unwrap()
        .expect(201)
        .str("id")
}

/// seat-svc holds and sells `seat`; the view has taken both events when this returns.
/// seat-svc's hold of `seat` by `r`, the seat's `version`-th change.
fn held(r: ReservationId, schedule_id: ScheduleId, seat: SeatId, version: u64) -> SeatEvent {
    SeatEvent::Held(SeatHeld {
        reservation_id: r,
        user_id: UserId("ann".into()),
        schedule_id,
        seat_ids: vec![seat],
        amount: Points::new(10).unwrap(),
        expires_at: time::OffsetDateTime::now_utc(),
        starts_at: None,
        versions: [(seat, version)].into(),
    })
}

/// Announces `seat` held (its first change), then sold (its second), as seat-svc would; answers
/// the reservation.
async fn sell(env: &TestEnv, schedule_id: ScheduleId, seat: SeatId) -> ReservationId {
    let r = ReservationId::new();
    env.publish("seat-svc", &held(r, schedule_id, seat, 1))
        .await
        .unwrap();
    let sold = SeatEvent::Sold(SeatSold {
        reservation_id: r,
        seat_ids: vec![seat],
        versions: [(seat, 2)].into(),
    });
    env.publish("seat-svc", &sold).await.unwrap();
    env.handled_all("SEAT", ConcertSvc::NAME).await.unwrap();
    r
}

fn schedule(seats: serde_json::Value) -> serde_json::Value {
    json!({"starts_at": harness::upcoming(), "seats": seats})
}

/// Opens a schedule of concert `id` with `seats` as the admin; answers the 201's body.
async fn opened(env: &TestEnv, api: &Api, id: &str, seats: serde_json::Value) -> harness::Reply {
    api.post(
        &format!("/concerts/{id}/schedules"),
        Some(&env.admin()),
        &schedule(seats),
    )
    .await
    .unwrap()
    .expect(201)
}

/// The seat map of `schedule` with live statuses.
async fn seat_map(api: &Api, schedule: impl std::fmt::Display) -> harness::Reply {
    api.get(&format!("/schedules/{schedule}/seats"), None)
        .await
        .unwrap()
        .expect(200)
}

/// The admin's view rebuild; `apply` merges it into the live view.
async fn rebuild(api: &Api, admin: &str, apply: bool) -> harness::Reply {
    let path = match apply {
        true => "/admin/view/rebuild?apply=true",
        false => "/admin/view/rebuild",
    };
    api.post(path, Some(admin), &json!({}))
        .await
        .unwrap()
        .expect(200)
}

#[tokio::test]
async fn opening_a_schedule_publishes_its_seat_map_and_shows_it_available() {
    let (env, api) = start().await;
    let id = concert(&env, &api).await;
    let opened = opened(
        &env,
        &api,
        &id,
        json!([{"label": "A1", "grade": "VIP", "price": 150}, {"label": "A2", "grade": "R", "price": 100}]),
    )
    .await;
    let schedule_id = opened.str("id");

    let seats = seat_map(&api, &schedule_id).await;
    let seats = seats.body.as_array().unwrap();
    assert_eq!(seats.len(), 2);
    assert_eq!(seats[0]["label"], "A1");
    assert_eq!(seats[0]["price"], 150);
    assert_eq!(seats[0]["status"], "available");
    let listed = api
        .get(&format!("/concerts/{id}/schedules"), None)
        .await
        .unwrap()
        .expect(200);
    assert_eq!(listed.body[0]["available_seats"], 2);
    assert_eq!(listed.body[0]["starts_at"], harness::upcoming());

    // The event is on the CONCERT stream with the whole seat map.
    let msg = env
        .event("CONCERT", &format!("concert.schedule_opened.{schedule_id}"))
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(body["seats"].as_array().unwrap().len(), 2);
    assert_eq!(
        msg.headers.get("ce-type").unwrap().as_str(),
        "concert.schedule_opened.v1"
    );
}

#[tokio::test]
async fn bad_catalog_input_is_answered_with_a_problem() {
    let (env, api) = start().await;
    let admin = env.admin();
    let id = concert(&env, &api).await;
    let path = format!("/concerts/{id}/schedules");

    let cases = [
        (schedule(json!([])), 422, "at least one seat"),
        (
            schedule(
                json!([{"label": "A1", "grade": "R", "price": 1}, {"label": "A1", "grade": "R", "price": 1}]),
            ),
            422,
            "more than once",
        ),
        (
            schedule(json!([{"label": "A1", "grade": "R", "price": -1}])),
            422,
            "must cost 1 to",
        ),
        // A free seat would be debited 0 points, which the ledger refuses: the saga would
        // never end. (Main answered 201.)
        (
            schedule(json!([{"label": "A1", "grade": "R", "price": 0}])),
            422,
            "must cost 1 to",
        ),
        // Four seats at 2^62 add up past i64: the hold's amount wrapped to 0. (Main: 201.)
        (
            schedule(json!([{"label": "A1", "grade": "R", "price": 4611686018427387904i64}])),
            422,
            "must cost 1 to",
        ),
        (
            schedule(json!([{"label": " ", "grade": "R", "price": 1}])),
            422,
            "empty label",
        ),
        (
            schedule(json!([{"label": "L".repeat(65), "grade": "R", "price": 1}])),
            422,
            "at most 64 characters",
        ),
        (
            json!({"starts_at": "tomorrow", "seats": [{"label": "A1", "grade": "R", "price": 1}]}),
            422,
            "RFC 3339",
        ),
        (json!({"seats": []}), 422, "starts_at"),
        (
            schedule(json!([{"label": "A1", "grade": "R", "price": "ten"}])),
            422,
            "expected",
        ),
    ];
    for (body, status, words) in cases {
        let r = api.post(&path, Some(&admin), &body).await.unwrap();
        assert_eq!(r.status.as_u16(), status, "{body} -> {}", r.body);
        assert_eq!(r.content_type, "application/problem+json");
        assert!(r.str("detail").contains(words), "{body} -> {}", r.body);
    }

    let malformed = api
        .send(
            Method::POST,
            "/concerts",
            Some(&admin),
            &[],
            Some(RawBody::Text("{\"title\": ")),
        )
        .await
        .unwrap();
    assert!(malformed.is(400), "{malformed:?}");
    api.post("/concerts", Some(&admin), &json!({"title": "  "}))
        .await
        .unwrap()
        .expect_problem(422, "invalid-catalog-entry");
    api.post("/concerts", Some(&admin), &json!({}))
        .await
        .unwrap()
        .expect_problem(422, "invalid-body");
    // A NUL character no database keeps: refused as input, on either backend (schemathesis
    // found PostgreSQL answering 503 for it).
    let nul = api
        .post("/concerts", Some(&admin), &json!({"title": "a\u{0}b"}))
        .await
        .unwrap()
        .expect_problem(422, "invalid-body");
    assert!(nul.str("detail").contains("NUL"), "{}", nul.body);

    let unknown = uuid::Uuid::new_v4();
    api.post(
        &format!("/concerts/{unknown}/schedules"),
        Some(&admin),
        &schedule(json!([{"label": "A", "grade": "R", "price": 1}])),
    )
    .await
    .unwrap()
    .expect_problem(404, "unknown-concert");
    api.get(&format!("/concerts/{unknown}/schedules"), None)
        .await
        .unwrap()
        .expect_problem(404, "unknown-concert");
    api.get("/concerts/not-a-uuid/schedules", None)
        .await
        .unwrap()
        .expect_problem(404, "not-found");
    api.get(&format!("/schedules/{unknown}/seats"), None)
        .await
        .unwrap()
        .expect_problem(404, "unknown-schedule");

    // Identity: none, forged, expired-by-secret, and not an admin.
    api.post("/concerts", None, &json!({"title": "x"}))
        .await
        .unwrap()
        .expect_problem(401, "unauthorized");
    let other_secret = nats::web::Auth::new("another").issue(
        "admin",
        Some("admin"),
        std::time::Duration::from_secs(60),
    );
    api.post("/concerts", Some(&other_secret), &json!({"title": "x"}))
        .await
        .unwrap()
        .expect_problem(401, "unauthorized");
    api.post("/concerts", Some(&env.user("bob")), &json!({"title": "x"}))
        .await
        .unwrap()
        .expect_problem(403, "admin-only");
    let r = api
        .send(Method::DELETE, "/concerts", Some(&admin), &[], None)
        .await
        .unwrap();
    assert!(r.is(405), "{r:?}");
}

#[tokio::test]
async fn a_sold_out_schedule_drops_out_of_the_available_dates() {
    let (env, api) = start().await;
    let id = concert(&env, &api).await;
    let path = format!("/concerts/{id}/schedules");
    let opened = api
        .post(
            &path,
            Some(&env.admin()),
            &schedule(json!([{"label": "Z1", "grade": "R", "price": 10}])),
        )
        .await
        .unwrap()
        .expect(201);
    let schedule_id = ScheduleId::parse(&opened.str("id")).unwrap();
    let seat = SeatId::parse(opened.body["seats"][0]["seat_id"].as_str().unwrap()).unwrap();
    assert_eq!(
        api.get(&path, None)
            .await
            .unwrap()
            .expect(200)
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // seat-svc sells the only seat.
    sell(&env, schedule_id, seat).await;
    env.handled_all("SEAT", ConcertSvc::NAME).await.unwrap();

    assert_eq!(
        api.get(&path, None).await.unwrap().expect(200).body,
        json!([])
    );
    let all = api
        .get(&format!("{path}?include_sold_out=true"), None)
        .await
        .unwrap()
        .expect(200);
    assert_eq!(all.body[0]["available_seats"], 0);
    api.get(&format!("{path}?include_sold_out=maybe"), None)
        .await
        .unwrap()
        .expect_problem(400, "invalid-query");
}

/// A show that has started is no date to offer, and one cannot be opened in the past.
#[tokio::test]
async fn schedules_that_have_started_are_not_offered_and_none_opens_in_the_past() {
    let (env, api) = start().await;
    let (admin, seats) = (
        env.admin(),
        json!([{"label": "A1", "grade": "R", "price": 1}]),
    );
    let id = concert(&env, &api).await;
    let path = format!("/concerts/{id}/schedules");
    api.post(
        &path,
        Some(&admin),
        &json!({"starts_at": "2020-05-01T19:00:00Z", "seats": seats}),
    )
    .await
    .unwrap()
    .expect_problem(422, "schedule-past");

    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let soon_text = soon
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let starting = api
        .post(
            &path,
            Some(&admin),
            &json!({"starts_at": soon_text, "seats": seats}),
        )
        .await
        .unwrap()
        .expect(201)
        .str("id");
    let later = opened(&env, &api, &id, seats.clone()).await.str("id");
    let idle = concert(&env, &api).await;
    let listed = |query: &'static str| {
        let api = api.clone();
        let path = path.clone();
        async move {
            let r = api.get(&format!("{path}{query}"), None).await.unwrap();
            let ids: Vec<String> = r
                .expect(200)
                .body
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned())
                .collect();
            ids
        }
    };
    let upcoming = async || -> Vec<String> {
        let r = api.get("/concerts?upcoming=true", None).await.unwrap();
        r.expect(200)
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(listed("").await, [starting.clone(), later.clone()]);
    assert!(upcoming().await.contains(&id));
    assert!(
        !upcoming().await.contains(&idle),
        "a concert with no dates is not upcoming"
    );

    harness::eventually(
        "the first show to start",
        std::time::Duration::from_secs(10),
        async || Ok((time::OffsetDateTime::now_utc() > soon).then_some(())),
    )
    .await
    .unwrap();
    assert_eq!(listed("").await, std::slice::from_ref(&later));
    assert_eq!(listed("?include_past=true").await, [starting, later]);
    assert!(upcoming().await.contains(&id));
}

/// A view row gone wrong (as if an event were lost) is found by the rebuild, and repaired when
/// the rebuild is applied.
#[tokio::test]
async fn a_view_row_gone_wrong_is_found_and_repaired_by_the_rebuild() {
    let (env, api) = start().await;
    let id = concert(&env, &api).await;
    let seats = json!([{"label": "A1", "grade": "R", "price": 10}, {"label": "A2", "grade": "R", "price": 10}]);
    let opened = opened(&env, &api, &id, seats).await;
    let schedule_id = ScheduleId::parse(&opened.str("id")).unwrap();
    let seat =
        |i: usize| SeatId::parse(opened.body["seats"][i]["seat_id"].as_str().unwrap()).unwrap();
    sell(&env, schedule_id, seat(0)).await;

    // The second seat, never held, shows as sold.
    let url = env.database_url(ConcertSvc::NAME).unwrap();
    let uow =
        nats::unit_of_work::UnitOfWork::new(nats::db::Db::connect(&url).await.unwrap(), "test");
    let wrong = ViewSeat {
        status: SeatStatus::Sold,
        reservation: None,
        version: 0,
    };
    let broken = seat(1);
    uow.run(move |w| {
        Box::pin(async move {
            concert_svc::view::store::show(w, broken, &wrong)
                .await
                .map(drop)
        })
    })
    .await
    .unwrap();

    let admin = env.admin();
    let found = rebuild(&api, &admin, false).await;
    assert_eq!(
        found.body["differences"],
        json!([{"seat_id": seat(1), "live": "sold", "rebuilt": "available"}]),
        "{}",
        found.body
    );
    assert_eq!(found.body["applied"], false);
    let merged = rebuild(&api, &admin, true).await;
    assert_eq!(merged.body["applied"], true);
    let again = rebuild(&api, &admin, false).await;
    assert_eq!(again.body["differences"], json!([]), "{}", again.body);
    let seats = seat_map(&api, schedule_id).await;
    let statuses: Vec<&str> = seats
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["sold", "available"]);
}

/// A hold announced again after the seat was sold (a dead letter replayed, a relay publishing a
/// row twice) comes after the sale on the stream but is older: the seat stays sold, live and in
/// a rebuild.
#[tokio::test]
async fn a_late_copy_of_an_older_seat_event_does_not_undo_a_newer_one() {
    let (env, api) = start().await;
    let id = concert(&env, &api).await;
    let seats = json!([{"label": "A1", "grade": "R", "price": 10}]);
    let opened = opened(&env, &api, &id, seats).await;
    let schedule_id = ScheduleId::parse(&opened.str("id")).unwrap();
    let seat = SeatId::parse(opened.body["seats"][0]["seat_id"].as_str().unwrap()).unwrap();
    let r = sell(&env, schedule_id, seat).await;

    env.publish("seat-svc", &held(r, schedule_id, seat, 1))
        .await
        .unwrap();
    env.handled_all("SEAT", ConcertSvc::NAME).await.unwrap();
    let shown = seat_map(&api, schedule_id).await;
    assert_eq!(shown.body[0]["status"], "sold", "{}", shown.body);
    let rebuilt = rebuild(&api, &env.admin(), false).await;
    assert_eq!(rebuilt.body["events"], 3, "{}", rebuilt.body);
    assert_eq!(rebuilt.body["differences"], json!([]), "{}", rebuilt.body);
}

/// A relay that publishes a row again after the broker forgot its `Nats-Msg-Id` puts a second
/// copy of the event on the stream. The live view's inbox drops it; the rebuild skips it by its
/// envelope id too, or an unversioned hold replayed after its release would show the seat held.
#[tokio::test]
async fn a_rebuild_skips_a_second_copy_of_an_event() {
    let (env, api) = start().await;
    let id = concert(&env, &api).await;
    let seats = json!([{"label": "A1", "grade": "R", "price": 10}]);
    let opened = opened(&env, &api, &id, seats).await;
    let schedule_id = ScheduleId::parse(&opened.str("id")).unwrap();
    let seat = SeatId::parse(opened.body["seats"][0]["seat_id"].as_str().unwrap()).unwrap();
    let r = ReservationId::new();
    let now = time::OffsetDateTime::now_utc();
    let hold = contracts::Message::new("seat-svc", &held(r, schedule_id, seat, 0), None, now);
    let js = env.jetstream().await.unwrap();
    harness::publish_message(&js, &hold).await.unwrap();
    let release = SeatEvent::Released(contracts::events::SeatReleased {
        reservation_id: r,
        seat_ids: vec![seat],
        reason: contracts::ReleaseReason::Expired,
        versions: Default::default(),
    });
    env.publish("seat-svc", &release).await.unwrap();
    // The same event again, under a message id the broker has not seen.
    let mut copy = hold.clone();
    for (name, value) in &mut copy.headers {
        if name == contracts::envelope::header::MSG_ID {
            value.push_str("-again");
        }
    }
    harness::publish_message(&js, &copy).await.unwrap();
    env.handled_all("SEAT", ConcertSvc::NAME).await.unwrap();

    let shown = seat_map(&api, schedule_id).await;
    assert_eq!(shown.body[0]["status"], "available", "{}", shown.body);
    let rebuilt = rebuild(&api, &env.admin(), false).await;
    assert_eq!(
        (&rebuilt.body["events"], &rebuilt.body["duplicates"]),
        (&json!(3), &json!(1)),
        "{}",
        rebuilt.body
    );
    assert_eq!(rebuilt.body["differences"], json!([]), "{}", rebuilt.body);
}

/// A seat map too large to announce in one event is refused (422) before anything is written,
/// and the schedules opened after it still reach the bus. (On main it answered 201, the relay
/// stopped at the oversized event for good, and no later schedule ever reached seat-svc.)
#[tokio::test]
async fn a_seat_map_too_large_to_announce_is_refused_and_stalls_nothing() {
    let (env, api) = start().await;
    let id = concert(&env, &api).await;
    let huge: Vec<_> = (0..10_000)
        .map(|i| json!({"label": format!("{i:0>60}"), "grade": "R", "price": 1}))
        .collect();
    let refused = api
        .post(
            &format!("/concerts/{id}/schedules"),
            Some(&env.admin()),
            &schedule(json!(huge)),
        )
        .await
        .unwrap()
        .expect_problem(422, "seat-map-too-large");
    assert!(
        refused.str("detail").contains("too large to announce"),
        "{}",
        refused.body
    );
    let listed = api
        .get(
            &format!("/concerts/{id}/schedules?include_sold_out=true"),
            None,
        )
        .await
        .unwrap()
        .expect(200);
    assert_eq!(listed.body, json!([]), "nothing was written");

    let after = opened(
        &env,
        &api,
        &id,
        json!([{"label": "A1", "grade": "R", "price": 1}]),
    )
    .await;
    let subject = format!("concert.schedule_opened.{}", after.str("id"));
    env.event("CONCERT", &subject).await.unwrap();
}
