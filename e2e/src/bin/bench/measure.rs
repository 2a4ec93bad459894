//! measure: what the bench reads besides the sale — memory of each service process, the view
//! rebuild's speed as concert-svc reports it, readiness after a restart — and percentiles.

use anyhow::{Context as _, bail};
use e2e::{Frontend, System};
use serde_json::json;
use std::time::Instant;

/// `(service, kB)` of a /proc/<pid>/status field of each main service process.
pub fn rss_of(sys: &System, field: &str) -> Vec<(String, u64)> {
    sys.services()
        .iter()
        .map(|p| {
            let kb = p
                .pid()
                .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
                .and_then(|status| {
                    status
                        .lines()
                        .find(|l| l.starts_with(field))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                })
                .unwrap_or(0);
            (p.name.clone(), kb)
        })
        .collect()
}

/// The view rebuild as concert-svc reports it: events, then events/s for the whole rebuild and
/// for the replay alone.
pub async fn rebuild(sys: &System) -> anyhow::Result<(u64, f64, f64)> {
    let r = sys
        .concert
        .api()
        .post("/admin/view/rebuild", Some(&sys.admin_token()), &json!({}))
        .await?;
    if !r.is(200) {
        bail!("rebuild: {} {}", r.status, r.body);
    }
    let field = |name: &str| {
        r.body[name]
            .as_u64()
            .with_context(|| format!("{name} in the answer {}", r.body))
    };
    Ok((
        field("events")?,
        field("events_per_sec")? as f64,
        field("replay_events_per_sec")? as f64,
    ))
}

/// Each service killed and started again on its database: ms from spawn to `/readyz` 200.
pub async fn ready_after_restart(sys: &mut System) -> anyhow::Result<Vec<(String, f64)>> {
    let mut out = Vec::new();
    for i in 0..4 {
        let started = Instant::now();
        sys.service_mut(i).restart()?;
        let p = sys.services()[i];
        sys.wait_ready(p).await?;
        out.push((p.name.clone(), started.elapsed().as_secs_f64() * 1e3));
    }
    Ok(out)
}

pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
}

impl Percentiles {
    pub fn of(mut values: Vec<f64>) -> Percentiles {
        values.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if values.is_empty() {
                return 0.0;
            }
            values[((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1]
        };
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}
