//! Events the broker lost, published again from the outbox of the service that committed them.

use crate::helpers::on_system;
use e2e::System;
use e2e::eventually;
use e2e::flows;
use e2e::system::Options;
use harness::stream_messages;
use nats::messaging::topology::ensure_streams;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;

/// The SEAT stream is lost after a confirmed sale (a power cut with lazy fsync, a restore from an
/// old backup); the operator recreates it and runs `seat-svc republish` over the sale's time
/// range: the stream holds the same events again, in order, and the consumers that had already
/// handled them recognise them, so every invariant still holds. (On main the outbox had no
/// such tool, and deleted nothing either.)
#[tokio::test]
async fn events_the_broker_lost_are_published_again_from_the_outbox() {
    on_system(Options::default(), async |sys| lost(sys).await).await;
}

async fn lost(sys: &mut System) -> anyhow::Result<()> {
    let from = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let s = flows::open_schedule(sys, "Lost", &[("L1", 100), ("L2", 100)]).await?;
    let r = flows::holding(sys, "lea", 100, &s.schedule_id, &s.seat_ids[..1]).await?;
    flows::pay(sys, "lea", &r).await?.expect(202);
    flows::wait_reservation(sys, "lea", &r, "confirmed").await?;
    sys.settle(flows::STEP).await?;
    let admin = sys.bus_as("admin").await?;
    let before = stream_messages(&admin, "SEAT").await?;
    assert!(before >= 2, "held and sold at least: {before}");

    admin.delete_stream("SEAT").await?;
    ensure_streams(&admin, 1, Default::default()).await?;
    assert_eq!(stream_messages(&admin, "SEAT").await?, 0);
    let to = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let said = sys
        .seat
        .task(&[
            "republish",
            "--from",
            &from.format(&Rfc3339)?,
            "--to",
            &to.format(&Rfc3339)?,
        ])
        .await?;
    assert!(said.contains(&format!("{before} events")), "{said}");
    eventually("SEAT restored", Duration::from_secs(30), async || {
        Ok((stream_messages(&admin, "SEAT").await? == before).then_some(()))
    })
    .await?;
    sys.settle(flows::STEP).await?;
    Ok(())
}
