//! The published contracts: `docs/openapi/<service>.json` is what the code generates and what
//! each running service serves at `/openapi.json`; `contracts/asyncapi.yaml` is what the event
//! types and the services' subscriptions give, and the subscriptions are the durables the
//! services create. Regenerate the committed copies with
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

/// Writes `generated` to `path` under `BLESS`, else requires the committed file to equal it.
fn committed_as(path: &std::path::Path, generated: &str) {
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, generated).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "{} differs from what the code generates: run \
         `BLESS=1 cargo test -p e2e --test system contracts` and commit the result",
        path.display()
    );
}

fn asyncapi() -> serde_json::Value {
    e2e::asyncapi::document(&contracts::schemas::all(), &e2e::asyncapi::consumers())
}

#[test]
fn the_committed_asyncapi_document_is_what_the_code_generates() {
    let yaml = e2e::asyncapi::to_yaml(&asyncapi());
    committed_as(
        &harness::workspace_root().join("contracts/asyncapi.yaml"),
        &yaml,
    );
    // Every event type has a channel, a message and its sender; every message's payload is a
    // committed schema file.
    let doc = asyncapi();
    for e in contracts::schemas::all() {
        let message = e.ce_type.replace('.', "_");
        let payload = &doc["components"]["messages"][&message]["payload"]["$ref"];
        let file = payload.as_str().unwrap().trim_start_matches("./");
        assert!(
            harness::workspace_root()
                .join("contracts")
                .join(file)
                .is_file(),
            "{file}"
        );
        let sends = format!(
            "{}-sends-{}_{}",
            e.context.service(),
            e.context.prefix(),
            e.name
        );
        assert_eq!(doc["operations"][&sends]["action"], "send", "{sends}");
    }
    assert_eq!(
        doc["operations"]["seat-svc-receives-payment_completed"]["action"],
        "receive"
    );
}

/// The YAML is the document: an independent YAML parser (PyYAML, installed with schemathesis)
/// reads back exactly the JSON value it was written from.
#[test]
fn the_asyncapi_yaml_reads_back_as_the_document() {
    let schemathesis = harness::venv_tool("schemathesis", "schemathesis").expect("schemathesis");
    let python = schemathesis.with_file_name("python");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("asyncapi.yaml");
    std::fs::write(&path, e2e::asyncapi::to_yaml(&asyncapi())).unwrap();
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        read == asyncapi(),
        "the YAML does not read back as the document"
    );
}

fn committed(name: &str) -> PathBuf {
    harness::workspace_root().join(format!("docs/openapi/{name}.json"))
}

#[test]
fn the_committed_openapi_documents_are_what_the_code_generates() {
    for (name, generated) in documents() {
        committed_as(&committed(name), &generated);
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

/// A problem `type` names one kind: the same slug never comes with two statuses or titles, in
/// any service.
#[test]
fn each_problem_type_means_one_thing_everywhere() {
    use nats::web::openapi::problem_types;
    let all = [
        problem_types(&concert_svc::ConcertSvc::problems()),
        problem_types(&seat_svc::SeatSvc::problems()),
        problem_types(&reservation_svc::ReservationSvc::problems()),
        problem_types(&payment_svc::PaymentSvc::problems()),
    ];
    let mut seen = std::collections::HashMap::new();
    for kind in all.iter().flatten() {
        let first = seen.entry(kind.slug).or_insert(*kind);
        assert_eq!(first, kind, "{} means two things", kind.slug);
    }
    for (name, generated) in documents() {
        let doc: Value = serde_json::from_str(&generated).unwrap();
        let types = &doc["components"]["schemas"]["Problem"]["properties"]["type"]["enum"];
        assert!(
            types.as_array().is_some_and(|t| t.len() > 20),
            "{name}: {types}"
        );
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

/// What the services serve is what is committed, and the durables they create are what they
/// declare they consume (the AsyncAPI document's receivers).
#[tokio::test]
async fn each_service_serves_its_document_and_consumes_what_it_declares() {
    on_system(Options::default(), async |sys| {
        let js = async_nats::jetstream::new(async_nats::connect(sys.nats.url()).await?);
        for (service, consumes) in e2e::asyncapi::consumers() {
            for c in consumes {
                let stream = c.context.stream();
                let mut durable: async_nats::jetstream::consumer::PullConsumer =
                    harness::eventually(
                        &format!("{service}'s durable on {stream}"),
                        e2e::flows::STEP,
                        async || Ok(js.get_consumer_from_stream(service, stream).await.ok()),
                    )
                    .await?;
                let info = durable.info().await?;
                let mut live = info.config.filter_subjects.clone();
                if !info.config.filter_subject.is_empty() {
                    live.push(info.config.filter_subject.clone());
                }
                // Besides its events, every durable takes the dead letters replayed to it.
                let replays = format!("{}.replay.{service}.>", c.context.prefix());
                live.retain(|f| *f != replays);
                let mut declared: Vec<String> =
                    c.events.iter().map(|e| c.context.filter(e)).collect();
                live.sort();
                declared.sort();
                assert_eq!(live, declared, "{service} on {stream}");
            }
        }
        // A problem's type is a link that says what it names; one never issued is unknown.
        let kind = sys
            .seat()
            .get("/problems/seat-unavailable", None)
            .await?
            .expect(200);
        assert_eq!(kind.body["status"], 409, "{}", kind.body);
        assert_eq!(kind.body["type"], "/problems/seat-unavailable");
        let platform = sys
            .payment()
            .get("/problems/overloaded", None)
            .await?
            .expect(200);
        assert_eq!(platform.body["status"], 503);
        sys.concert()
            .get("/problems/no-such-kind", None)
            .await?
            .expect_problem(404, "not-found");
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
