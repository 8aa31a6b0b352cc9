//! What `mdbatch run` prints when stderr is not a terminal: plain timestamped
//! lines (with `-v`, every output line tagged with its task id), and with
//! `--json` the versioned events on stdout and nothing else.

use batch_core::exec::{Envelope, RunEvent};

use crate::batch;

fn is_timestamp(s: &str) -> bool {
    // 2026-11-25T09:00:00.123Z
    let b = s.as_bytes();
    s.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
        && s.chars().filter(char::is_ascii_digit).count() == 17
}

#[test]
fn without_a_terminal_every_stderr_line_is_timestamped_and_free_of_escape_codes() {
    let f = batch();
    let out = f.mdbatch(&["run", "--cmd", "./agent.sh", "--retries", "1"]);
    assert_eq!(out.status.code(), Some(1), "a task failed: exit 1");
    assert!(out.stdout.is_empty(), "stdout is for scripts only");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains('\x1b'), "no escape codes: {err}");
    let lines: Vec<&str> = err.lines().collect();
    // Every line either starts with a timestamp or continues the summary.
    for l in &lines {
        assert!(
            is_timestamp(&l[..24.min(l.len())]) || l.starts_with("  "),
            "untimestamped line {l:?} in\n{err}"
        );
    }
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(has(" run: 4 tasks from task.md in 2 waves"), "{err}");
    assert!(has(" alpha started: Create the model"), "{err}");
    assert!(has(" beta retrying in "), "{err}");
    assert!(has(" beta started: Parse the hints (attempt 2)"), "{err}");
    assert!(
        has(" beta succeeded in ") && has("(flaky: succeeded on attempt 2)"),
        "{err}"
    );
    assert!(has(" gamma failed: failed, "), "{err}");
    assert!(has("migration failed: table exists (attempt 2,"), "{err}");
    assert!(has(" delta skipped: "), "{err}");
    assert!(
        has(" summary: 4 tasks in ") && has("2 succeeded (1 flaky), 1 failed, 1 skipped"),
        "{err}"
    );
    assert!(has("  failed  gamma Write migrations: failed, "), "{err}");
    assert!(
        has("  flaky   beta Parse the hints (succeeded on attempt 2)"),
        "{err}"
    );
    // Without -v, subagent output stays out of the log.
    assert!(!has("working on alpha"), "{err}");
}

#[test]
fn verbose_prints_every_output_line_tagged_with_its_task_id() {
    let f = batch();
    let out = f.mdbatch(&["run", "--cmd", "./agent.sh", "--retries", "1", "-v"]);
    let err = String::from_utf8(out.stderr).unwrap();
    for needle in [
        "[alpha] working on alpha attempt 1",
        "[alpha] more output from alpha",
        "[beta] working on beta attempt 2",
        "[gamma] migration failed: table exists",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in\n{err}");
    }
}

