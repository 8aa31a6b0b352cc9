//! `mdbatch doctor` over stand-in CLIs (batch-core/tests/standins): found,
//! version against the oldest tested, missing.

use std::path::Path;
use std::process::Command;

fn doctor(names: &[&str], version: &str) -> Option<(i32, String)> {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: python3 is not installed; the stand-in CLIs need it");
        return None;
    }
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../batch-core/tests/standins/agent_standin.py");
    let bin = tempfile::tempdir().unwrap();
    for n in names {
        std::os::unix::fs::symlink(&script, bin.path().join(n)).unwrap();
    }
    let python_dir = python_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_mdbatch"))
        .arg("doctor")
        .env("PATH", format!("{}:{python_dir}", bin.path().display()))
        .env("STANDIN_VERSION", version)
        .output()
        .unwrap();
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// The folder of the real python3 interpreter (not a pyenv shim), so the
/// stand-ins run and no other agent CLI is found.
fn python_dir() -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, sys; print(os.path.dirname(os.path.realpath(sys.executable)))",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn doctor_reports_tested_versions_and_missing_clis_with_their_install_command() {
    let Some((code, out)) = doctor(&["claude", "codex"], "99.0.0") else {
        return;
    };
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("claude  99.0.0  ok (tested from 2.1.330)"),
        "{out}"
    );
    assert!(
        out.contains("codex   99.0.0  ok (tested from 0.169.0)"),
        "{out}"
    );
    assert!(
        out.contains("gemini  not found on PATH; install: npm install -g @google/gemini-cli"),
        "{out}"
    );
}

#[test]
fn doctor_flags_a_cli_older_than_the_oldest_tested_version() {
    let Some((code, out)) = doctor(&["claude"], "1.0.0") else {
        return;
    };
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("claude  1.0.0  UNTESTED: older than 2.1.330"),
        "{out}"
    );
}
