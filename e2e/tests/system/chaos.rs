//! A flash sale under random kills of services and nats-server.

/// A short chaos run on a secured bus: 100 users, 30 seats, 10 faults at random moments —
/// SIGKILLs of services and nats-server, databases cut for up to 3 s, and one forged
/// `payment.completed` with seat-svc's credentials, which the bus must deny. Every saga
/// finishes, nothing accepted is lost, every invariant holds (the DLQ empty, every outbox
/// drained, every wallet charged exactly what was accepted).
#[tokio::test]
async fn a_flash_sale_survives_random_kills_of_services_and_nats() {
    let cfg = e2e::chaos::Config {
        users: 100,
        seats: 30,
        kills: 10,
        seed: 7,
        replicas: 1,
        kill_nats: true,
        cluster: false,
        db_outages: true,
        forge: true,
        hold_ttl_secs: 5,
        converge_within: std::time::Duration::from_secs(90),
    };
    let report = e2e::chaos::run(&cfg, |line| eprintln!("{line}"))
        .await
        .expect("chaos run");
    assert_eq!(report.kills.len(), 10);
    assert!(report.invariants.sagas() >= 25, "{}", report.invariants);
    assert_eq!(report.lost, Vec::<String>::new());
    assert_eq!(report.forgeries_accepted, Vec::<String>::new());
    assert!(
        report
            .kills
            .iter()
            .any(|k| k.contains("forged") && k.ends_with("denied")),
        "{:?}",
        report.kills
    );
    assert!(report.invariants.is_clean(), "{}", report.invariants);
}
