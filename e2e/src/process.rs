//! process: the services as real OS processes — started from their binaries with an environment
//! of their own, found by the address they print, SIGKILLed or stopped with SIGTERM, restarted on
//! the same port and database.

use anyhow::{Context as _, bail};
use platform::auth::Auth;
use platform::harness::NatsServer;
use platform::harness::{Api, eventually};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

pub const SERVICES: [&str; 4] = ["concert-svc", "seat-svc", "reservation-svc", "payment-svc"];

/// Builds the four service binaries in the running profile (a tool's `cargo run` builds only
/// the tool itself), so the demo and the bench never run stale ones.
pub fn build_services() -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--bins"]);
    for p in SERVICES {
        cmd.args(["-p", p]);
    }
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    if !cmd.status().context("run cargo build")?.success() {
        bail!("building the services failed");
    }
    Ok(())
}

/// The built binary of `name`: `$<NAME>_BIN` if set, else beside the running executable
/// (`target/<profile>/`, also when running from `target/<profile>/deps/`).
pub fn service_binary(name: &str) -> anyhow::Result<PathBuf> {
    let var = format!("{}_BIN", name.replace('-', "_").to_uppercase());
    if let Ok(p) = std::env::var(&var) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("locate the running executable")?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(name);
    if !bin.is_file() {
        bail!(
            "{} is not built: run `cargo build --workspace` (or `cargo test --workspace`, which \
             builds it) first, or set {var}",
            bin.display()
        );
    }
    Ok(bin)
}

/// One running service process.
pub struct ServiceProcess {
    pub name: String,
    bin: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    addr: String,
}

impl ServiceProcess {
    /// Starts `name` with `env` (on top of the inherited environment) and waits for the line
    /// that tells its address. Its logs go to `log`.
    pub fn spawn(name: &str, env: Vec<(String, String)>, log: PathBuf) -> anyhow::Result<Self> {
        let mut p = ServiceProcess {
            name: name.to_owned(),
            bin: service_binary(name)?,
            env,
            log,
            child: None,
            addr: String::new(),
        };
        p.start()?;
        Ok(p)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let mut child = Command::new(&self.bin)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", self.bin.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        // Reads the address line, then keeps draining so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).map_err(|_| {
            let _ = child.kill();
            anyhow::anyhow!(
                "{} did not start within 30 s; its log ends:\n{}",
                self.name,
                self.log_tail(20)
            )
        })?;
        self.addr = addr;
        self.child = Some(child);
        Ok(())
    }

    pub fn url(&self) -> &str {
        &self.addr
    }

    /// The OS process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn api(&self) -> Api {
        Api::new(self.addr.clone())
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<_> = text.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `within` for a clean exit; returns whether it exited 0.
    pub fn terminate(&mut self, within: Duration) -> anyhow::Result<bool> {
        let Some(mut c) = self.child.take() else {
            return Ok(false);
        };
        let pid = c.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = c.try_wait()? {
                return Ok(status.success());
            }
            if std::time::Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                bail!("{} did not exit within {within:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Another process of the same service on the same database and NATS (a replica in its
    /// consumer group), on a port of its own.
    pub fn replica(&self, n: usize) -> anyhow::Result<ServiceProcess> {
        let mut env = self.env.clone();
        if let Some(kv) = env.iter_mut().find(|(k, _)| k == "HTTP_ADDR") {
            kv.1 = "127.0.0.1:0".into();
        }
        let log = self.log.with_file_name(format!("{}-{n}.log", self.name));
        ServiceProcess::spawn(&self.name, env, log)
    }

    /// Starts again with the same environment, on the same address and database.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let host = self.addr.trim_start_matches("http://").to_owned();
        if let Some(kv) = self.env.iter_mut().find(|(k, _)| k == "HTTP_ADDR") {
            kv.1 = host;
        }
        self.start()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The client URL of every NATS node.
fn node_urls(first: &NatsServer, peers: &[NatsServer]) -> Vec<String> {
    std::iter::once(first)
        .chain(peers)
        .map(NatsServer::url)
        .collect()
}

/// Knobs for a whole-system run.
#[derive(Clone, Debug)]
pub struct Options {
    pub hold_ttl_secs: u64,
    pub queue_active_limit: u64,
    pub queue_token_ttl_secs: u64,
    /// Deliveries of a failing event before the DLQ.
    pub max_deliver: u64,
    /// Processes of seat-svc, reservation-svc and payment-svc (their consumer groups).
    pub replicas: usize,
    /// Each service connects with a NATS user of its own, limited to its own subjects.
    pub secured: bool,
    /// A three-node NATS cluster (the committed `nats/conf/cluster.conf`, secured) and R3
    /// streams and durables, instead of one server.
    pub cluster: bool,
    /// Services on PostgreSQL (default: `TEST_DATABASE=postgres`) rather than SQLite files.
    pub postgres: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            hold_ttl_secs: 300,
            queue_active_limit: 100,
            queue_token_ttl_secs: 600,
            max_deliver: 10,
            replicas: 1,
            secured: false,
            cluster: false,
            postgres: platform::harness::postgres_from_env(),
        }
    }
}

