//! The HTTP contracts exercised from outside: schemathesis (PyPI, installed into `.venv` when
//! missing) generates requests for every documented operation of each running service, valid
//! and not, with an admin's bearer token, and checks each answer: never a server error, a
//! documented status, content type and body schema.

use crate::helpers::on_system;
use anyhow::Context as _;
use e2e::system::Options;
use e2e::{Frontend, flows};

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance";

#[tokio::test]
async fn every_documented_operation_keeps_its_contract() {
    let schemathesis = harness::venv_tool("schemathesis", "schemathesis").expect("schemathesis");
    on_system(Options::default(), async |sys| {
        // Something to list and to find.
        let s = flows::open_schedule(sys, "Contract", &[("C1", 100), ("C2", 100)]).await?;
        flows::charge(sys, "admin", 500).await?;
        flows::join_queue(sys, "admin", &s.schedule_id).await?;
        let bearer = format!("Authorization: Bearer {}", sys.admin_token());
        let apis = [
            ("concert-svc", sys.concert()),
            ("seat-svc", sys.seat()),
            ("reservation-svc", sys.reservation()),
            ("payment-svc", sys.payment()),
        ];
        for (name, api) in apis {
            let schema = format!("{}/openapi.json", api.base());
            let out = tokio::process::Command::new(&schemathesis)
                .args(["run", &schema, "-H", &bearer, "--checks", CHECKS])
                .args(["--max-examples", "25", "--seed", "7", "--workers", "1"])
                .env("NO_COLOR", "1")
                .output()
                .await
                .context("run schemathesis")?;
            let report = String::from_utf8_lossy(&out.stdout);
            anyhow::ensure!(
                out.status.success(),
                "{name}: schemathesis found failures:\n{report}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            // It ran something: a report of generated cases, all passed.
            let cases = report
                .lines()
                .find(|l| l.contains(" generated, "))
                .with_context(|| format!("{name}: no test cases in the report:\n{report}"))?;
            let generated: u64 = cases.split_whitespace().next().unwrap_or("0").parse()?;
            anyhow::ensure!(generated > 50, "{name}: only {cases}");
            anyhow::ensure!(!cases.contains("failed"), "{name}: {cases}\n{report}");
        }
        Ok(())
    })
    .await;
}
