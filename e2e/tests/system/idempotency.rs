//! Commands sent again with their `Idempotency-Key` (a client that lost the answer): the first
//! answer again and no second effect, even across a kill -9 of the service between the two.

use crate::helpers::on_system;
use e2e::system::Options;
use e2e::{Frontend, System, flows};
use harness::{RawBody, Reply};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn commands_sent_again_with_their_key_take_effect_once() {
    on_system(Options::default(), async |sys| {
        charge_survives_a_kill(sys).await?;
        hold_and_pay_once(sys).await
    })
    .await;
}

/// POSTs `body` to `path` of `api` as `user` with `Idempotency-Key: key`.
async fn post_with_key(
    sys: &System,
    api: harness::Api,
    user: &str,
    path: &str,
    key: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> anyhow::Result<Reply> {
    let mut all = vec![("Idempotency-Key", key)];
    all.extend_from_slice(headers);
    api.send(
        Method::POST,
        path,
        Some(&sys.user_token(user)),
        &all,
        Some(RawBody::Json(body)),
    )
    .await
}

/// A charge answered, then payment-svc killed (-9) and started again: the charge sent again
/// with its key is answered as the first time and charges nothing more.
async fn charge_survives_a_kill(sys: &mut System) -> anyhow::Result<()> {
    let charge = async |sys: &System, amount: i64| {
        let body = json!({"amount": amount});
        post_with_key(
            sys,
            sys.payment(),
            "kim",
            "/wallet/charge",
            "c-1",
            &[],
            &body,
        )
        .await
    };
    let first = charge(sys, 700).await?.expect(200);
    assert_eq!(first.body["balance"], 700);
    assert!(!first.replayed);
    sys.payment.restart()?;
    sys.wait_ready(&sys.payment).await?;
    let again = charge(sys, 700).await?.expect(200);
    assert!(again.replayed, "{again:?}");
    assert_eq!(again.body, first.body);
    assert_eq!(flows::balance(sys, "kim").await?, 700);
    assert_eq!(flows::ledger_kinds(sys, "kim").await?, ["charge"]);
    // The key with another amount is another request: refused, nothing charged.
    charge(sys, 1)
        .await?
        .expect_problem(422, "idempotency-key-reused");
    assert_eq!(flows::balance(sys, "kim").await?, 700);
    Ok(())
}

/// A hold sent again with its key answers the same reservation; a payment sent again with its
/// key is accepted once (without the key, the second would be 409: already being paid).
async fn hold_and_pay_once(sys: &System) -> anyhow::Result<()> {
    let s = flows::open_schedule(sys, "Once", &[("O1", 100), ("O2", 100)]).await?;
    flows::charge(sys, "lee", 100).await?;
    let token = flows::join_queue(sys, "lee", &s.schedule_id).await?;
    let token = token["token"].as_str().unwrap_or_default().to_owned();
    let (path, seats) = (
        format!("/schedules/{}/holds", s.schedule_id),
        json!({"seat_ids": [s.seat_ids[0]]}),
    );
    let queue = [("Queue-Token", token.as_str())];
    let first = post_with_key(sys, sys.seat(), "lee", &path, "h-1", &queue, &seats)
        .await?
        .expect(201);
    let again = post_with_key(sys, sys.seat(), "lee", &path, "h-1", &queue, &seats)
        .await?
        .expect(201);
    assert!(again.replayed, "{again:?}");
    let id = first.str("reservation_id");
    assert_eq!(again.str("reservation_id"), id);
    flows::wait_view(sys, &s.schedule_id, &s.seat_ids[1..], "available").await?;

    let pay = format!("/reservations/{id}/payment");
    let paid = post_with_key(sys, sys.reservation(), "lee", &pay, "p-1", &[], &json!({}))
        .await?
        .expect(202);
    let paid_again = post_with_key(sys, sys.reservation(), "lee", &pay, "p-1", &[], &json!({}))
        .await?
        .expect(202);
    assert!(paid_again.replayed);
    assert_eq!(paid_again.body, paid.body);
    flows::pay(sys, "lee", &id)
        .await?
        .expect_problem(409, "not-awaiting-payment");
    flows::wait_reservation(sys, "lee", &id, "confirmed").await?;
    assert_eq!(flows::balance(sys, "lee").await?, 0);
    let listed = sys
        .reservation()
        .get("/reservations", Some(&sys.user_token("lee")))
        .await?
        .expect(200);
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(1),
        "one hold, one reservation"
    );
    Ok(())
}
