//! The availability view rebuilt from the `SEAT` stream equals the live one.

use crate::helpers::on_system;
use e2e::flows;
use e2e::system::Options;
use e2e::{Frontend, System};
use serde_json::json;

/// A busy run, then the availability view is rebuilt from the `SEAT` stream: the rebuilt view
/// equals the live one, and merging it changes nothing. (That a rebuild finds and repairs a row
/// gone wrong is concert-svc's own test.)
#[tokio::test]
async fn the_view_rebuilt_from_the_stream_equals_the_live_one_after_a_busy_run() {
    on_system(Options::default(), async |sys| rebuild(sys).await).await;
}

async fn rebuild(sys: &System) -> anyhow::Result<()> {
    let s = flows::open_schedule(sys, "Busy", &flows::numbered_seats("F", 12, 100)).await?;
    flows::busy_run(sys, &s, 30).await?;
    let before = sys.settle(flows::STEP).await?;
    assert!(before.sagas() >= 12, "{before}");

    let admin = sys.admin_token();
    let api = sys.concert.api();
    let report = api
        .post("/admin/view/rebuild", Some(&admin), &json!({}))
        .await?
        .expect(200);
    assert_eq!(report.body["differences"], json!([]), "{}", report.body);
    assert!(
        report.body["events"].as_u64().unwrap() >= before.sagas() as u64 * 2,
        "{}",
        report.body
    );
    assert_eq!(report.body["seats"], 12);

    // Merging a rebuild that equals the live view changes nothing.
    let merged = api
        .post("/admin/view/rebuild?apply=true", Some(&admin), &json!({}))
        .await?
        .expect(200);
    assert_eq!(merged.body["applied"], true);
    assert_eq!(merged.body["differences"], json!([]), "{}", merged.body);
    let again = api
        .post("/admin/view/rebuild", Some(&admin), &json!({}))
        .await?
        .expect(200);
    assert_eq!(again.body["differences"], json!([]));
    sys.settle(flows::STEP).await?;
    api.post(
        "/admin/view/rebuild",
        Some(&sys.user_token("eve")),
        &json!({}),
    )
    .await?
    .expect(403);
    Ok(())
}
