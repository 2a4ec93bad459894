//! Replicas of a service share its consumer group without double effects.

use crate::helpers::on_system;
use e2e::System;
use e2e::flows;
use e2e::system::Options;

/// Two processes each of seat-svc, reservation-svc and payment-svc share their durable
/// consumers and databases: a contended sale still ends with every invariant holding, and the
/// work is shared.
#[tokio::test]
async fn two_replicas_of_each_service_share_the_work_without_double_effects() {
    let opts = Options {
        replicas: 2,
        ..Default::default()
    };
    on_system(opts, async |sys| replicas(sys).await).await;
}

async fn replicas(sys: &System) -> anyhow::Result<()> {
    let s = flows::open_schedule(sys, "Replicas", &flows::numbered_seats("R", 10, 100)).await?;
    flows::busy_run(sys, &s, 40).await?;
    let report = sys.settle(flows::STEP).await?;
    assert!(report.sagas() >= 10, "{report}");
    // Both processes of each service handled events.
    let handled = async |p: &e2e::ServiceProcess| -> anyhow::Result<f64> {
        let text = p
            .api()
            .get("/metrics", None)
            .await?
            .body
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(text
            .lines()
            .filter(|l| l.starts_with("events_handled_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    };
    for (first, second) in [
        (&sys.seat, &sys.replicas[0]),
        (&sys.reservation, &sys.replicas[1]),
        (&sys.payment, &sys.replicas[2]),
    ] {
        let (a, b) = (handled(first).await?, handled(second).await?);
        assert!(
            a > 0.0 && b > 0.0,
            "{}: {a} and {b} events handled",
            first.name
        );
    }
    Ok(())
}
