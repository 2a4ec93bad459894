//! saga: one reservation's saga as it happened on the bus, step by step (`show`), and the
//! sagas that are not finished long after they should be (`stuck`, asked of reservation-svc).

use anyhow::{Context as _, bail};
use clap::Subcommand;
use nats::messaging::timeline::{self, Step};
use nats::messaging::users::OperatorArgs;
use std::time::Duration;

#[derive(Subcommand)]
pub enum Command {
    /// Every event of the saga in order: type, source, time, the time since the step before,
    /// cause, trace, and where each consumer stands on it.
    Show {
        /// The reservation id (the saga's correlation id).
        reservation: uuid::Uuid,
        /// The timeline as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The sagas not terminal past reservation-svc's threshold, each with the step it waits for.
    Stuck {
        /// reservation-svc's base URL.
        #[arg(long, env = "RESERVATION_URL", default_value = "http://127.0.0.1:8083")]
        reservation_url: String,
        /// An admin token; without one, one is made with JWT_SECRET.
        #[arg(long, env = "TICKETCTL_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
        secret: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn print(reservation: uuid::Uuid, steps: &[Step]) {
    println!("saga {reservation}: {} events", steps.len());
    for s in steps {
        let after = s
            .after_ms
            .map_or("start".to_owned(), |ms| format!("+{ms} ms"));
        let trace = s
            .traceparent
            .as_deref()
            .and_then(contracts::trace::TraceParent::parse)
            .map(|t| t.trace_id().to_owned())
            .unwrap_or_else(|| "-".into());
        let time = s
            .time
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        println!(
            "{after:>10}  {time}  {:<28} {:<16} {}#{}",
            s.ce_type, s.source, s.stream, s.seq
        );
        println!(
            "            cause {}  trace {trace}",
            s.causation_id.as_deref().unwrap_or("-")
        );
        let consumers: Vec<String> = s
            .consumers
            .iter()
            .map(|c| format!("{} {}", c.consumer, c.state.as_str()))
            .collect();
        println!("            {}", consumers.join(", "));
    }
}

pub async fn run(bus: &OperatorArgs, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Show { reservation, json } => {
            let js = bus.connect("ticketctl").await?;
            let steps = timeline::saga(&js, reservation).await?;
            if steps.is_empty() {
                bail!("no event of saga {reservation} on the bus");
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&steps)?);
            } else {
                print(reservation, &steps);
            }
        }
        Command::Stuck {
            reservation_url,
            token,
            secret,
            json,
        } => {
            let token = match (token, secret) {
                (Some(t), _) => t,
                (None, Some(secret)) => nats::web::Auth::new(&secret).issue(
                    "ticketctl",
                    Some(nats::web::auth::ADMIN_ROLE),
                    Duration::from_secs(60),
                ),
                (None, None) => bail!("pass an admin --token, or JWT_SECRET to make one"),
            };
            let url = format!(
                "{}/admin/sagas/stuck",
                reservation_url.trim_end_matches('/')
            );
            let resp = reqwest::Client::new()
                .get(&url)
                .bearer_auth(token)
                .send()
                .await
                .with_context(|| format!("ask {url}"))?;
            let status = resp.status();
            let body: serde_json::Value = resp.json().await.context("read the answer")?;
            if !status.is_success() {
                bail!("{url}: {status} {}", body["detail"]);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(());
            }
            let stuck = body.as_array().cloned().unwrap_or_default();
            println!("{} stuck sagas", stuck.len());
            for s in stuck {
                println!(
                    "{}  {:<18} since {}  waiting for {}",
                    s["id"].as_str().unwrap_or_default(),
                    s["status"].as_str().unwrap_or_default(),
                    s["since"].as_str().unwrap_or_default(),
                    s["waiting_for"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
