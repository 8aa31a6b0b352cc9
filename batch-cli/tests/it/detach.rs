//! Background runs: `run --detach`, `wait`, `stop`, a `kill -9` of the
//! background process and a rerun. Agents wait for a `go-<id>` file, so the
//! tests decide when a task may end (no sleeping to win a race).

use std::time::Duration;

use crate::{Fixture, wait_for};

const TASKS: &str = "# Batch\n\n- [ ] First <!-- id: one -->\n- [ ] Second <!-- id: two -->\n";
const AGENT: &str = "echo \"working on $1 pid $$\"\nwhile [ ! -e \"go-$1\" ]; do sleep 0.05; done\necho \"finished $1\"\n";

fn fixture() -> Fixture {
    let f = Fixture::new(TASKS);
    f.script("agent.sh", AGENT);
    f
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Starts the batch detached; returns the run id and the background pid.
fn start(f: &Fixture) -> (String, u32) {
    let o = f.mdbatch(&["run", "--detach", "--cmd", "./agent.sh {id}", "-j", "1"]);
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let first = out.lines().next().unwrap_or_default();
    // run ID started in the background (pid PID)
    let words: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"run"), "{out}");
    let pid = first
        .rsplit("pid ")
        .next()
        .and_then(|p| p.trim_end_matches(')').parse().ok())
        .expect("a pid");
    assert!(
        out.contains("log: ") && out.contains(".mdbatch/task.md/detached/"),
        "{out}"
    );
    (words[1].to_string(), pid)
}

fn started(f: &Fixture, id: &str) -> bool {
    std::fs::read_to_string(f.file(&format!(".mdbatch/task.md/logs/{id}/1.log")))
        .is_ok_and(|t| t.contains("working on"))
}

#[test]
fn a_detached_run_returns_at_once_shows_in_status_and_wait_reports_its_end() {
    let f = fixture();
    let (run_id, _) = start(&f);
    wait_for("task one to start", Duration::from_secs(30), || {
        started(&f, "one")
    });
    let status = f.mdbatch(&["status"]);
    let text = stdout(&status);
    assert!(
        text.contains("running now:") && text.contains(&run_id),
        "{text}"
    );

    // Nothing can finish before its go file: the wait times out, exit 124.
    let o = f.mdbatch(&["wait", "--timeout", "1s"]);
    assert_eq!(o.status.code(), Some(124), "{}", stdout(&o));
    assert!(stdout(&o).contains("still running"), "{}", stdout(&o));

    std::fs::write(f.file("go-one"), "").expect("go");
    std::fs::write(f.file("go-two"), "").expect("go");
    let o = f.mdbatch(&["wait", "--timeout", "60s"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!("run {run_id} finished")),
        "{}",
        stdout(&o)
    );
    assert_eq!(f.task_md(), TASKS.replace("[ ]", "[x]"));
}

#[test]
fn stop_ends_a_detached_run_gracefully_and_a_second_run_is_refused_while_it_runs() {
    let f = fixture();
    let (_, pid) = start(&f);
    wait_for("task one to start", Duration::from_secs(30), || {
        started(&f, "one")
    });
    let again = f.mdbatch(&["run", "--detach", "--cmd", "./agent.sh {id}"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains(&format!("a run is in progress already (pid {pid})")),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let o = f.mdbatch(&["stop"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("gracefully"), "{}", stdout(&o));
    let o = f.mdbatch(&["wait", "--timeout", "60s"]);
    assert_eq!(o.status.code(), Some(130), "{}", stdout(&o));
    assert!(stdout(&o).contains("stopped"), "{}", stdout(&o));
    assert_eq!(f.task_md(), TASKS, "no box checked");
    // The subagent went with the run.
    let log = std::fs::read_to_string(f.file(".mdbatch/task.md/logs/one/1.log")).expect("log");
    let agent_pid: i32 = log
        .split("pid ")
        .nth(1)
        .and_then(|p| p.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("agent pid");
    // SAFETY: kill(pid, 0) only checks that the process exists.
    assert_ne!(
        unsafe { libc::kill(agent_pid, 0) },
        0,
        "the agent was ended"
    );
    let o = f.mdbatch(&["stop"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no run is in progress"));
}

#[test]
fn a_background_run_killed_with_sigkill_leaves_no_lock_and_a_rerun_finishes_the_batch() {
    let f = fixture();
    let (run_id, pid) = start(&f);
    wait_for("task one to start", Duration::from_secs(30), || {
        started(&f, "one")
    });
    // SAFETY: SIGKILL to the background mdbatch this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let o = f.mdbatch(&["wait", "--timeout", "60s"]);
    assert_eq!(o.status.code(), Some(130), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!("run {run_id} never finished (killed)")),
        "{}",
        stdout(&o)
    );

    std::fs::write(f.file("go-one"), "").expect("go");
    std::fs::write(f.file("go-two"), "").expect("go");
    let o = f.mdbatch(&["run", "--cmd", "./agent.sh {id}", "-j", "1"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(f.task_md(), TASKS.replace("[ ]", "[x]"));
}
