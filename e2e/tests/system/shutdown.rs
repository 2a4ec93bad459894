//! SIGTERM: a clean exit that loses nothing accepted.

use crate::helpers::on_system;
use e2e::flows;
use e2e::system::Options;
use e2e::{Frontend, System};

/// SIGTERM: a service stops taking requests, finishes what it has, flushes its outbox and
/// exits 0 promptly; what it accepted completes after it comes back.
#[tokio::test]
async fn sigterm_stops_a_service_cleanly_without_losing_accepted_work() {
    on_system(Options::default(), async |sys| graceful(sys).await).await;
}

async fn graceful(sys: &mut System) -> anyhow::Result<()> {
    let s = flows::open_schedule(sys, "Graceful", &[("G1", 100)]).await?;
    let r = flows::holding(sys, "gina", 100, &s.schedule_id, &s.seat_ids).await?;
    // An open status stream must not hold the shutdown up.
    let (opened, is_open) = tokio::sync::oneshot::channel();
    let stream = tokio::spawn(flows::status_events(
        sys.reservation.api(),
        sys.user_token("gina"),
        r.clone(),
        opened,
    ));
    tokio::time::timeout(flows::STEP, is_open).await??;
    flows::pay(sys, "gina", &r).await?.expect(202);
    let started = std::time::Instant::now();
    assert!(
        sys.reservation
            .terminate(std::time::Duration::from_secs(15))?,
        "exit status 0"
    );
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(12), "took {took:?}");
    let _ = stream.await;
    for p in [&mut sys.seat, &mut sys.payment, &mut sys.concert] {
        assert!(
            p.terminate(std::time::Duration::from_secs(15))?,
            "{} exits 0",
            p.name
        );
        p.restart()?;
    }
    sys.reservation.restart()?;
    flows::wait_reservation(sys, "gina", &r, "confirmed").await?;
    sys.settle(flows::STEP).await?;
    Ok(())
}
