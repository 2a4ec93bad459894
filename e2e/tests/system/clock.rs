//! Clock skew: a replica whose clock runs fast keeps to the database's time.

use crate::helpers::on_system;
use anyhow::{Context as _, ensure};
use e2e::eventually;
use e2e::flows;
use e2e::system::Options;
use e2e::{Frontend as _, System};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How far the replica's clock runs ahead.
const SKEW_SECS: i64 = 15;

/// A seat-svc replica whose clock is 15 s fast runs the expiry scan alone: a 20 s hold still
/// expires at its deadline, not 15 s early (the replica's deadlines follow the database's
/// clock). PostgreSQL only: replicas on SQLite share one machine, and so its clock.
#[tokio::test]
async fn a_replica_whose_clock_runs_fast_does_not_expire_holds_early() {
    let opts = Options {
        hold_ttl_secs: 20,
        postgres: true,
        ..Default::default()
    };
    on_system(opts, async |sys| fast_replica(sys).await).await;
}

async fn fast_replica(sys: &mut System) -> anyhow::Result<()> {
    let lib = e2e::process::libfaketime().context("libfaketime (Debian's faketime) is missing")?;
    let s = flows::open_schedule(sys, "Skew", &[("K1", 100)]).await?;
    let fast = sys.seat.replica_with(
        2,
        &[
            ("LD_PRELOAD", lib.to_str().context("a UTF-8 path")?),
            ("FAKETIME", &format!("+{SKEW_SECS}s")),
            // Timers and timeouts keep the real pace.
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    )?;
    sys.wait_ready(&fast).await?;
    // The fault is in effect: the replica measured its clock that far from the database's.
    let offset = clock_offset_ms(&fast.api()).await?;
    ensure!(
        (offset + SKEW_SECS as f64 * 1000.0).abs() < 1000.0,
        "offset {offset} ms"
    );
    // A process on the database's machine reads no offset at all: a slow reading must not set
    // services apart (their events' times order a saga's timeline).
    let offset = clock_offset_ms(&sys.seat.api()).await?;
    ensure!(offset == 0.0, "an unskewed replica measured {offset} ms");

    let id = flows::holding(sys, "ann", 100, &s.schedule_id, &s.seat_ids).await?;
    let held = flows::wait_reservation(sys, "ann", &id, "awaiting_payment").await?;
    let deadline =
        OffsetDateTime::parse(held["expires_at"].as_str().context("expires_at")?, &Rfc3339)?;
    // From here the fast replica is the only one that scans for due holds.
    sys.seat.kill();

    // By its own clock the hold is due 15 s early; it must stay held until 2 s before the
    // deadline.
    let token = sys.user_token("ann");
    let api = sys.reservation();
    let early = eventually("2 s before the deadline", flows::STEP, async || {
        let r = api
            .get(&format!("/reservations/{id}"), Some(&token))
            .await?;
        let now = OffsetDateTime::now_utc();
        Ok(if r.str("status") != "awaiting_payment" {
            Some(Some(format!("{}: {}", now, r.body)))
        } else {
            (now > deadline - time::Duration::seconds(2)).then_some(None)
        })
    })
    .await?;
    ensure!(
        early.is_none(),
        "the hold ended before its deadline, at {early:?}"
    );
    flows::wait_reservation(sys, "ann", &id, "expired").await?;
    ensure!(
        OffsetDateTime::now_utc() > deadline - time::Duration::seconds(1),
        "expired before its deadline {deadline}"
    );
    drop(fast);
    Ok(())
}

/// The clock offset a service measured, from its `/metrics`.
async fn clock_offset_ms(api: &e2e::Api) -> anyhow::Result<f64> {
    let metrics = api.get("/metrics", None).await?;
    Ok(metrics
        .body
        .as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("clock_offset_ms "))
        .context("clock_offset_ms in /metrics")?
        .trim()
        .parse()?)
}
