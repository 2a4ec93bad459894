//! A secured bus: each service on its own NATS user, unable to step outside its context.

use crate::helpers::on_system;
use e2e::flows;
use e2e::system::Options;
use e2e::{Frontend, System};
use harness::stream_messages;
use serde_json::json;

/// Each service on a NATS user of its own: the system works, and seat-svc's credentials can
/// neither publish a payment event nor read another service's durable consumer.
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
    let logs = sys.logs_tail(100_000);
    assert!(
        !logs.contains("Permissions Violation"),
        "a service was refused something it needs:\n{logs}"
    );

    let seat = sys.bus_as("seat-svc").await?;
    // Its own events: allowed.
    let own = seat.publish("seat.probe.x", "{}".into()).await?.await;
    assert!(own.is_ok(), "seat-svc publishes seat.*: {own:?}");
    // A payment event and another service's durable: both refused (each waits out a request
    // timeout, so they are tried at once), and nothing reaches the PAYMENT stream.
    let admin = sys.bus_as("admin").await?;
    let before = stream_messages(&admin, "PAYMENT").await?;
    let forged = async {
        seat.publish("payment.completed.forged", "{}".into())
            .await?
            .await?;
        anyhow::Ok(())
    };
    let theirs = seat
        .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
            "payment-svc",
            "RESERVATION",
        );
    let limit = std::time::Duration::from_secs(10);
    let (forged, theirs) = tokio::join!(
        tokio::time::timeout(limit, forged),
        tokio::time::timeout(limit, theirs)
    );
    assert!(
        !matches!(forged, Ok(Ok(()))),
        "seat-svc must not publish payment events"
    );
    assert!(
        !matches!(theirs, Ok(Ok(_))),
        "seat-svc must not read payment-svc's consumer"
    );
    assert_eq!(stream_messages(&admin, "PAYMENT").await?, before);
    // Its own durable: allowed.
    let mine = seat
        .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
            "seat-svc", "PAYMENT",
        )
        .await;
    assert!(mine.is_ok(), "{:?}", mine.err());
    Ok(())
}
