//! A secured bus: each service on its own NATS user, unable to step outside its context.

use crate::helpers::on_system;
use e2e::flows;
use e2e::system::Options;
use e2e::{Frontend, System};
use harness::stream_messages;
use serde_json::json;

/// Each service on a NATS user of its own: the system works (rebuild included) with no service
/// refused anything, and seat-svc's credentials can neither publish a payment event, nor ack,
/// pull from or read the replies of another service, nor create or change a stream not its own;
/// concert-svc cannot delete another service's consumer on SEAT.
#[tokio::test]
async fn on_a_secured_bus_services_work_and_cannot_step_outside_their_context() {
    let opts = Options {
        secured: true,
        ..Default::default()
    };
    on_system(opts, async |sys| secured(sys).await).await;
}

async fn secured(sys: &System) -> anyhow::Result<()> {
    let s = flows::open_schedule(sys, "Secured", &[("K1", 100)]).await?;
    let r = flows::holding(sys, "kim", 100, &s.schedule_id, &s.seat_ids).await?;
    flows::pay(sys, "kim", &r).await?.expect(202);
    flows::wait_reservation(sys, "kim", &r, "confirmed").await?;
    sys.settle(flows::STEP).await?;
    let rebuilt = sys
        .concert
        .api()
        .post("/admin/view/rebuild", Some(&sys.admin_token()), &json!({}))
        .await?;
    anyhow::ensure!(rebuilt.is(200), "rebuild: {rebuilt:?}");
    assert_eq!(rebuilt.body["differences"], json!([]), "{}", rebuilt.body);
    assert!(rebuilt.body["events"].as_u64().unwrap() >= 2);
    // reservation-svc reads a saga across every stream with its own credentials.
    let timeline = sys
        .reservation
        .api()
        .get(&format!("/admin/sagas/{r}"), Some(&sys.admin_token()))
        .await?
        .expect(200);
    let types: Vec<&str> = timeline
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["type"].as_str())
        .collect();
    assert!(
        types.contains(&"payment.completed.v1") && types.contains(&"seat.sold.v1"),
        "{types:?}"
    );
    let logs = sys.logs_tail(100_000);
    assert!(
        !logs.contains("Permissions Violation"),
        "a service was refused something it needs:\n{logs}"
    );

    // Each refusal below must be the server's "Permissions Violation" for that subject, not a
    // timeout or any other failure.
    let admin = sys.bus_as("admin").await?;
    let before = stream_messages(&admin, "PAYMENT").await?;
    let seat = sys.watched_as("seat-svc").await?;
    let seat_js = async_nats::jetstream::new(seat.client.clone());
    // Its own events: allowed, acknowledged on its own inbox.
    let own = seat_js.publish("seat.probe.x", "{}".into()).await?.await;
    assert!(own.is_ok(), "seat-svc publishes seat.*: {own:?}");
    // A forged payment event (it would confirm a reservation with no debit).
    seat.client
        .publish("payment.completed.forged", "{}".into())
        .await?;
    // Acking another service's delivery, creating or changing a stream not its own, pulling
    // from another service's durable.
    for subject in [
        "$JS.ACK.RESERVATION.payment-svc.1.1.1.1.0",
        "$JS.API.STREAM.UPDATE.SEAT",
        "$JS.API.STREAM.CREATE.PAYMENT",
        "$JS.API.CONSUMER.MSG.NEXT.RESERVATION.payment-svc",
    ] {
        seat.client.publish(subject, "{}".into()).await?;
    }
    seat.client.flush().await?;
    for subject in [
        "payment.completed.forged",
        "$JS.ACK.RESERVATION.payment-svc.1.1.1.1.0",
        "$JS.API.STREAM.UPDATE.SEAT",
        "$JS.API.STREAM.CREATE.PAYMENT",
        "$JS.API.CONSUMER.MSG.NEXT.RESERVATION.payment-svc",
    ] {
        seat.denied(subject).await?;
    }
    // Reading other services' replies.
    for inbox in ["_INBOX.>", "_INBOX_payment-svc.>"] {
        let _subscription = seat.client.subscribe(inbox).await?;
        seat.client.flush().await?;
        seat.denied(inbox).await?;
    }
    assert_eq!(stream_messages(&admin, "PAYMENT").await?, before);
    // concert-svc may delete its rebuild's consumer on SEAT, and no other.
    let concert = sys.watched_as("concert-svc").await?;
    concert
        .client
        .publish("$JS.API.CONSUMER.DELETE.SEAT.reservation-svc", "".into())
        .await?;
    concert.client.flush().await?;
    concert
        .denied("$JS.API.CONSUMER.DELETE.SEAT.reservation-svc")
        .await?;
    // Its own durable: allowed.
    let mine = seat_js
        .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
            "seat-svc", "PAYMENT",
        )
        .await;
    assert!(mine.is_ok(), "{:?}", mine.err());
    assert_eq!(seat.denials().len(), 7, "{:?}", seat.denials());
    Ok(())
}
