//! Installing the real agent CLIs for end-to-end tests: pinned versions
//! from the npm registry into `target/agent-clis/<name>-<version>/`, once,
//! under a file lock. Shared by batch-core's and batch-cli's tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the CLIs are installed.
fn cache_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("agent-clis")
}

fn version_ok(bin: &Path) -> bool {
    Command::new(bin)
        .arg("--version")
        .env("HOME", std::env::temp_dir())
        .stdin(Stdio::null())
        .output()
        .map(|o| o.status.success() && !o.stdout.is_empty())
        .unwrap_or(false)
}

/// Installs `package@version` (once, under a file lock) and returns its binary,
/// or why it could not.
pub fn install(package: &str, version: &str, bin: &str) -> Result<PathBuf, String> {
    let name = package.rsplit('/').next().unwrap_or(package);
    let dir = cache_dir().join(format!("{name}-{version}"));
    let bin_path = dir.join("node_modules/.bin").join(bin);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let lock = std::fs::File::create(dir.join(".install.lock")).map_err(|e| e.to_string())?;
    // Held until `lock` is dropped (several test processes may install at once).
    flock(&lock)?;
    if version_ok(&bin_path) {
        return Ok(bin_path);
    }
    if Command::new("npm").arg("--version").output().is_err() {
        return Err("npm is not installed".into());
    }
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg(format!("{package}@{version}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("npm install failed to start: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        return Err(format!(
            "npm install {package}@{version} failed (registry unavailable?): {}",
            tail.join(" / ")
        ));
    }
    // Claude Code's launcher needs its postinstall (skipped by some npm setups).
    let postinstall = dir.join("node_modules").join(package).join("install.cjs");
    if !version_ok(&bin_path) && postinstall.is_file() {
        let _ = Command::new("node")
            .arg(&postinstall)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output();
    }
    if version_ok(&bin_path) {
        Ok(bin_path)
    } else {
        Err(format!(
            "{} --version does not work after installing",
            bin_path.display()
        ))
    }
}

/// Installs a CLI or returns from the test with a printed reason
/// (the caller imports [`install`]).
macro_rules! require_cli {
    ($package:expr, $version:expr, $bin:expr) => {
        match install($package, $version, $bin) {
            Ok(p) => p,
            Err(why) => {
                // CI sets MDBATCH_REQUIRE_REAL_CLIS=1: there a missing CLI is a
                // failure, not a skip, so the end-to-end tests cannot go quiet.
                if std::env::var_os("MDBATCH_REQUIRE_REAL_CLIS").is_some_and(|v| v == "1") {
                    panic!("cannot run the real {} {}: {why}", $bin, $version);
                }
                eprintln!("SKIPPED: cannot run the real {} {}: {why}", $bin, $version);
                return;
            }
        }
    };
}

/// An exclusive `flock(2)` on `file`, waiting for it.
fn flock(file: &std::fs::File) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on an open descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}
