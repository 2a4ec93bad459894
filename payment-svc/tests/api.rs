//! payment-svc over HTTP and JetStream, with a real nats-server and SQLite: wallets and their
//! bad input, and debits that happen once per reservation whatever is delivered twice.

use contracts::events::PaymentRequested;
use contracts::{Message, Points, ReservationEvent, ReservationId, UserId};
use harness::{Api, RawBody, TestEnv, eventually, publish_message};
use nats::runtime::Service;
use payment_svc::PaymentSvc;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

async fn start(env: &TestEnv) -> Api {
    env.start::<PaymentSvc>(())
        .await
        .expect("payment-svc ready")
}

fn request(r: ReservationId, user: &str, amount: i64) -> ReservationEvent {
    ReservationEvent::PaymentRequested(PaymentRequested {
        reservation_id: r,
        user_id: UserId(user.into()),
        amount: Points::new(amount).unwrap(),
    })
}

async fn payment_event(env: &TestEnv, kind: &str, r: ReservationId) -> serde_json::Value {
    let js = env.jetstream().await.unwrap();
    let msg = eventually(&format!("payment.{kind}"), WAIT, async || {
        Ok(js
            .get_stream("PAYMENT")
            .await?
            .get_last_raw_message_by_subject(&format!("payment.{kind}.{r}"))
            .await
            .ok())
    })
    .await
    .unwrap();
    serde_json::from_slice(&msg.payload).unwrap()
}

/// A charge sent again with the same Idempotency-Key (the client lost the answer) charges once
/// and answers the same balance; the key with another amount is refused; keys are per user.
/// (On main every retry charged again.)
#[tokio::test]
async fn a_charge_sent_again_with_its_idempotency_key_charges_once() {
    let env = TestEnv::new().unwrap();
    let api = start(&env).await;
    let (ann, bob) = (env.user("ann"), env.user("bob"));
    let charge = async |token: &str, key: &str, amount: i64| {
        let body = json!({"amount": amount});
        api.send(
            Method::POST,
            "/wallet/charge",
            Some(token),
            &[("Idempotency-Key", key)],
            Some(RawBody::Json(&body)),
        )
        .await
        .unwrap()
    };
    for again in [false, true, true] {
        let r = charge(&ann, "k-1", 500).await.expect(200);
        assert_eq!(r.body["balance"], 500);
        assert_eq!(r.replayed, again, "the first answer, given again");
    }
    let reused = charge(&ann, "k-1", 400)
        .await
        .expect_problem(422, "idempotency-key-reused");
    assert_eq!(reused.content_type, "application/problem+json");
    assert!(
        reused.str("detail").contains("Idempotency-Key"),
        "{reused:?}"
    );
    assert_eq!(
        charge(&ann, "k-2", 100).await.expect(200).body["balance"],
        600
    );
    assert_eq!(
        charge(&bob, "k-1", 500).await.expect(200).body["balance"],
        500
    );
    // Sent again while the first is still being handled: 409 (come back), or the first
    // answer once it is stored; never a second charge.
    let cat = env.user("cat");
    let answers = futures::future::join_all((0..20).map(|_| charge(&cat, "k-par", 50))).await;
    let mut charged = 0;
    for a in answers {
        if a.is(409) {
            assert!(a.retry_after.is_some(), "{a:?}");
            a.expect_problem(409, "idempotency-key-in-use");
        } else {
            assert_eq!(a.expect(200).body["balance"], 50);
            charged += 1;
        }
    }
    assert!(charged >= 1);
    assert_eq!(
        charge(&cat, "k-par", 50).await.expect(200).body["balance"],
        50
    );
    let too_long = "k".repeat(256);
    charge(&ann, &too_long, 100)
        .await
        .expect_problem(400, "invalid-idempotency-key");
    let ledger = api
        .get("/wallet/ledger", Some(&ann))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(ledger.body.as_array().unwrap().len(), 2, "{}", ledger.body);
}

#[tokio::test]
async fn charges_must_be_positive_and_show_in_the_ledger() {
    let env = TestEnv::new().unwrap();
    let api = start(&env).await;
    let ann = env.user("ann");
    assert_eq!(
        api.get("/wallet", Some(&ann))
            .await
            .unwrap()
            .expect(200)
            .body["balance"],
        0
    );
    for amount in [json!(0), json!(-5)] {
        let r = api
            .post("/wallet/charge", Some(&ann), &json!({"amount": amount}))
            .await
            .unwrap()
            .expect_problem(422, "invalid-charge");
        assert_eq!(r.content_type, "application/problem+json");
        assert!(r.str("detail").contains("positive"));
    }
    api.post("/wallet/charge", Some(&ann), &json!({"amount": "ten"}))
        .await
        .unwrap()
        .expect_problem(422, "invalid-body");
    api.post("/wallet/charge", Some(&ann), &json!({"amount": 1.5}))
        .await
        .unwrap()
        .expect_problem(422, "invalid-body");
    let malformed = api
        .send(
            Method::POST,
            "/wallet/charge",
            Some(&ann),
            &[],
            Some(RawBody::Text("{amount: 5}")),
        )
        .await
        .unwrap();
    assert!(malformed.is(400), "{malformed:?}");
    api.post("/wallet/charge", None, &json!({"amount": 5}))
        .await
        .unwrap()
        .expect(401);

    assert_eq!(
        api.post("/wallet/charge", Some(&ann), &json!({"amount": 700}))
            .await
            .unwrap()
            .expect(200)
            .body["balance"],
        700
    );
    assert_eq!(
        api.post("/wallet/charge", Some(&ann), &json!({"amount": 300}))
            .await
            .unwrap()
            .expect(200)
            .body["balance"],
        1000
    );
    let ledger = api
        .get("/wallet/ledger", Some(&ann))
        .await
        .unwrap()
        .expect(200);
    let kinds: Vec<_> = ledger
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].clone(), e["balance_after"].clone()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (json!("charge"), json!(700)),
            (json!("charge"), json!(1000))
        ]
    );
    assert_eq!(
        api.get("/wallet", Some(&env.user("ben")))
            .await
            .unwrap()
            .expect(200)
            .body["balance"],
        0
    );
}

