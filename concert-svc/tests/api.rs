//! concert-svc over HTTP, with a real nats-server and SQLite: the catalog commands, their bad
//! input, and the event that builds seat inventory.

use concert_svc::{Config, SERVICE, build};
use platform::harness::{Api, RawBody, TestEnv};
use reqwest::Method;
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn start() -> (TestEnv, Api) {
    let env = TestEnv::new().expect("test env");
    let app = build(Config {
        service: env.config(SERVICE).await.expect("a database"),
    })
    .await
    .expect("build concert-svc");
    let api = env
        .run(
            app.local_addr(),
            app.run_until_stopped(CancellationToken::new()),
        )
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

fn schedule(seats: serde_json::Value) -> serde_json::Value {
    json!({"starts_at": "2027-01-01T20:00:00Z", "seats": seats})
}

#[tokio::test]
async fn opening_a_schedule_publishes_its_seat_map_and_shows_it_available() {
    let (env, api) = start().await;
    let id = concert(&env, &api).await;
    let opened = api
        .post(
            &format!("/concerts/{id}/schedules"),
            Some(&env.admin()),
            &schedule(json!([{"label": "A1", "grade": "VIP", "price": 150}, {"label": "A2", "grade": "R", "price": 100}])),
        )
        .await
        .unwrap()
        .expect(201);
    let schedule_id = opened.str("id");

    let seats = api
        .get(&format!("/schedules/{schedule_id}/seats"), None)
        .await
        .unwrap()
        .expect(200);
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
    assert_eq!(listed.body[0]["starts_at"], "2027-01-01T20:00:00Z");

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
            "negative price",
        ),
        (
            schedule(json!([{"label": " ", "grade": "R", "price": 1}])),
            422,
            "empty label",
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
        .expect(422);
    api.post("/concerts", Some(&admin), &json!({}))
        .await
        .unwrap()
        .expect(422);

    let unknown = uuid::Uuid::new_v4();
    api.post(
        &format!("/concerts/{unknown}/schedules"),
        Some(&admin),
        &schedule(json!([{"label": "A", "grade": "R", "price": 1}])),
    )
    .await
    .unwrap()
    .expect(404);
    api.get(&format!("/concerts/{unknown}/schedules"), None)
        .await
        .unwrap()
        .expect(404);
    api.get("/concerts/not-a-uuid/schedules", None)
        .await
        .unwrap()
        .expect(404);
    api.get(&format!("/schedules/{unknown}/seats"), None)
        .await
        .unwrap()
        .expect(404);

    // Identity: none, forged, expired-by-secret, and not an admin.
    api.post("/concerts", None, &json!({"title": "x"}))
        .await
        .unwrap()
        .expect(401);
    let other_secret = platform::auth::Auth::new("another").issue(
        "admin",
        Some("admin"),
        std::time::Duration::from_secs(60),
    );
    api.post("/concerts", Some(&other_secret), &json!({"title": "x"}))
        .await
        .unwrap()
        .expect(401);
    api.post("/concerts", Some(&env.user("bob")), &json!({"title": "x"}))
        .await
        .unwrap()
        .expect(403);
    let r = api
        .send(Method::DELETE, "/concerts", Some(&admin), &[], None)
        .await
        .unwrap();
    assert!(r.is(405), "{r:?}");
}

#[tokio::test]
async fn a_sold_out_schedule_drops_out_of_the_available_dates() {
    use contracts::events::{SeatHeld, SeatSold};
    use contracts::{Points, ReservationId, ScheduleId, SeatEvent, SeatId, UserId};

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
    let r = ReservationId::new();
    let held = SeatEvent::Held(SeatHeld {
        reservation_id: r,
        user_id: UserId("ann".into()),
        schedule_id,
        seat_ids: vec![seat],
        amount: Points::new(10).unwrap(),
        expires_at: time::OffsetDateTime::now_utc(),
    });
    env.publish("seat-svc", &held).await.unwrap();
    env.publish(
        "seat-svc",
        &SeatEvent::Sold(SeatSold {
            reservation_id: r,
            seat_ids: vec![seat],
        }),
    )
    .await
    .unwrap();
    env.handled_all("SEAT", SERVICE).await.unwrap();

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
        .expect(400);
}
