//! The published HTTP contracts: `docs/openapi/<service>.json` is what the code generates and
//! what each running service serves at `/openapi.json`. Regenerate the committed copies with
//! `BLESS=1 cargo test -p e2e --test system contracts`.

use crate::helpers::on_system;
use e2e::Frontend;
use e2e::system::Options;
use nats::runtime::{Service, api_document};
use serde_json::Value;
use std::path::PathBuf;

/// Each service's name and generated document.
fn documents() -> Vec<(&'static str, String)> {
    let pretty = |doc: utoipa::openapi::OpenApi| doc.to_pretty_json().expect("a document") + "\n";
    vec![
        (
            concert_svc::ConcertSvc::NAME,
            pretty(api_document::<concert_svc::ConcertSvc>()),
        ),
        (
            seat_svc::SeatSvc::NAME,
            pretty(api_document::<seat_svc::SeatSvc>()),
        ),
        (
            reservation_svc::ReservationSvc::NAME,
            pretty(api_document::<reservation_svc::ReservationSvc>()),
        ),
        (
            payment_svc::PaymentSvc::NAME,
            pretty(api_document::<payment_svc::PaymentSvc>()),
        ),
    ]
}

fn committed(name: &str) -> PathBuf {
    harness::workspace_root().join(format!("docs/openapi/{name}.json"))
}

#[test]
fn the_committed_openapi_documents_are_what_the_code_generates() {
    for (name, generated) in documents() {
        let path = committed(name);
        if std::env::var_os("BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "{} differs from what {name}'s code generates: run \
             `BLESS=1 cargo test -p e2e --test system contracts` and commit the result",
            path.display()
        );
    }
}

/// Every `$ref` names a schema the document has; every route answers its errors as problems.
#[test]
fn every_reference_resolves_and_every_operation_documents_its_problems() {
    for (name, generated) in documents() {
        let doc: Value = serde_json::from_str(&generated).unwrap();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        for r in refs {
            let pointer = r.trim_start_matches('#');
            assert!(doc.pointer(pointer).is_some(), "{name}: dangling {r}");
        }
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{name} {method} {path}"
                );
                let problem = &responses["503"]["content"]["application/problem+json"];
                assert!(
                    problem.is_object(),
                    "{name} {method} {path}: 503 as a problem"
                );
                assert!(responses["503"]["headers"]["Retry-After"].is_object());
            }
        }
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// What the services serve is what is committed.
#[tokio::test]
async fn each_service_serves_its_document() {
    on_system(Options::default(), async |sys| {
        let apis = [sys.concert(), sys.seat(), sys.reservation(), sys.payment()];
        for ((name, generated), api) in documents().into_iter().zip(apis) {
            let served = api.get("/openapi.json", None).await?.expect(200);
            let expected: Value = serde_json::from_str(&generated)?;
            assert!(
                served.body == expected,
                "{name} serves another document than it generates"
            );
        }
        Ok(())
    })
    .await;
}
