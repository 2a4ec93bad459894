//! Hold deadlines: expiry, late payments refunded, replicas expiring once.

use crate::helpers::on_system;
use async_nats::jetstream;
use e2e::System;
use e2e::eventually;
use e2e::flows;
use e2e::system::Options;

/// Short holds: an unpaid hold expires; a payment that completes after expiry is refunded; a
/// cancel while the payment is pending (payment-svc down) refunds once it is back.
#[tokio::test]
async fn expired_holds_release_their_seats_and_late_payments_are_refunded() {
    let opts = Options {
        hold_ttl_secs: 1,
        ..Default::default()
    };
    on_system(opts, async |sys| expiry(sys).await).await;
}

async fn expiry(sys: &mut System) -> anyhow::Result<()> {
    let s =
        flows::open_schedule(sys, "Short holds", &[("C1", 100), ("C2", 100), ("C3", 100)]).await?;
    let seat = |i: usize| vec![s.seat_ids[i].clone()];

    // Nobody pays, and seat-svc is down when the deadline passes: the deadline is in its
    // database, so the hold expires once it is back. Paying afterwards is refused.
    let idle = flows::holding(sys, "idle", 100, &s.schedule_id, &seat(0)).await?;
    sys.seat.kill();
    let deadline =
        flows::wait_reservation(sys, "idle", &idle, "awaiting_payment").await?["expires_at"]
            .as_str()
            .map(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339))
            .transpose()?
            .expect("a deadline");
    eventually("the deadline to pass", flows::STEP, async || {
        Ok((time::OffsetDateTime::now_utc() > deadline).then_some(()))
    })
    .await?;
    flows::wait_reservation(sys, "idle", &idle, "awaiting_payment").await?;
    sys.seat.restart()?;
    flows::wait_reservation(sys, "idle", &idle, "expired").await?;
    flows::pay(sys, "idle", &idle)
        .await?
        .expect_problem(409, "not-awaiting-payment");
    flows::cancel(sys, "idle", &idle)
        .await?
        .expect_problem(409, "not-cancellable");
    flows::wait_view(sys, &s.schedule_id, &seat(0), "available").await?;
    assert_eq!(flows::balance(sys, "idle").await?, 100);

    // From here on two seat-svc replicas share the work (and the expiry scans).
    let _replica = sys.seat.replica(2)?;

    // payment-svc is down while two users pay; one of them cancels meanwhile.
    let late = flows::holding(sys, "late", 100, &s.schedule_id, &seat(1)).await?;
    let quitter = flows::holding(sys, "quitter", 100, &s.schedule_id, &seat(2)).await?;
    sys.payment.kill();
    flows::pay(sys, "late", &late).await?.expect(202);
    flows::pay(sys, "quitter", &quitter).await?.expect(202);
    flows::cancel(sys, "quitter", &quitter).await?.expect(202);
    // Both holds expire while the payments wait; the paid-for one waits for its outcome.
    flows::wait_view(sys, &s.schedule_id, &seat(1), "available").await?;
    let pending = flows::wait_reservation(sys, "late", &late, "payment_pending").await?;
    assert_eq!(pending["status"], "payment_pending");

    // payment-svc comes back and catches up: it debits, seat-svc refuses the sale of an expired
    // hold, payment-svc refunds. The cancelled one is refunded too, or never charged.
    sys.payment.restart()?;
    let failed = flows::wait_reservation(sys, "late", &late, "failed").await?;
    assert_eq!(failed["reason"], "hold_expired");
    flows::wait_reservation(sys, "quitter", &quitter, "cancelled").await?;
    for user in ["late", "quitter"] {
        eventually(&format!("{user}'s points back"), flows::STEP, async || {
            Ok((flows::balance(sys, user).await? == 100).then_some(()))
        })
        .await?;
    }
    assert_eq!(
        flows::ledger_kinds(sys, "late").await?,
        ["charge", "debit", "refund"]
    );

    let report = sys.settle(flows::STEP).await?;
    assert_eq!(report.sagas(), 3, "{report}");
    // Each hold was released exactly once, whichever replica did it.
    let js = jetstream::new(async_nats::connect(sys.nats.url()).await?);
    let stream = js.get_stream("SEAT").await?;
    for r in [&idle, &late, &quitter] {
        use futures::TryStreamExt;
        let subject = format!("seat.released.{r}");
        let counts: Vec<(String, usize)> = stream
            .info_with_subjects(&subject)
            .await?
            .try_collect()
            .await?;
        assert_eq!(counts, vec![(subject, 1)]);
    }
    Ok(())
}
