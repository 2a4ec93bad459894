//! process: the services as real OS processes — started from their binaries with an environment
//! of their own, found by the address they print, SIGKILLed or stopped with SIGTERM, restarted on
//! the same port and database.

use anyhow::{Context as _, bail};
use harness::Api;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nats::runtime::Service as _;

/// The four services' binaries, in the order the system lists them.
pub const SERVICES: [&str; 4] = [
    concert_svc::ConcertSvc::NAME,
    seat_svc::SeatSvc::NAME,
    reservation_svc::ReservationSvc::NAME,
    payment_svc::PaymentSvc::NAME,
];

/// The gateway's binary.
pub const GATEWAY: &str = "gateway";

/// Builds the four service binaries and the gateway in the running profile (a tool's `cargo run` builds only
/// the tool itself), so the demo and the bench never run stale ones.
pub fn build_services() -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--bins"]);
    for p in SERVICES.into_iter().chain([GATEWAY]) {
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

/// libfaketime, which makes a process's clock run off by a fixed amount (Debian's `faketime`;
/// `.ci/run` installs it).
pub fn libfaketime() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib")
        .ok()?
        .flatten()
        .map(|arch| arch.path().join("faketime/libfaketime.so.1"))
        .chain([PathBuf::from("/usr/lib/faketime/libfaketime.so.1")])
        .find(|p| p.exists())
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

    /// Runs an operator task of this service's binary (e.g. `republish`) with the service's own
    /// environment; answers what it printed, or an error with its log if it failed.
    pub async fn task(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = tokio::process::Command::new(&self.bin)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("run {} {args:?}", self.bin.display()))?;
        if !out.status.success() {
            anyhow::bail!(
                "{} {args:?} failed ({}): {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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

    /// SIGSTOP: the process stays, its sockets still accept connections, nothing is answered.
    /// Returns once every thread is stopped (a signal reaches a thread running on another core
    /// a moment after `kill` returns).
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("-STOP")?;
        let pid = self.pid().context("the process is not running")?;
        let stopped = || -> bool {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                return false;
            };
            tasks.flatten().all(|t| {
                std::fs::read_to_string(t.path().join("stat"))
                    .ok()
                    .and_then(|s| {
                        s.rsplit_once(')')
                            .map(|(_, rest)| rest.trim_start().starts_with('T'))
                    })
                    .unwrap_or(false)
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !stopped() {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "{} did not stop",
                self.name
            );
            std::thread::yield_now();
        }
        Ok(())
    }

    /// SIGCONT after [`ServiceProcess::pause`].
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, which: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("the process is not running")?;
        let ok = Command::new("kill")
            .args([which, &pid.to_string()])
            .status()?
            .success();
        anyhow::ensure!(ok, "kill {which} {pid} failed");
        Ok(())
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
        self.replica_with(n, &[])
    }

    /// A replica with `extra` in its environment (e.g. a clock made to run fast).
    pub fn replica_with(&self, n: usize, extra: &[(&str, &str)]) -> anyhow::Result<ServiceProcess> {
        let mut env = self.env.clone();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
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
