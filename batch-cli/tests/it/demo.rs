//! `mdbatch demo`: runs with nothing installed, under 20 s, and leaves a
//! finished batch behind.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn demo_runs_three_waves_retries_the_flaky_task_and_checks_every_box_in_under_20s() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("try");
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mdbatch"))
        .args(["demo", "--color", "never", "--dir"])
        .arg(&demo)
        .env("PATH", "/nonexistent") // nothing installed: no agent CLI, no shell needed
        .output()
        .unwrap();
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(took < Duration::from_secs(20), "took {took:?}");

    let tasks = std::fs::read_to_string(demo.join("tasks.md")).unwrap();
    let boxes = |m: &str| tasks.lines().filter(|l| l.starts_with(m)).count();
    assert_eq!(boxes("- [x]"), 8, "{tasks}");
    assert_eq!(boxes("- [ ]"), 0, "{tasks}");
    assert_eq!(tasks.matches("## Wave").count(), 3);

    // The journal shows the marked task failing once, then succeeding.
    let journal = std::fs::read_to_string(demo.join(".mdbatch/tasks.md/journal.jsonl")).unwrap();
    let ends: Vec<serde_json::Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "attempt_end" && v["id"] == "checkout")
        .collect();
    assert_eq!(ends.len(), 2, "{journal}");
    assert_eq!(ends[0]["outcome"], "failed");
    assert_eq!(ends[1]["outcome"], "succeeded");
    assert!(
        journal.contains("\"adjusted\""),
        "the retry's adjustment is journalled"
    );

    // It says where the batch is and what to try next.
    assert!(
        stderr.contains(&demo.canonicalize().unwrap().display().to_string()),
        "{stderr}"
    );
    // `mdbatch` is not on this PATH: the hints name the program by its path,
    // which works from the demo folder, and say how to install it.
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_mdbatch"));
    let exe = exe.canonicalize().unwrap_or(exe.to_path_buf());
    for next in [
        format!("{} plan", exe.display()),
        format!("{} status", exe.display()),
        "--runner demo".to_string(),
        "cargo install --path batch-cli".to_string(),
    ] {
        assert!(stderr.contains(&next), "missing {next}: {stderr}");
    }
    assert!(!stderr.contains("  mdbatch plan"), "{stderr}");
    // The stand-in agent's progress was shown live.
    assert!(stderr.contains("checkout"), "{stderr}");
}

#[test]
fn demo_refuses_a_folder_that_already_has_a_task_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tasks.md"), "- [ ] mine\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mdbatch"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds a tasks.md"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tasks.md")).unwrap(),
        "- [ ] mine\n"
    );
}

#[test]
fn demo_hints_say_plain_mdbatch_when_it_is_the_one_on_path() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("try");
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_mdbatch"))
        .parent()
        .unwrap()
        .to_path_buf();
    let out = Command::new(env!("CARGO_BIN_EXE_mdbatch"))
        .args(["demo", "--color", "never", "--dir"])
        .arg(&demo)
        .env("PATH", &bin_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("  mdbatch plan"), "{stderr}");
    assert!(!stderr.contains("cargo install"), "{stderr}");
}
