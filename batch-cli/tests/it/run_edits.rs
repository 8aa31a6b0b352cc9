//! Tasks added to the task file while a run goes on: the run announces them
//! (plain lines and `--json`'s `plan_changed`) and runs them in the same run.

use super::Fixture;

/// One task, `a`; its agent appends task `c` to the file while it runs, so
/// the edit is there when `a`'s box is checked.
fn fixture() -> Fixture {
    let f = Fixture::new("# Batch\n\n- [ ] <!-- id: a --> first\n");
    f.script(
        "agent.sh",
        r#"echo "$MDBATCH_TASK_ID" >> ran.log
if [ "$MDBATCH_TASK_ID" = a ]; then
  printf -- '- [ ] <!-- id: c --> added during the run\n' >> task.md
fi
"#,
    );
    f
}

const DONE: &str =
    "# Batch\n\n- [x] <!-- id: a --> first\n- [x] <!-- id: c --> added during the run\n";

#[test]
fn a_task_added_during_the_run_is_announced_in_plain_output_and_runs_in_the_same_run() {
    let f = fixture();
    let out = f.mdbatch(&["run", "--cmd", "./agent.sh", "--color", "never"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let announced = stderr
        .find("task file edited: added c (joins this run)")
        .unwrap_or_else(|| panic!("no announcement of c:\n{stderr}"));
    let started = stderr
        .find("c started")
        .unwrap_or_else(|| panic!("c did not start:\n{stderr}"));
    assert!(announced < started, "{stderr}");
    assert!(!stderr.contains("next run"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(f.file("ran.log")).unwrap(),
        "a\nc\n"
    );
    assert_eq!(f.task_md(), DONE);
}

#[test]
fn a_task_added_during_the_run_is_a_plan_changed_event_in_json_and_runs_in_the_same_run() {
    let f = fixture();
    let out = f.mdbatch(&["run", "--cmd", "./agent.sh", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let pos = |ty: &str, id: Option<&str>| {
        events
            .iter()
            .position(|e| e["type"] == ty && id.is_none_or(|id| e["data"]["id"] == id))
    };
    let changed = pos("plan_changed", None).unwrap_or_else(|| panic!("no plan_changed:\n{stdout}"));
    assert_eq!(
        events[changed]["data"],
        serde_json::json!({"changed": [], "dropped": [], "added": ["c"]}),
        "{stdout}"
    );
    let started =
        pos("task_started", Some("c")).unwrap_or_else(|| panic!("c did not start:\n{stdout}"));
    let succeeded =
        pos("task_succeeded", Some("c")).unwrap_or_else(|| panic!("c did not succeed:\n{stdout}"));
    assert!(changed < started && started < succeeded, "{stdout}");
    let finished = events.last().unwrap();
    assert_eq!(finished["type"], "run_finished", "{stdout}");
    assert_eq!(
        std::fs::read_to_string(f.file("ran.log")).unwrap(),
        "a\nc\n"
    );
    assert_eq!(f.task_md(), DONE);
}
