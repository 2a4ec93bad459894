//! The metrics that matter move the way a run implies: request durations and handled events as
//! histograms by route and type, each way a saga ended counted once, expired holds, consumer
//! lag while payment-svc's database is cut, the outbox's backlog and age while NATS is down,
//! the committer's waits.

use crate::helpers::on_system;
use e2e::system::Options;
use e2e::{Api, System, eventually, flows};
use std::time::Duration;

/// Waits until `api`'s series `name{labels}` satisfies `ok`; answers its value.
async fn until(
    api: &Api,
    name: &str,
    labels: &[(&str, &str)],
    ok: impl Fn(f64) -> bool,
) -> anyhow::Result<f64> {
    let what = format!("{name}{labels:?} at {}", api.base());
    eventually(&what, flows::STEP, async || {
        let v = api.metric(name, labels).await?;
        Ok(ok(v).then_some(v))
    })
    .await
}

#[tokio::test]
async fn the_metrics_move_the_way_the_run_implies() {
    let opts = Options {
        hold_ttl_secs: 4,
        outages: true,
        ..Default::default()
    };
    on_system(opts, async |sys| run(sys).await).await;
}

async fn run(sys: &mut System) -> anyhow::Result<()> {
    let s = flows::open_schedule(sys, "Metered", &flows::numbered_seats("M", 6, 100)).await?;
    let seat = |i: usize| vec![s.seat_ids[i].clone()];
    let (reservations, seats) = (sys.reservation.api(), sys.seat.api());

    // One saga of each ending, each counted once.
    let endings = e2e::endings::one_of_each_ending(sys, &s.schedule_id, &s.seat_ids).await?;
    for (_, _, status) in endings.each() {
        until(
            &reservations,
            "saga_outcomes_total",
            &[("status", status)],
            |v| v == 1.0,
        )
        .await?;
    }
    assert_eq!(seats.metric("holds_expired_total", &[]).await?, 1.0);
    assert_eq!(reservations.metric("sagas_stuck", &[]).await?, 0.0);
    // Every group's wait for the committer is measured (the runs above made several groups).
    let waits = seats
        .metric("unit_of_work_queue_wait_seconds_count", &[])
        .await?;
    assert!(waits >= 1.0, "{waits} committer waits measured");

    // Requests and handled events as histograms: by route and status, by type and outcome.
    let paid = [("route", "/reservations/{id}/payment"), ("status", "202")];
    assert_eq!(
        reservations
            .metric("http_request_duration_seconds_count", &paid)
            .await?,
        2.0
    );
    let le = [paid[0], paid[1], ("le", "10")];
    assert_eq!(
        reservations
            .metric("http_request_duration_seconds_bucket", &le)
            .await?,
        2.0
    );
    let held = [("type", "seat.held.v1"), ("outcome", "done")];
    assert_eq!(
        reservations.metric("events_handled_total", &held).await?,
        4.0
    );
    assert_eq!(
        reservations
            .metric("event_handle_duration_seconds_count", &held)
            .await?,
        4.0
    );
    let cashier = sys.payment.api();
    let requested = [
        ("type", "reservation.payment_requested.v1"),
        ("outcome", "done"),
    ];
    assert_eq!(
        cashier.metric("events_handled_total", &requested).await?,
        2.0
    );

    // payment-svc's database cut: what it is sent waits in its consumer, and is counted.
    let late = flows::holding(sys, "lena", 100, &s.schedule_id, &seat(4)).await?;
    let cut = sys
        .breaker("payment-svc")
        .expect("outages on")
        .cut()
        .await?;
    flows::pay(sys, "lena", &late).await?.expect(202);
    let lag = [("stream", "RESERVATION")];
    eventually("payment-svc's consumer to lag", flows::STEP, async || {
        let waiting = cashier.metric("consumer_pending", &lag).await?
            + cashier.metric("consumer_ack_pending", &lag).await?;
        Ok((waiting >= 1.0).then_some(()))
    })
    .await?;
    drop(cut);
    flows::wait_reservation(sys, "lena", &late, "confirmed").await?;
    until(&cashier, "consumer_pending", &lag, |v| v == 0.0).await?;
    until(&cashier, "consumer_ack_pending", &lag, |v| v == 0.0).await?;

    // NATS down: a hold commits, its event waits in seat-svc's outbox, getting older.
    let token = flows::join_queue(sys, "olga", &s.schedule_id).await?;
    flows::charge(sys, "olga", 100).await?;
    sys.nats.kill();
    flows::hold(
        sys,
        "olga",
        &s.schedule_id,
        token["token"].as_str().unwrap_or_default(),
        &seat(5),
    )
    .await?
    .expect(201);
    until(&seats, "outbox_pending", &[], |v| v >= 1.0).await?;
    until(&seats, "outbox_oldest_age_seconds", &[], |v| v >= 1.0).await?;
    sys.nats.restart()?;
    until(&seats, "outbox_pending", &[], |v| v == 0.0).await?;
    until(&seats, "outbox_oldest_age_seconds", &[], |v| v == 0.0).await?;

    let report = sys.settle(Duration::from_secs(30)).await?;
    assert!(report.is_clean(), "{report}");
    dashboards_name_only_what_the_services_serve(sys).await
}

/// Every metric the committed dashboard and alert rules query is one a service serves: a renamed
/// metric breaks this test, not a dashboard nobody looks at until the night it is needed.
async fn dashboards_name_only_what_the_services_serve(sys: &System) -> anyhow::Result<()> {
    let mut served = String::new();
    for p in sys.services() {
        served += &reqwest::get(format!("{}/metrics", p.url()))
            .await?
            .text()
            .await?;
    }
    let docs = harness::workspace_root().join("docs/observability");
    for file in ["grafana-dashboard.json", "alerts.yml"] {
        let text = std::fs::read_to_string(docs.join(file))?;
        let queried: std::collections::BTreeSet<&str> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| {
                [
                    "_total",
                    "_seconds",
                    "_bucket",
                    "_pending",
                    "_messages",
                    "_stuck",
                ]
                .iter()
                .any(|end| w.ends_with(end))
            })
            .collect();
        assert!(queried.len() >= 6, "{file}: {queried:?}");
        for name in queried {
            assert!(
                served.lines().any(|l| l.starts_with(name)),
                "{file} queries {name}, which no service serves"
            );
        }
    }
    Ok(())
}
