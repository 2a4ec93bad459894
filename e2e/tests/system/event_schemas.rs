//! Events as a published contract: every event a run of the system puts on its streams is valid
//! against the committed JSON Schema of its type (`contracts/schemas/`), checked by an
//! independent validator (Python's `jsonschema`, installed into `.venv` when missing), and the
//! run covers every event type there is.

use crate::helpers::on_system;
use anyhow::Context as _;
use e2e::system::Options;
use e2e::{System, flows};
use harness::eventually;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tokio::io::AsyncWriteExt as _;

/// Reads every file of `contracts/schemas`, then one `{"ce_type", "payload"}` per line; prints
/// each invalid one with its errors and exits non-zero if there was any.
const VALIDATE: &str = r#"
import json, pathlib, sys
from jsonschema import Draft202012Validator
schemas = {p.stem: json.loads(p.read_text()) for p in pathlib.Path(sys.argv[1]).glob("*.json")}
bad = 0
for line in sys.stdin:
    event = json.loads(line)
    schema = schemas.get(event["ce_type"])
    if schema is None:
        print("no schema for", event["ce_type"]); bad += 1; continue
    v = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for e in v.iter_errors(event["payload"]):
        print(event["ce_type"], list(e.path), e.message); bad += 1
sys.exit(1 if bad else 0)
"#;

#[tokio::test]
async fn every_event_of_a_run_is_valid_against_its_published_schema() {
    let validator =
        harness::venv_tool("jsonschema", "jsonschema[format-nongpl]").expect("Python's jsonschema");
    let python = validator.with_file_name("python");
    let opts = Options {
        hold_ttl_secs: 2,
        ..Options::default()
    };
    on_system(opts, async |sys| {
        every_kind_of_saga(sys).await?;
        let events = all_events(sys).await?;
        let kinds: BTreeSet<&str> = events
            .iter()
            .filter_map(|e| e["ce_type"].as_str())
            .collect();
        let published: BTreeSet<String> = contracts::schemas::all()
            .into_iter()
            .map(|s| s.ce_type)
            .collect();
        let missing: Vec<_> = published
            .iter()
            .filter(|t| !kinds.contains(t.as_str()))
            .collect();
        anyhow::ensure!(missing.is_empty(), "the run made no event of {missing:?}");

        let schemas = harness::workspace_root().join("contracts/schemas");
        let mut child = tokio::process::Command::new(&python)
            .args(["-c", VALIDATE])
            .arg(&schemas)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("run the validator")?;
        let mut stdin = child.stdin.take().context("the validator's stdin")?;
        for e in &events {
            stdin.write_all(format!("{e}\n").as_bytes()).await?;
        }
        drop(stdin);
        let out = child.wait_with_output().await?;
        anyhow::ensure!(
            out.status.success(),
            "{} events checked; invalid ones:\n{}",
            events.len(),
            String::from_utf8_lossy(&out.stdout)
        );
        Ok(())
    })
    .await;
}

/// Sagas that between them make every kind of event: confirmed, failed for want of points,
/// cancelled after confirmation (refunded), and paid after the hold expired (sale refused,
/// refunded).
async fn every_kind_of_saga(sys: &mut System) -> anyhow::Result<()> {
    let seats = flows::numbered_seats("E", 4, 100);
    let s = flows::open_schedule(sys, "Every event", &seats).await?;
    let seat = |i: usize| vec![s.seat_ids[i].clone()];

    let fan = flows::holding(sys, "fan", 100, &s.schedule_id, &seat(0)).await?;
    flows::pay(sys, "fan", &fan).await?.expect(202);
    flows::wait_reservation(sys, "fan", &fan, "confirmed").await?;
    flows::cancel(sys, "fan", &fan).await?.expect(202);
    flows::wait_reservation(sys, "fan", &fan, "cancelled").await?;

    let poor = flows::holding(sys, "poor", 50, &s.schedule_id, &seat(1)).await?;
    flows::pay(sys, "poor", &poor).await?.expect(202);
    flows::wait_reservation(sys, "poor", &poor, "failed").await?;

    // payment-svc is down while the payment waits and the hold expires.
    let late = flows::holding(sys, "late", 100, &s.schedule_id, &seat(2)).await?;
    sys.payment.kill();
    sys.let_go("payment-svc").await?;
    flows::pay(sys, "late", &late).await?.expect(202);
    flows::wait_view(sys, &s.schedule_id, &seat(2), "available").await?;
    sys.payment.restart()?;
    let failed = flows::wait_reservation(sys, "late", &late, "failed").await?;
    assert_eq!(failed["reason"], "hold_expired");
    eventually("the late payment refunded", flows::STEP, async || {
        Ok((flows::balance(sys, "late").await? == 100).then_some(()))
    })
    .await?;
    sys.settle(flows::STEP).await?;
    Ok(())
}

/// Every event on the four streams: its `ce-type` and payload.
async fn all_events(sys: &System) -> anyhow::Result<Vec<Value>> {
    let js = async_nats::jetstream::new(async_nats::connect(sys.nats.url()).await?);
    let mut events = Vec::new();
    for stream in ["CONCERT", "SEAT", "RESERVATION", "PAYMENT"] {
        let stream = js.get_stream(stream).await?;
        let last = stream.cached_info().state.last_sequence;
        for seq in 1..=last {
            let Ok(msg) = stream.get_raw_message(seq).await else {
                continue;
            };
            let ce_type = msg
                .headers
                .get("ce-type")
                .map(|v| v.as_str().to_owned())
                .context("an event without ce-type")?;
            let payload: Value = serde_json::from_slice(&msg.payload)
                .with_context(|| format!("{ce_type}: not JSON"))?;
            events.push(json!({"ce_type": ce_type, "payload": payload}));
        }
    }
    Ok(events)
}
