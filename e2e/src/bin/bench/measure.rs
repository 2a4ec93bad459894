//! measure: what the bench reads besides the sale — CPU and memory of each process, the view
//! rebuild's speed as concert-svc reports it, readiness after a restart — and percentiles.

use anyhow::{Context as _, bail};
use e2e::invariants::Databases;
use e2e::{Frontend, System};
use serde_json::json;
use std::time::{Duration, Instant};

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

/// CPU time (user + system) each process has used so far, read from `/proc/<pid>/stat`.
#[derive(Clone, Debug, Default)]
pub struct Cpu {
    /// The services' processes (replicas included) and nats-server, by name.
    pub system: Vec<(String, Duration)>,
    /// This process: the load generator.
    pub generator: Duration,
    /// On PostgreSQL, the server processes serving the services' databases, by pid.
    pub postgres: Vec<(u32, Duration)>,
}

impl Cpu {
    pub fn now(sys: &System) -> Cpu {
        let postgres = match sys.on_postgres() {
            true => postgres_backends(&sys.databases()),
            false => Vec::new(),
        };
        let mut system: Vec<(String, Duration)> = sys
            .services()
            .into_iter()
            .chain(&sys.replicas)
            .map(|p| (p.name.clone(), p.pid().map(cpu_of).unwrap_or_default()))
            .collect();
        system.push((
            "nats-server".into(),
            sys.nats.pid().map(cpu_of).unwrap_or_default(),
        ));
        Cpu {
            system,
            generator: cpu_of(std::process::id()),
            postgres,
        }
    }

    /// What PostgreSQL's server processes used between `before` and `self`: a process that
    /// was not there before counts whole (a connection opened meanwhile); one that has ended
    /// since is not counted.
    pub fn postgres_since(&self, before: &Cpu) -> Duration {
        self.postgres
            .iter()
            .map(|(pid, now)| {
                let then = before.postgres.iter().find(|(p, _)| p == pid);
                now.saturating_sub(then.map(|(_, d)| *d).unwrap_or_default())
            })
            .sum()
    }

    /// What was used between `before` and `self`: per process, and the system's total.
    pub fn since(&self, before: &Cpu) -> (Vec<(String, Duration)>, Duration, Duration) {
        let used: Vec<(String, Duration)> = self
            .system
            .iter()
            .zip(&before.system)
            .map(|((name, now), (_, then))| (name.clone(), now.saturating_sub(*then)))
            .collect();
        let total = used.iter().map(|(_, d)| *d).sum();
        (used, total, self.generator.saturating_sub(before.generator))
    }
}

/// The PostgreSQL server processes serving `dbs`, with their CPU so far: each backend's title
/// (its command line) names its database.
fn postgres_backends(dbs: &Databases) -> Vec<(u32, Duration)> {
    let names: Vec<&str> = [&dbs.concert, &dbs.seat, &dbs.reservation, &dbs.payment]
        .iter()
        .filter_map(|url| url.rsplit('/').next())
        .collect();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                let title = String::from_utf8_lossy(&cmdline);
                title.starts_with("postgres: ")
                    && title.split_whitespace().any(|word| names.contains(&word))
            })
        })
        .map(|pid| (pid, cpu_of(pid)))
        .collect()
}

/// utime + stime of process `pid` (fields 14 and 15 of its stat line, in clock ticks).
fn cpu_of(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // The command name, in parentheses, may hold spaces: count fields after it (state is 3rd).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / clock_ticks_per_sec())
}

/// `getconf CLK_TCK` (100 on Linux nearly everywhere).
fn clock_ticks_per_sec() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
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
