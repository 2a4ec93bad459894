//! browser: a real headless Chromium for the web page's tests — Debian's `chromium` and
//! `chromium-driver` (installed with apt-get when missing, as `.ci/run` does up front), and a
//! chromedriver process on a port of its own that WebDriver clients connect to.

use anyhow::{Context as _, bail};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's Chromium: the browser the capabilities name.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver and Chromium, installed from Debian's packages if either is missing (as root,
/// or through sudo), under a lock so parallel test processes install once.
fn installed() -> anyhow::Result<PathBuf> {
    let ready =
        || std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists();
    if ready() {
        return Ok(CHROMEDRIVER.into());
    }
    let lock = std::fs::File::create(std::env::temp_dir().join("ticketing-chromium.lock"))?;
    lock.lock().context("lock the Chromium install")?;
    if ready() {
        return Ok(CHROMEDRIVER.into());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let apt = |args: &[&str]| -> bool {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-n", "apt-get"]);
            c
        };
        cmd.args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let install = ["install", "-y", "-qq", "chromium", "chromium-driver"];
    let done = apt(&install) || (apt(&["update", "-qq"]) && apt(&install));
    if !done {
        bail!(
            "the browser tests need Debian's chromium and chromium-driver, and installing them \
             failed: run `apt-get install chromium chromium-driver` (as .ci/run does)"
        );
    }
    Ok(CHROMEDRIVER.into())
}

/// A running chromedriver; stopped when dropped.
pub struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    /// Starts chromedriver on a free port and waits for the line naming it.
    pub fn start() -> anyhow::Result<Chromedriver> {
        let bin = installed()?;
        let mut child = Command::new(&bin)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let stdout = child.stdout.take().context("chromedriver's stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the port line, then keeps draining so chromedriver never blocks on the pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let _ = tx.send(rest.trim_end_matches('.').trim().to_owned());
                }
            }
        });
        let port = rx.recv_timeout(Duration::from_secs(30)).map_err(|_| {
            let _ = child.kill();
            anyhow::anyhow!("chromedriver did not say its port within 30 s")
        })?;
        Ok(Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Where WebDriver clients connect.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