#[tokio::test]
async fn a_payment_request_debits_once_even_when_delivered_twice() {
    let env = TestEnv::new().unwrap();
    let api = start(&env).await;
    let ann = env.user("ann");
    api.post("/wallet/charge", Some(&ann), &json!({"amount": 1000}))
        .await
        .unwrap()
        .expect(200);

    let r = ReservationId::new();
    let msg = Message::new(
        "reservation-svc",
        &request(r, "ann", 200),
        None,
        time::OffsetDateTime::now_utc(),
    );
    let js = env.jetstream().await.unwrap();
    publish_message(&js, &msg).await.unwrap();
    let completed = payment_event(&env, "completed", r).await;
    assert_eq!(completed["amount"], 200);

    // The same event again (a re-publish after the broker's dedup window): the inbox knows it.
    let mut copy = msg.clone();
    for (k, v) in copy.headers.iter_mut() {
        if k == "Nats-Msg-Id" {
            *v = "republished".into();
        }
    }
    publish_message(&js, &copy).await.unwrap();
    // And a second, distinct request for the same reservation: already settled, no debit.
    publish_message(
        &js,
        &Message::new(
            "reservation-svc",
            &request(r, "ann", 200),
            None,
            time::OffsetDateTime::now_utc(),
        ),
    )
    .await
    .unwrap();
    eventually("both copies handled", WAIT, async || {
        let mut c: async_nats::jetstream::consumer::PullConsumer = js
            .get_consumer_from_stream(PaymentSvc::NAME, "RESERVATION")
            .await?;
        let info = c.info().await?;
        Ok((info.delivered.stream_sequence == 3 && info.num_ack_pending == 0).then_some(()))
    })
    .await
    .unwrap();
    assert_eq!(
        api.get("/wallet", Some(&ann)).await.unwrap().body["balance"],
        800
    );
    let ledger = api
        .get("/wallet/ledger", Some(&ann))
        .await
        .unwrap()
        .expect(200);
    let debits: Vec<_> = ledger
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "debit")
        .collect();
    assert_eq!(debits.len(), 1);
    assert_eq!(debits[0]["reservation_id"], r.to_string());
    let stream = harness::stream_messages(&js, "PAYMENT").await.unwrap();
    assert_eq!(stream, 1, "one payment.completed");
}

#[tokio::test]
async fn a_request_beyond_the_balance_fails_and_takes_nothing() {
    let env = TestEnv::new().unwrap();
    let api = start(&env).await;
    let ann = env.user("ann");
    api.post("/wallet/charge", Some(&ann), &json!({"amount": 150}))
        .await
        .unwrap()
        .expect(200);
    let r = ReservationId::new();
    env.publish("reservation-svc", &request(r, "ann", 200))
        .await
        .unwrap();
    let failed = payment_event(&env, "failed", r).await;
    assert_eq!(failed["reason"], "insufficient_points");
    assert_eq!(
        api.get("/wallet", Some(&ann)).await.unwrap().body["balance"],
        150
    );
}

/// Lists answer pages: at most 100 items unless asked (`?limit=` 1 to 500), after `?offset=`;
/// anything else is a 422 problem. (On main a list answered every row the user ever had.)
#[tokio::test]
async fn the_ledger_is_answered_a_page_at_a_time() {
    let env = TestEnv::new().unwrap();
    let api = start(&env).await;
    let ann = env.user("ann");
    for amount in 1..=105 {
        api.post("/wallet/charge", Some(&ann), &json!({"amount": amount}))
            .await
            .unwrap()
            .expect(200);
    }
    let len = |r: &harness::Reply| r.body.as_array().map(Vec::len).unwrap_or_default();
    let first = api
        .get("/wallet/ledger", Some(&ann))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(len(&first), 100);
    assert_eq!(first.body[0]["amount"], 1);
    let page = api
        .get("/wallet/ledger?limit=2&offset=103", Some(&ann))
        .await
        .unwrap()
        .expect(200);
    assert_eq!(len(&page), 2);
    assert_eq!(
        (
            page.body[0]["amount"].clone(),
            page.body[1]["amount"].clone()
        ),
        (json!(104), json!(105))
    );
    for bad in ["limit=0", "limit=501", "offset=-1"] {
        let r = api
            .get(&format!("/wallet/ledger?{bad}"), Some(&ann))
            .await
            .unwrap()
            .expect_problem(422, "invalid-page");
        assert_eq!(r.content_type, "application/problem+json", "{bad}");
    }
    api.get("/wallet/ledger?limit=ten", Some(&ann))
        .await
        .unwrap()
        .expect(400);
}

/// A client that sends its body too slowly is answered 503 (a problem) once the request's time
/// is up, and nothing of it takes effect. (On main a request had no deadline: a client could
/// hold a connection and a task for as long as it liked.)
#[tokio::test]
async fn a_request_whose_body_never_arrives_is_answered_when_its_time_is_up() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut env = TestEnv::new().unwrap();
    env.request_timeout = Duration::from_secs(1);
    let api = start(&env).await;
    let ann = env.user("ann");
    let addr = api.base().trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /wallet/charge HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ann}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"amount\":"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("\"status\":503") {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let text = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "no answer within 10 s: {text}");
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    let wallet = api.get("/wallet", Some(&ann)).await.unwrap().expect(200);
    assert_eq!(wallet.body["balance"], 0);
}