#[test]
fn json_puts_one_versioned_event_per_line_on_stdout_and_nothing_else() {
    let f = batch();
    let out = f.mdbatch(&["run", "--cmd", "./agent.sh", "--retries", "1", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let events: Vec<Envelope> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not an event: {l:?}: {e}")))
        .collect();
    assert!(events.len() >= 10, "{text}");
    let run_id = &events[0].run_id;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.v, 1);
        assert_eq!(
            e.seq, i as u64,
            "sequence numbers count up from 0 without gaps"
        );
        assert_eq!(&e.run_id, run_id, "one run id");
        assert!(is_timestamp(&e.ts), "timestamp {:?}", e.ts);
    }
    // Each raw line carries the envelope fields at the top level.
    let raw: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for key in ["v", "seq", "ts", "run_id", "type", "data"] {
        assert!(raw.get(key).is_some(), "{key} missing in {raw}");
    }
    assert!(matches!(
        events[0].event,
        RunEvent::RunStarted { total: 4, .. }
    ));
    match &events.last().unwrap().event {
        RunEvent::RunFinished { summary } => {
            assert_eq!(
                (summary.succeeded, summary.failed, summary.skipped),
                (2, 1, 1)
            );
            assert_eq!(summary.flaky, 1);
        }
        other => panic!("last event is {other:?}"),
    }
    let of = |ty: &str| events.iter().filter(|e| e.event.type_name() == ty).count();
    assert_eq!(of("task_started"), 5, "alpha, beta twice, gamma twice");
    assert_eq!(of("task_retrying"), 2);
    assert_eq!(of("task_succeeded"), 2);
    assert_eq!(of("task_failed"), 1);
    assert_eq!(of("task_skipped"), 1);
    assert!(of("task_progress") >= 5, "output lines arrive as progress");
    // A script on a pipe gets no human output on stderr.
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn color_always_colours_plain_lines_and_no_color_does_not_override_it() {
    let f = batch();
    let out = f
        .command(&[
            "--color",
            "always",
            "run",
            "--cmd",
            "./agent.sh",
            "--retries",
            "0",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("\x1b["));
    let out = f
        .command(&["run", "--cmd", "./agent.sh", "--retries", "0"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\x1b'));
}

#[test]
fn sigusr1_without_a_terminal_prints_the_running_output_into_the_log() {
    use std::io::Read;
    let f = crate::Fixture::new("# T\n\n- [ ] Slow task <!-- id: slow -->\n");
    f.script(
        "agent.sh",
        "echo step one\necho step two\ntouch running\nwhile [ ! -e go ]; do sleep 0.02; done\n",
    );
    let mut run = f
        .command(&["run", "--cmd", "./agent.sh"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = run.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let log = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let limit = std::time::Duration::from_secs(30);
    crate::wait_for("the attempt", limit, || f.file("running").exists());
    // The output lines reach the reporter a moment after the script wrote them.
    crate::wait_for("the attempt's output", limit, || {
        // SAFETY: signalling the child we spawned.
        unsafe { libc::kill(run.id() as libc::pid_t, libc::SIGUSR1) };
        log.lock().unwrap().contains("   step two\n")
    });
    let text = log.lock().unwrap().clone();
    assert!(text.contains("── slow Slow task · attempt 1, "), "{text}");
    assert!(text.contains("   step one\n   step two\n"), "{text}");
    std::fs::write(f.file("go"), "").unwrap();
    assert!(run.wait().unwrap().success());
    reader.join().unwrap();
}

/// Whether `s` holds an escape code or a control character other than a line break.
fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n')
}

#[test]
fn escape_codes_a_subagent_prints_never_reach_the_log_status_or_junit() {
    let f = crate::Fixture::new("# R\n## Wave 1\n### a\n- [ ] one\n## Wave 2\n### a\n- [ ] two\n");
    f.script(
        "ag.sh",
        "printf 'out \\033[31mred\\033[0m \\001\\002\\n'; exit 1\n",
    );
    let out = f.mdbatch(&[
        "run",
        "--cmd",
        "./ag.sh",
        "--retries",
        "0",
        "--junit",
        "report.xml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    // The failure line and the summary both quote the message, cleaned.
    let quoted: Vec<&str> = err.lines().filter(|l| l.contains("red")).collect();
    assert!(quoted.len() >= 2, "failed line and summary: {err}");
    assert!(quoted.iter().all(|l| l.contains("out red")), "{err}");
    assert!(!has_control(&err), "control bytes on stderr: {err:?}");

    let status = f.mdbatch(&["status"]);
    let text = String::from_utf8(status.stdout).unwrap();
    assert!(text.contains("out red"), "{text}");
    assert!(!has_control(&text), "control bytes in status: {text:?}");

    let xml = std::fs::read_to_string(f.file("report.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed JUnit XML");
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .expect("a failure element");
    let message = failure.attribute("message").unwrap();
    assert!(message.contains("out red"), "{message:?}");
    assert!(
        !has_control(message) && !message.contains('\u{FFFD}'),
        "{message:?}"
    );
    let body = failure.text().unwrap_or("");
    assert!(!has_control(body) && !body.contains('\u{FFFD}'), "{body:?}");
}

#[test]
fn a_task_interrupted_by_ctrl_c_is_named_in_the_summary_in_status_and_on_the_rerun() {
    let f = crate::Fixture::new(
        "# Int\n\n## Wave 1\n### a\n- [ ] fast one\n- [ ] slow one\n## Wave 2\n### a\n- [ ] later\n",
    );
    f.script(
        "ag.sh",
        "case \"$MDBATCH_TASK\" in slow*) [ -e slow-started ] && exit 0; touch slow-started; sleep 30;; esac\n",
    );
    let run = f
        .command(&["run", "--cmd", "./ag.sh", "-j", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let limit = std::time::Duration::from_secs(20);
    crate::wait_for("the slow task", limit, || f.file("slow-started").exists());
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(run.id() as libc::pid_t, libc::SIGINT) };
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("  interrupted wave-1/a/slow-one slow one (attempt 1"),
        "{err}"
    );

    let status = f.mdbatch(&["status"]);
    let text = String::from_utf8(status.stdout).unwrap();
    assert!(
        text.contains("interrupted (the last run stopped them"),
        "{text}"
    );
    assert!(
        text.contains("  wave-1/a/slow-one slow one (attempt 1)"),
        "{text}"
    );

    let rerun = f.mdbatch(&["run", "--cmd", "./ag.sh"]);
    assert_eq!(rerun.status.code(), Some(0));
    let err = String::from_utf8(rerun.stderr).unwrap();
    assert!(
        err.contains("a previous run left 1 unfinished, retrying: wave-1/a/slow-one"),
        "{err}"
    );
}