/// NATS plus the four services, each with its own SQLite file under one temporary folder.
pub struct System {
    pub concert: ServiceProcess,
    pub seat: ServiceProcess,
    pub reservation: ServiceProcess,
    pub payment: ServiceProcess,
    /// Further processes of seat, reservation and payment when `replicas` > 1.
    pub replicas: Vec<ServiceProcess>,
    pub nats: NatsServer,
    /// The other nodes when the bus is a cluster.
    pub peers: Vec<NatsServer>,
    auth: Arc<Auth>,
    urls: crate::invariants::Databases,
    // Dropped after the processes above, so their databases are no longer in use.
    databases: platform::harness::Databases,
    dir: tempfile::TempDir,
}

const SECRET: &str = "e2e-secret";
/// Password of every NATS user of a secured test bus (the `admin` user's too).
pub const BUS_PASSWORD: &str = "bus-secret";

impl System {
    pub async fn start() -> anyhow::Result<System> {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> anyhow::Result<System> {
        let secured = opts.secured || opts.cluster;
        let (nats, peers) = if opts.cluster {
            let mut nodes = platform::harness::NatsCluster::start(3, BUS_PASSWORD)?.nodes;
            (nodes.remove(0), nodes)
        } else if secured {
            let config = platform::topology::authorization_block(|_| BUS_PASSWORD.into());
            (NatsServer::start_with_config(&config)?, Vec::new())
        } else {
            (NatsServer::start()?, Vec::new())
        };
        let nats_url = node_urls(&nats, &peers).join(",");
        let dir = tempfile::Builder::new()
            .prefix("ticketing-e2e-")
            .tempdir()?;
        let databases = platform::harness::Databases::new(opts.postgres, dir.path().to_path_buf());
        let urls = crate::invariants::Databases {
            concert: databases.create("concert-svc").await?,
            seat: databases.create("seat-svc").await?,
            reservation: databases.create("reservation-svc").await?,
            payment: databases.create("payment-svc").await?,
        };
        let url_of = |name: &str| match name {
            "concert-svc" => urls.concert.clone(),
            "seat-svc" => urls.seat.clone(),
            "reservation-svc" => urls.reservation.clone(),
            _ => urls.payment.clone(),
        };
        let spawn = |name: &str| -> anyhow::Result<ServiceProcess> {
            let mut env = vec![
                ("HTTP_ADDR".into(), "127.0.0.1:0".into()),
                ("NATS_URL".into(), nats_url.clone()),
                (
                    "NATS_REPLICAS".into(),
                    if opts.cluster { "3" } else { "1" }.into(),
                ),
                ("DATABASE_URL".into(), url_of(name)),
                ("JWT_SECRET".into(), SECRET.into()),
                // E2E_SERVICE_LOG: the services' log filter, e.g. `sqlx=debug` to see statements.
                (
                    "RUST_LOG".into(),
                    std::env::var("E2E_SERVICE_LOG").unwrap_or_else(|_| "info".into()),
                ),
                ("CONSUMER_MAX_DELIVER".into(), opts.max_deliver.to_string()),
            ];
            if secured {
                env.push(("NATS_USER".into(), name.to_owned()));
                env.push(("NATS_PASSWORD".into(), BUS_PASSWORD.into()));
            }
            if name == "seat-svc" {
                env.push(("SEAT_HOLD_TTL_SECS".into(), opts.hold_ttl_secs.to_string()));
                env.push((
                    "QUEUE_ACTIVE_LIMIT".into(),
                    opts.queue_active_limit.to_string(),
                ));
                env.push((
                    "QUEUE_TOKEN_TTL_SECS".into(),
                    opts.queue_token_ttl_secs.to_string(),
                ));
            }
            ServiceProcess::spawn(name, env, dir.path().join(format!("{name}.log")))
        };
        let (seat, reservation, payment) = (
            spawn("seat-svc")?,
            spawn("reservation-svc")?,
            spawn("payment-svc")?,
        );
        let mut replicas = Vec::new();
        for n in 2..=opts.replicas {
            for p in [&seat, &reservation, &payment] {
                replicas.push(p.replica(n)?);
            }
        }
        let system = System {
            concert: spawn("concert-svc")?,
            seat,
            reservation,
            payment,
            replicas,
            nats,
            peers,
            auth: Auth::new(SECRET),
            urls,
            databases,
            dir,
        };
        for p in system.services().into_iter().chain(&system.replicas) {
            system.wait_ready(p).await?;
        }
        Ok(system)
    }

    /// JetStream as `user` of a secured bus (`admin` may do anything).
    pub async fn bus_as(&self, user: &str) -> anyhow::Result<async_nats::jetstream::Context> {
        let client =
            async_nats::ConnectOptions::with_user_and_password(user.into(), BUS_PASSWORD.into())
                .connect(node_urls(&self.nats, &self.peers))
                .await
                .with_context(|| format!("connect to NATS as {user}"))?;
        Ok(async_nats::jetstream::new(client))
    }

    /// Process `i`: the four services in the order of [`SERVICES`], then the replicas.
    pub fn service_mut(&mut self, i: usize) -> &mut ServiceProcess {
        match i {
            0 => &mut self.concert,
            1 => &mut self.seat,
            2 => &mut self.reservation,
            3 => &mut self.payment,
            n => &mut self.replicas[n - 4],
        }
    }

    /// NATS node `i`: the first node, then its peers.
    pub fn nats_node_mut(&mut self, i: usize) -> &mut NatsServer {
        match i {
            0 => &mut self.nats,
            n => &mut self.peers[n - 1],
        }
    }

    pub fn services(&self) -> [&ServiceProcess; 4] {
        [&self.concert, &self.seat, &self.reservation, &self.payment]
    }

    pub async fn wait_ready(&self, p: &ServiceProcess) -> anyhow::Result<()> {
        let api = p.api();
        eventually(
            &format!("{} to be ready", p.name),
            Duration::from_secs(30),
            async || {
                let reply = api.get("/readyz", None).await?;
                anyhow::ensure!(reply.is(200), "{}", reply.body);
                Ok(Some(()))
            },
        )
        .await
        .with_context(|| format!("{} log:\n{}", p.name, p.log_tail(20)))
    }

    /// The system as a frontend sees it, to hand to tasks.
    pub fn client(&self) -> crate::Client {
        crate::Client {
            concert: self.concert.api(),
            seat: self.seat.api(),
            reservation: self.reservation.api(),
            payment: self.payment.api(),
            auth: self.auth.clone(),
        }
    }

    /// The databases of the four services, for the invariant checker.
    pub fn databases(&self) -> crate::invariants::Databases {
        self.urls.clone()
    }

    /// Whether the services run on PostgreSQL (`TEST_DATABASE=postgres`).
    pub fn on_postgres(&self) -> bool {
        self.databases.is_postgres()
    }

    /// Waits until every saga is terminal and the view has caught up, then checks the
    /// invariants; the report says what is wrong, if anything.
    pub async fn settle(&self, within: Duration) -> anyhow::Result<crate::invariants::Report> {
        let dbs = self.databases();
        let mut last = None;
        let settled = eventually(
            "every saga to finish and the invariants to hold",
            within,
            async || {
                let report = crate::invariants::check(&dbs).await?;
                let done = report.is_clean();
                last = Some(report);
                Ok(done.then_some(()))
            },
        )
        .await;
        let report = last.expect("checked at least once");
        settled.map_err(|e| anyhow::anyhow!("{e}: {report}"))?;
        Ok(report)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of every service log, for a failing test's message.
    pub fn logs_tail(&self, lines: usize) -> String {
        self.services()
            .into_iter()
            .chain(&self.replicas)
            .map(|p| format!("--- {} ---\n{}", p.name, p.log_tail(lines)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl crate::Frontend for System {
    fn concert(&self) -> Api {
        self.concert.api()
    }
    fn seat(&self) -> Api {
        self.seat.api()
    }
    fn reservation(&self) -> Api {
        self.reservation.api()
    }
    fn payment(&self) -> Api {
        self.payment.api()
    }
    fn auth(&self) -> &Auth {
        &self.auth
    }
}
