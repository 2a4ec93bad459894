//! options: the knobs of a whole-system run (timeouts, replicas, the bus, the backend, faults).

/// Knobs for a whole-system run.
#[derive(Clone, Debug)]
pub struct Options {
    pub hold_ttl_secs: u64,
    pub queue_active_limit: u64,
    pub queue_token_ttl_secs: u64,
    /// Deliveries of a failing event before the DLQ.
    pub max_deliver: u64,
    /// When reservation-svc counts a saga not ended as stuck.
    pub saga_stuck_after_secs: u64,
    /// Services log JSON lines, with a line for every handled event (`LOG_FORMAT=json`).
    pub log_json: bool,
    /// Where services export their spans (`OTEL_EXPORTER_OTLP_ENDPOINT`), if anywhere.
    pub otlp_endpoint: Option<String>,
    /// Processes of seat-svc, reservation-svc and payment-svc (their consumer groups).
    pub replicas: usize,
    /// Each service connects with a NATS user of its own, limited to its own subjects.
    pub secured: bool,
    /// A three-node NATS cluster (the committed `nats/conf/cluster.conf`, secured) and R3
    /// streams and durables, instead of one server.
    pub cluster: bool,
    /// Services on PostgreSQL (default: `TEST_DATABASE=postgres`) rather than SQLite files.
    pub postgres: bool,
    /// The PostgreSQL server (`postgres://user@host[:port]`), if not `TEST_POSTGRES_URL`'s.
    pub postgres_server: Option<String>,
    /// Each service's database can be made unavailable ([`System::breaker`]).
    pub outages: bool,
    /// nats-server fsyncs every acknowledged publish (`sync_interval: always`, as the shipped
    /// single-node config) instead of every 2 minutes (its default).
    pub sync_always: bool,
    /// PostgreSQL connections each service process holds at most: the tests run two systems
    /// at once, some with seven processes, on one server of 100 connections.
    pub db_connections: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            hold_ttl_secs: 300,
            queue_active_limit: 100,
            queue_token_ttl_secs: 600,
            max_deliver: 10,
            saga_stuck_after_secs: 360,
            log_json: false,
            otlp_endpoint: None,
            replicas: 1,
            secured: false,
            cluster: false,
            postgres: harness::postgres_from_env(),
            postgres_server: None,
            outages: false,
            sync_always: false,
            db_connections: 6,
        }
    }
}
