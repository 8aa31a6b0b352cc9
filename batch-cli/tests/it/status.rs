//! `mdbatch status`, `logs` and `reset` after a real run with a flaky task,
//! a failed one and a skipped one.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::{Fixture, batch, wait_for};

fn after_a_run() -> Fixture {
    let f = batch();
    let out = f.mdbatch(&["run", "--cmd", "./agent.sh", "--retries", "1"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    f
}

#[test]
fn status_after_a_run_with_failures_shows_counts_the_failure_and_the_flaky_task() {
    let f = after_a_run();
    let out = f.mdbatch(&["status"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "no colour on a pipe");
    for needle in [
        "task.md: 2 done, 2 open (waves)",
        "Wave 1",
        "2/3 done",
        "api",
        "db",
        "open: gamma",
        "Wave 2",
        "open: delta",
        "no run in progress",
        "4 tasks in ",
        "2 succeeded (1 flaky), 1 failed, 1 skipped",
        "failed:\n  gamma Write migrations: failed, ",
        "migration failed: table exists (2 attempts, ",
        "`mdbatch logs gamma`",
        "flaky (succeeded after a retry):\n  beta (2 attempts, ",
        "skipped:\n  delta: ",
        "journal: 5 attempts, ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn status_json_reports_the_same_in_a_versioned_schema() {
    let f = after_a_run();
    let out = f.mdbatch(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["v"], 1);
    assert_eq!((v["done"].as_u64(), v["open"].as_u64()), (Some(2), Some(2)));
    assert_eq!(v["waves"][0]["groups"][1]["title"], "db");
    assert_eq!(v["waves"][0]["groups"][1]["open_ids"][0], "gamma");
    assert_eq!(v["failed"][0]["id"], "gamma");
    assert_eq!(v["failed"][0]["kind"], "failed");
    assert!(
        v["failed"][0]["message"]
            .as_str()
            .unwrap()
            .contains("table exists")
    );
    assert_eq!(v["failed"][0]["attempts"], 2);
    assert_eq!(v["flaky"][0]["id"], "beta");
    assert_eq!(v["skipped"][0]["id"], "delta");
    assert!(
        v["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("gamma")
    );
    assert_eq!(v["last_run"]["summary"]["failed"], 1);
    assert!(v["running"].is_null());
    let alpha = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "alpha")
        .unwrap();
    assert_eq!(alpha["checked"], true);
    assert_eq!(alpha["attempts"], 1);
}

#[test]
fn logs_prints_the_latest_attempt_or_the_one_asked_for() {
    let f = after_a_run();
    let out = f.mdbatch(&["logs", "beta"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("working on beta attempt 2"), "{text}");
    assert!(!text.contains("attempt 1"), "{text}");
    let out = f.mdbatch(&["logs", "beta", "--attempt", "1"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("working on beta attempt 1"), "{text}");
    assert!(text.contains("flaked: try again"), "{text}");

    let out = f.mdbatch(&["logs", "delta"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("no log for task `delta`"), "{err}");
}

#[test]
fn logs_follow_streams_a_running_attempt_until_it_ends() {
    let f = Fixture::new("# T\n\n- [ ] Slow task <!-- id: slow -->\n");
    f.script(
        "agent.sh",
        "echo first line\nwhile [ ! -e go ]; do sleep 0.02; done\necho last line\n",
    );
    let mut run = f
        .command(&["run", "--cmd", "./agent.sh"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The log appears once the attempt has printed its first line.
    let log = f.file(".mdbatch/task.md/logs/slow/1.log");
    wait_for("the first log line", Duration::from_secs(20), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("first line"))
    });
    let mut follow = f
        .command(&["logs", "slow", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "first line");
    // Only now may the attempt finish.
    std::fs::write(f.file("go"), "").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "last line");
    assert!(lines.next().is_none(), "follow ends with the attempt");
    assert!(follow.wait().unwrap().success());
    assert!(run.wait().unwrap().success());
}

#[test]
fn reset_refuses_without_a_terminal_unless_yes_then_unchecks_one_byte_per_box() {
    let f = after_a_run();
    let before = f.task_md();
    assert_eq!(before.matches("[x]").count(), 2);
    let out = f.mdbatch(&["reset", "--all"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("pass --yes"), "{err}");
    assert_eq!(f.task_md(), before, "nothing changed without confirmation");

    let out = f.mdbatch(&["reset", "--all", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = f.task_md();
    assert_eq!(after, before.replace("[x]", "[ ]"));
    let diff = before
        .bytes()
        .zip(after.bytes())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(diff, 2, "one byte per box");
    // The journal forgot every task: status has no failure and no flaky task.
    let v: serde_json::Value =
        serde_json::from_slice(&f.mdbatch(&["status", "--json"]).stdout).unwrap();
    assert_eq!(v["failed"].as_array().unwrap().len(), 0);
    assert_eq!(v["flaky"].as_array().unwrap().len(), 0);
    assert_eq!(v["open"], 4);
}

#[test]
fn reset_failed_forgets_failures_and_keeps_the_boxes() {
    let f = after_a_run();
    let before = f.task_md();
    let out = f.mdbatch(&["reset", "--failed", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(f.task_md(), before);
    let v: serde_json::Value =
        serde_json::from_slice(&f.mdbatch(&["status", "--json"]).stdout).unwrap();
    assert_eq!(v["failed"].as_array().unwrap().len(), 0);
    assert_eq!(v["flaky"][0]["id"], "beta", "successes are kept");
}

#[test]
fn reset_without_a_choice_says_what_to_choose() {
    let f = after_a_run();
    let out = f.mdbatch(&["reset", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--all"));
}

#[test]
fn status_during_a_run_names_its_pid_and_the_running_attempts() {
    let f = Fixture::new(
        "# T\n\n- [ ] Slow task <!-- id: slow -->\n- [ ] Quick task <!-- id: quick -->\n",
    );
    f.script(
        "agent.sh",
        "echo started\n[ \"$MDBATCH_TASK_ID\" = quick ] && exit 0\ntouch running\nwhile [ ! -e go ]; do sleep 0.02; done\n",
    );
    let mut run = f
        .command(&["run", "--cmd", "./agent.sh"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the slow attempt", Duration::from_secs(20), || {
        f.file("running").exists()
    });
    // The journal records the subagent's pid once it is known.
    wait_for(
        "the attempt's pid in the journal",
        Duration::from_secs(20),
        || {
            std::fs::read_to_string(f.file(".mdbatch/task.md/journal.jsonl")).is_ok_and(|j| {
                j.lines()
                    .any(|l| l.contains("attempt_info") && l.contains("\"slow\""))
            })
        },
    );
    let out = f.mdbatch(&["status"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("running now: pid {}", run.id())),
        "{text}"
    );
    assert!(text.contains("  slow attempt 1, subagent pid "), "{text}");
    assert!(
        text.contains("last run: ") && text.contains("still running"),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&f.mdbatch(&["status", "--json"]).stdout).unwrap();
    assert_eq!(v["running"]["pid"], run.id());
    assert_eq!(v["running"]["tasks"][0]["id"], "slow");
    assert_eq!(v["running"]["tasks"][0]["alive"], true);
    std::fs::write(f.file("go"), "").unwrap();
    assert!(run.wait().unwrap().success());
    let text = String::from_utf8(f.mdbatch(&["status"]).stdout).unwrap();
    assert!(text.contains("no run in progress"), "{text}");
}
