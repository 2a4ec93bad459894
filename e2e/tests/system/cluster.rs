//! A three-node cluster losing the node that leads the SEAT stream.

use crate::helpers::on_system;
use async_nats::jetstream;
use e2e::System;
use e2e::eventually;
use e2e::flows;
use e2e::system::Options;
use harness::stream_messages;

/// A flash sale on a three-node cluster running the committed `nats/conf/cluster.conf` (R3
/// streams and durables, each service on its own NATS user): the node leading the SEAT stream is
/// SIGKILLed mid-sale and stays down; every saga still ends and the invariants hold. Restarted,
/// the node catches up on everything published while it was away.
#[tokio::test]
async fn a_flash_sale_on_a_three_node_cluster_survives_losing_a_node() {
    let opts = Options {
        cluster: true,
        // Longer than a leader election (a few seconds), or every hold expires meanwhile.
        hold_ttl_secs: 15,
        queue_active_limit: 1000,
        ..Default::default()
    };
    on_system(opts, async |sys| node_loss(sys).await).await;
}

async fn node_loss(sys: &mut System) -> anyhow::Result<()> {
    use std::time::{Duration, Instant};
    let admin = sys.bus_as("admin").await?;
    let seats = flows::numbered_seats("C", 30, 100);
    let s = flows::open_schedule(sys, "Cluster", &seats).await?;
    let seat_stream = admin.get_stream("SEAT").await?.get_info().await?;
    let replicas = seat_stream.config.num_replicas;
    assert_eq!(replicas, 3, "streams are R3 on the cluster");
    let leader = seat_stream
        .cluster
        .and_then(|c| c.leader)
        .expect("an R3 stream has a leader");

    let sale = e2e::sale::Sale::start(
        sys.client(),
        80,
        3,
        &s,
        Instant::now() + Duration::from_secs(120),
    );
    eventually(
        "the sale to be under way",
        Duration::from_secs(60),
        async || Ok((sale.holds() >= 10).then_some(())),
    )
    .await?;
    let sold_at_kill = seat_events(&admin).await?;
    let node = std::iter::once(&sys.nats)
        .chain(&sys.peers)
        .position(|n| n.name() == Some(leader.as_str()))
        .expect("the leader is one of the nodes");
    sys.nats_node_mut(node).kill();
    let killed = Instant::now();

    let accepted = sale.finish().await?;
    let report = sys.settle(Duration::from_secs(90)).await?;
    eprintln!(
        "{report}; {} holds, {} payments, {} cancels accepted; settled {:.1} s after losing {leader}",
        accepted.holds.len(),
        accepted.paid.len(),
        accepted.cancelled.len(),
        killed.elapsed().as_secs_f64()
    );
    assert!(report.sagas() >= 20, "{report}");
    assert_eq!(
        e2e::chaos::lost_commands(sys, &accepted).await?,
        Vec::<String>::new()
    );
    let after = seat_events(&admin).await?;
    assert!(
        after > sold_at_kill,
        "the sale went on without {leader}: SEAT went from {sold_at_kill} to {after} events"
    );

    // Back, it rejoins every stream and replays what it missed until it is current.
    sys.nats_node_mut(node).restart()?;
    for stream in ["CONCERT", "SEAT", "RESERVATION", "PAYMENT"] {
        eventually(
            &format!("{leader} to be current on {stream}"),
            Duration::from_secs(30),
            async || {
                let info = admin.get_stream(stream).await?.get_info().await?;
                let cluster = info.cluster.unwrap_or_default();
                let current = cluster.leader.as_deref() == Some(leader.as_str())
                    || cluster.replicas.iter().any(|p| {
                        p.name == leader && p.current && !p.offline && p.lag.unwrap_or(0) == 0
                    });
                Ok(current.then_some(()))
            },
        )
        .await?;
    }
    Ok(())
}

/// Events in the SEAT stream so far, retried while a leader election leaves it unanswered.
async fn seat_events(js: &jetstream::Context) -> anyhow::Result<u64> {
    eventually(
        "SEAT stream info",
        std::time::Duration::from_secs(30),
        async || Ok(Some(stream_messages(js, "SEAT").await?)),
    )
    .await
}
