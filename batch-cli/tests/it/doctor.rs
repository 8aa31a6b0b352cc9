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

#[test]
fn run_warns_at_start_when_the_agent_cli_is_older_than_tested_and_still_runs() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: python3 is not installed; the stand-in CLIs need it");
        return;
    }
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../batch-core/tests/standins/agent_standin.py");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(&script, bin.join("claude")).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("tasks.md"), "- [ ] Create hello.txt\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mdbatch"))
        .args(["run", "--runner", "claude", "--color", "never"])
        .current_dir(&work)
        .env("PATH", format!("{}:{}", bin.display(), python_dir()))
        .env("STANDIN_VERSION", "2.0.0")
        .env("STANDIN_DIR", dir.path())
        .env("STANDIN_SCENARIOS", "success")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: claude 2.0.0 is older than 2.1.330"),
        "{stderr}"
    );
    assert!(
        std::fs::read_to_string(work.join("tasks.md"))
            .unwrap()
            .contains("- [x] Create hello.txt")
    );
}

#[test]
fn run_with_a_missing_agent_cli_stops_before_any_task_with_the_install_command() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tasks.md"), "- [ ] Create hello.txt\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mdbatch"))
        .args(["run", "--runner", "gemini"])
        .current_dir(dir.path())
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`gemini` was not found on PATH")
            && stderr.contains("npm install -g @google/gemini-cli"),
        "{stderr}"
    );
    assert!(!dir.path().join(".mdbatch").exists(), "no task started");
}
