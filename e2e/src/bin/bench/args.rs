//! args: what a bench run measures (`--help` lists it).

use clap::{Parser, ValueEnum};

#[derive(Parser)]
#[command(about = "Flash-sale benchmark: the raw broker beside the whole saga, one run")]
pub struct Args {
    /// Sagas in the sale (one user holding one seat each).
    #[arg(long, default_value_t = 6000)]
    pub sagas: usize,
    /// Users in flight at once (closed loop; ignored with --rate).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Offered holds per second (open loop: users arrive on this schedule whatever the latency).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Users of one schedule admitted from its waiting queue at once (QUEUE_ACTIVE_LIMIT); the
    /// others wait in line and watch their position. Default: everyone at once.
    #[arg(long)]
    pub active_per_schedule: Option<u64>,
    /// Decides which users are short of points and which cancel.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    pub db: Backend,
    /// The PostgreSQL server for `--db postgres` (`postgres://user@host[:port]`; a Unix
    /// socket's folder as the host, percent-encoded). Default: `TEST_POSTGRES_URL`, else the
    /// local server's Unix socket if it has one (as a service on the database's host would
    /// connect), else 127.0.0.1:5432 over TCP.
    #[arg(long)]
    pub postgres_url: Option<String>,
    /// Processes each of seat-svc, reservation-svc and payment-svc.
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// Also measure rebuilding the availability view from the SEAT stream.
    #[arg(long)]
    pub rebuild: bool,
    /// nats-server fsyncs every acknowledged publish (the shipped single-node config), for the
    /// broker baseline and the sale alike.
    #[arg(long)]
    pub sync_always: bool,
    /// Messages for the broker baseline.
    #[arg(long, default_value_t = 200_000)]
    pub broker_messages: usize,
}

impl Args {
    /// The PostgreSQL server the sale runs on (see [`Args::postgres_url`]).
    pub fn postgres_server(&self) -> String {
        self.postgres_url
            .clone()
            .or_else(|| std::env::var("TEST_POSTGRES_URL").ok())
            .or_else(harness::local_socket_server)
            .unwrap_or_else(harness::postgres_server)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}
