//! demo: starts the whole system locally (a current nats-server, the four services on SQLite and
//! the gateway in front of them) and walks one reservation through the saga by the gateway,
//! printing each step with the service that took it and how long it took. `--serve` keeps the
//! system running afterwards, with the web page on the gateway.

use anyhow::bail;
use clap::Parser;
use e2e::flows;
use e2e::{Frontend, Gateway, System};
use harness::{eventually, nats_server_binary, server_version};
use std::time::Instant;

#[derive(Parser)]
#[command(about = "Run the ticketing system locally and show a reservation going through")]
struct Args {
    /// Keep the system running after the demo (until Ctrl-C), for a frontend to talk to.
    #[arg(long)]
    serve: bool,
}

struct Steps {
    start: Instant,
    last: Instant,
}

impl Steps {
    fn print(&mut self, service: &str, what: impl std::fmt::Display) {
        let now = Instant::now();
        println!(
            "[{:>6.1} ms | +{:>5.1} ms] {service:<16} {what}",
            (now - self.start).as_secs_f64() * 1e3,
            (now - self.last).as_secs_f64() * 1e3
        );
        self.last = now;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "Building the services and finding a nats-server ≥ 2.11 (installed into .venv if needed)…"
    );
    e2e::process::build_services()?;
    let bin = nats_server_binary()?;
    let (major, minor, patch) = server_version(&bin)?;

    let sys = System::start().await?;
    println!("\nThe system is up:");
    println!(
        "  nats-server {major}.{minor}.{patch:<8} {}",
        sys.nats.url()
    );
    for p in sys.services() {
        println!("  {:<20} {}", p.name, p.url());
    }
    // The gateway on its default port when that is free, else on any.
    let default = "127.0.0.1:8080";
    let addr = if std::net::TcpListener::bind(default).is_ok() {
        default
    } else {
        "127.0.0.1:0"
    };
    let gw = Gateway::start(&sys, &[("HTTP_ADDR", addr)]).await?;
    println!("  {:<20} {}", "gateway", gw.url());
    println!("\nOne reservation, step by step:");
    let mut steps = Steps {
        start: Instant::now(),
        last: Instant::now(),
    };
    let result = walk(&gw.client(), &mut steps).await;
    if let Err(e) = result {
        eprintln!(
            "\nThe demo failed: {e:#}\n\nService logs:\n{}",
            sys.logs_tail(20)
        );
        std::process::exit(1);
    }
    if args.serve {
        // A second concert with a larger hall, for the page.
        flows::open_schedule(
            &gw.client(),
            "Evening Lights",
            &flows::numbered_seats("B", 24, 120),
        )
        .await?;
        println!("\nServing until Ctrl-C.");
        println!(
            "  The web page: {}/  (sign in with any user name; \"demo-user\" has 800 points left)",
            gw.url()
        );
        println!("  The API: {0}/api (reference at {0}/api/docs)", gw.url());
        println!("Tokens for calling the API directly (valid 1 hour):");
        println!("  admin: {}", sys.admin_token());
        println!("  user:  {}", sys.user_token("demo-user"));
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}

async fn walk(sys: &impl Frontend, steps: &mut Steps) -> anyhow::Result<()> {
    let user = "demo-user";
    let s = flows::open_schedule(
        sys,
        "The Demo Tour",
        &[("A1", 100), ("A2", 100), ("A3", 150), ("A4", 150)],
    )
    .await?;
    steps.print(
        "concert-svc",
        format!("concert + schedule {} opened with 4 seats", s.schedule_id),
    );
    flows::wait_view(sys, &s.schedule_id, &s.seat_ids, "available").await?;
    steps.print("concert-svc", "availability view shows 4 seats available");

    let balance = flows::charge(sys, user, 1000).await?;
    steps.print(
        "payment-svc",
        format!("charged 1000 points, balance {balance}"),
    );
    let token = flows::join_queue(sys, user, &s.schedule_id).await?;
    steps.print(
        "seat-svc",
        format!(
            "inventory built from concert.schedule_opened; queue token {}",
            token["status"]
        ),
    );
    let queue_token = token["token"].as_str().unwrap_or_default().to_owned();
    let seats = s.seat_ids[..2].to_vec();
    let held = flows::hold(sys, user, &s.schedule_id, &queue_token, &seats).await?;
    if !held.is(201) {
        bail!("hold: {} {}", held.status, held.body);
    }
    let reservation = held.str("reservation_id");
    steps.print(
        "seat-svc",
        format!(
            "held A1, A2 -> reservation {reservation} ({} points)",
            held.body["amount"]
        ),
    );
    flows::wait_reservation(sys, user, &reservation, "awaiting_payment").await?;
    steps.print(
        "reservation-svc",
        "seat.held -> reservation awaiting_payment",
    );
    flows::wait_view(sys, &s.schedule_id, &seats, "held").await?;
    steps.print("concert-svc", "seat.held -> view shows A1, A2 held");

    let paid = flows::pay(sys, user, &reservation).await?;
    steps.print(
        "reservation-svc",
        format!("pay -> {} {}", paid.status.as_u16(), paid.body["status"]),
    );
    eventually("the debit", flows::STEP, async || {
        Ok((flows::balance(sys, user).await? == 800).then_some(()))
    })
    .await?;
    steps.print(
        "payment-svc",
        "reservation.payment_requested -> debited 200, balance 800, payment.completed",
    );
    let confirmed = flows::wait_reservation(sys, user, &reservation, "confirmed").await?;
    steps.print(
        "reservation-svc",
        "seat.sold -> reservation confirmed, reservation.confirmed",
    );
    flows::wait_view(sys, &s.schedule_id, &seats, "sold").await?;
    steps.print("concert-svc", "seat.sold -> view shows A1, A2 sold");

    println!(
        "\nConfirmed reservation:\n{}",
        serde_json::to_string_pretty(&confirmed)?
    );
    Ok(())
}
