//! The spending cap (`--max-cost`, `--max-tokens`, `--at-cap`) with a
//! stand-in `claude` on PATH that reports a cost per task.

use crate::Fixture;

/// A stand-in Claude Code: records its arguments, prints `system/init` and
/// a `result` line with the cost set for its task. A task named `slow*`
/// waits for a `go` file first (the test never creates it: the run stops it).
const CLAUDE: &str = r#"
[ "$1" = --version ] && { echo "2.1.330 (Claude Code)"; exit 0; }
echo "$@" > "args-$MDBATCH_TASK_ID"
echo '{"type":"system","subtype":"init","session_id":"s-'$MDBATCH_TASK_ID'"}'
case "$MDBATCH_TASK_ID" in
  slow*) while [ ! -e go ]; do sleep 0.05; done ;;
esac
cost=0.40
[ "$MDBATCH_TASK_ID" = big ] && cost=1.50
echo '{"type":"result","subtype":"success","is_error":false,"result":"done","num_turns":1,"total_cost_usd":'$cost',"usage":{"input_tokens":1000,"output_tokens":200}}'
"#;

fn fixture(tasks: &[&str]) -> Fixture {
    let mut md = String::from("# Batch\n\n");
    for t in tasks {
        md.push_str(&format!("- [ ] Task {t} <!-- id: {t} -->\n"));
    }
    let f = Fixture::new(&md);
    std::fs::create_dir_all(f.file("bin")).expect("bin");
    f.script("bin/claude", CLAUDE);
    f
}

fn run(f: &Fixture, args: &[&str]) -> std::process::Output {
    let path = format!(
        "{}:{}",
        f.file("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut all = vec![
        "run",
        "--runner",
        "claude",
        "--isolate",
        "none",
        "--retries",
        "0",
    ];
    all.extend_from_slice(args);
    f.command(&all)
        .env("PATH", path)
        .output()
        .expect("run mdbatch")
}

fn status_json(f: &Fixture) -> serde_json::Value {
    let o = f.mdbatch(&["status", "--json"]);
    serde_json::from_slice(&o.stdout).expect("status json")
}

#[test]
fn a_capped_run_stops_launching_at_its_cap_and_overshoots_by_less_than_its_bound() {
    let tasks = ["t1", "t2", "t3", "t4", "t5", "t6"];
    let f = fixture(&tasks);
    let o = run(&f, &["-j", "2", "--max-cost", "1.00"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("spending cap reached"), "{err}");
    assert!(err.contains("stopped at the cap"), "{err}");

    // Each Claude Code task got its share of the cap.
    let args = std::fs::read_to_string(f.file("args-t1")).expect("args");
    assert!(args.contains("--max-budget-usd 0.5000"), "{args}");

    let s = status_json(&f);
    let spent = s["totals"]["usage"]["cost_usd"].as_f64().expect("spend");
    // The bound: the cap plus every running task's share (jobs × cap/jobs).
    assert!((1.0..=2.0).contains(&spent), "spent {spent}");
    let done = s["done"].as_u64().expect("done");
    assert!((3..=4).contains(&done), "{s}");
    assert_eq!(
        s["done"].as_u64().unwrap_or(0) + s["open"].as_u64().unwrap_or(0),
        6
    );
    assert!(
        s["last_run"]["summary"]["capped"]
            .as_str()
            .is_some_and(|c| c.starts_with("spending cap reached: $1.20 of $1.00")),
        "{s}"
    );
    // Tasks never launched were not run.
    assert!(!f.file("args-t6").exists());
    let text = String::from_utf8_lossy(&f.mdbatch(&["status"]).stdout).into_owned();
    assert!(text.contains("stopped at the cap"), "{text}");
}

#[test]
fn at_cap_stop_ends_the_running_tasks_when_one_report_reaches_the_cap() {
    let f = fixture(&["big", "slow1", "later"]);
    let o = run(&f, &["-j", "2", "--max-cost", "1", "--at-cap", "stop"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("1 running are stopped"), "{err}");
    let md = f.task_md();
    assert!(
        md.contains("- [x] Task big")
            && md.contains("- [ ] Task slow1")
            && md.contains("- [ ] Task later"),
        "{md}"
    );
    assert!(!f.file("args-later").exists());
}

#[test]
fn a_token_cap_counts_input_and_output_tokens() {
    let f = fixture(&["t1", "t2", "t3"]);
    let o = run(&f, &["-j", "1", "--max-tokens", "2000"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("token cap reached: 2400 of 2000 tokens used"),
        "{err}"
    );
    assert!(!f.file("args-t3").exists());
    let o = run(&f, &["-j", "1", "--at-cap", "stop"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--at-cap needs --max-cost or --max-tokens")
    );
}
