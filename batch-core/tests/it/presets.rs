//! The agent presets against stand-in CLIs replaying the captured output
//! shapes: progress, error kinds, the argv of every attempt (when `--resume`
//! is used and when it must not be), waits, and the journal of a real run.

use std::time::Duration;

use batch_core::runner::Stream;
use batch_core::runner::presets::PresetKind;
use batch_core::{ErrorKind, Progress, RunError};

use crate::real_cli::{adjustments, attempt, sessions};
use crate::standin::{Standins, flag};

macro_rules! standins {
    ($($s:expr),*) => {
        match Standins::new(&[$($s),*]) {
            Some(s) => s,
            None => return,
        }
    };
}

const LIMIT: Option<Duration> = Some(Duration::from_secs(60));

fn tool_calls(p: &[Progress]) -> Vec<(String, Option<String>)> {
    p.iter()
        .filter_map(|p| match p {
            Progress::ToolCall { tool, arg } => Some((tool.clone(), arg.clone())),
            _ => None,
        })
        .collect()
}

// ------------------------------------------------------------------ claude

#[tokio::test]
async fn claude_success_reports_session_tool_call_message_usage_and_passes_the_documented_argv() {
    let s = standins!("success");
    let r = s.runner(PresetKind::Claude, |o| o.model = Some("claude-x".into()));
    let task = s.task("T1", "-rf looks like a flag");
    let (res, p) = attempt(&r, &task, 1, None, LIMIT).await;
    let out = res.unwrap();
    let argv = &s.argvs()[0];
    let sid = flag(argv, "--session-id").expect("a fresh --session-id");
    assert_eq!(
        argv,
        &[
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--session-id",
            &sid,
            "--permission-mode",
            "acceptEdits",
            "--model",
            "claude-x",
            "--",
            "-rf looks like a flag",
        ]
    );
    assert_eq!(s.calls()[0]["env"]["CLAUDE_CODE_MAX_RETRIES"], "1");
    assert_eq!(
        s.calls()[0]["env"]["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"],
        "1"
    );
    assert_eq!(sessions(&p), vec![sid.clone()]);
    let calls = tool_calls(&p);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "Write");
    assert!(calls[0].1.as_deref().unwrap().ends_with("hello.txt"));
    assert!(p.contains(&Progress::Message {
        text: "Done.".into()
    }));
    assert_eq!(out.session_id.as_deref(), Some(sid.as_str()));
    let u = out.usage.unwrap();
    assert_eq!(
        (u.input_tokens, u.output_tokens, u.turns, u.cost_usd),
        (100, 23, Some(2), Some(0.00086))
    );
    assert_eq!(out.summary.as_deref(), Some("Done."));
}

#[tokio::test]
async fn claude_429_is_transient_and_rate_limited_then_the_retry_resumes_the_same_session() {
    let s = standins!("rate-limited-429", "success");
    let r = s.runner(PresetKind::Claude, |_| {});
    let task = s.task("T1", "do it");
    let (res, p1) = attempt(&r, &task, 1, None, LIMIT).await;
    let err = res.unwrap_err();
    assert_eq!((err.kind, err.rate_limited), (ErrorKind::Transient, true));
    assert!(p1.iter().any(|p| matches!(
        p,
        Progress::ApiRetry {
            attempt: 1,
            status: Some(429),
            delay_ms: Some(583),
            ..
        }
    )));
    let first = err.session_id.clone().unwrap();
    let (res, p2) = attempt(&r, &task, 2, Some(err), LIMIT).await;
    res.unwrap();
    let argvs = s.argvs();
    assert_eq!(flag(&argvs[1], "--resume").as_deref(), Some(first.as_str()));
    assert_eq!(flag(&argvs[1], "--session-id"), None);
    assert_eq!(
        adjustments(&p2),
        vec![format!(
            "transient error: resuming session {first} after the wait"
        )]
    );
}

#[tokio::test]
async fn claude_overload_is_transient_and_rate_limited() {
    let s = standins!("overloaded-529");
    let (res, _) = attempt(
        &s.runner(PresetKind::Claude, |_| {}),
        &s.task("T1", "x"),
        1,
        None,
        LIMIT,
    )
    .await;
    let err = res.unwrap_err();
    assert_eq!((err.kind, err.rate_limited), (ErrorKind::Transient, true));
    assert!(err.message.contains("529 Overloaded"));
}

#[tokio::test]
async fn claude_usage_limit_waits_until_the_reset_time_it_names() {
    let s = standins!("usage-limit");
    let (res, _) = attempt(
        &s.runner(PresetKind::Claude, |_| {}),
        &s.task("T1", "x"),
        1,
        None,
        LIMIT,
    )
    .await;
    let err = res.unwrap_err();
    assert_eq!((err.kind, err.rate_limited), (ErrorKind::Transient, true));
    let wait = err.retry_after.expect("a retry-after from the reset time");
    assert!(
        wait > Duration::from_secs(80) && wait <= Duration::from_secs(90),
        "{wait:?}"
    );
}

#[tokio::test]
async fn claude_invalid_key_is_fatal() {
    let s = standins!("invalid-api-key-401");
    let (res, _) = attempt(
        &s.runner(PresetKind::Claude, |_| {}),
        &s.task("T1", "x"),
        1,
        None,
        LIMIT,
    )
    .await;
    let err = res.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Fatal);
    assert!(err.message.contains("Invalid API key"));
}

#[tokio::test]
async fn claude_prompt_too_long_retries_in_a_fresh_session_with_a_trimmed_prompt_never_a_resume() {
    let s = standins!("prompt-too-long-400", "success");
    let r = s.runner(PresetKind::Claude, |_| {});
    let mut task = s.task("T1", "write the parser");
    task = task.with_preamble("# Big project\n\nPREAMBLE-TEXT");
    task = task.with_details("D".repeat(10_000));
    let prompt = format!(
        "{}\n\nwrite the parser\n\n{}",
        task.preamble(),
        task.details()
    );
    task = task.with_prompt(prompt);
    let (res, _) = attempt(&r, &task, 1, None, LIMIT).await;
    let err = res.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ContextOverflow);
    let (res, p2) = attempt(&r, &task, 2, Some(err), LIMIT).await;
    res.unwrap();
    let argvs = s.argvs();
    assert!(
        !argvs[1].contains(&"--resume".to_string()),
        "{:?}",
        argvs[1]
    );
    let (a, b) = (
        flag(&argvs[0], "--session-id").unwrap(),
        flag(&argvs[1], "--session-id").unwrap(),
    );
    assert_ne!(a, b);
    let prompt = argvs[1].last().unwrap();
    assert!(
        !prompt.contains("PREAMBLE-TEXT") && prompt.len() < 2500,
        "{}",
        prompt.len()
    );
    assert!(adjustments(&p2)[0].starts_with("context overflow: fresh session (never a resume)"));
}

#[tokio::test]
async fn claude_max_turns_resumes_the_session_with_twice_the_turns() {
    let s = standins!("max-turns", "success");
    let r = s.runner(PresetKind::Claude, |o| o.max_turns = Some(5));
    let task = s.task("T1", "x");
    let (res, _) = attempt(&r, &task, 1, None, LIMIT).await;
    let err = res.unwrap_err();
    assert_eq!(err.kind, ErrorKind::TurnLimit);
    let sid = err.session_id.clone().unwrap();
    let (res, p2) = attempt(&r, &task, 2, Some(err), LIMIT).await;
    res.unwrap();
    let argvs = s.argvs();
    assert_eq!(flag(&argvs[0], "--max-turns").as_deref(), Some("5"));
    assert_eq!(flag(&argvs[1], "--resume").as_deref(), Some(sid.as_str()));
    assert_eq!(flag(&argvs[1], "--max-turns").as_deref(), Some("10"));
    assert_eq!(
        adjustments(&p2),
        vec![format!(
            "turn limit: resuming session {sid}, max turns 10 (was 5)"
        )]
    );
}

#[tokio::test]
async fn claude_crash_without_result_is_failed_and_the_retry_carries_its_error_in_a_fresh_session()
{
    let s = standins!("crash", "success");
    let r = s.runner(PresetKind::Claude, |_| {});
    let task = s.task("T1", "x");
    let (res, _) = attempt(&r, &task, 1, None, LIMIT).await;
    let err = res.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Failed);
    assert!(
        err.message.contains("without a result line") && err.message.contains("ENOMEM"),
        "{}",
        err.message
    );
    assert!(
        err.output_tail.as_deref().unwrap().contains("[Write]"),
        "a readable tail"
    );
    let (res, _) = attempt(&r, &task, 2, Some(err), LIMIT).await;
    res.unwrap();
    let argvs = s.argvs();
    assert!(flag(&argvs[1], "--resume").is_none());
    assert!(
        argvs[1].last().unwrap().contains("did not succeed")
            && argvs[1].last().unwrap().contains("ENOMEM")
    );
}

#[tokio::test]
async fn claude_garbage_and_unknown_lines_are_plain_output_and_never_fatal() {
    let s = standins!("garbage");
    let (res, p) = attempt(
        &s.runner(PresetKind::Claude, |_| {}),
        &s.task("T1", "x"),
        1,
        None,
        LIMIT,
    )
    .await;
    res.unwrap();
    let outputs: Vec<&str> = p
        .iter()
        .filter_map(|p| match p {
            Progress::Output {
                stream: Stream::Stdout,
                line,
            } => Some(line.as_str()),
            _ => None,
        })
        .collect();
    assert!(outputs.contains(&"Warning: this line is not JSON"));
    assert!(outputs.iter().any(|l| l.contains("brand_new_event")));
    assert!(
        outputs
            .iter()
            .any(|l| l.starts_with("{\"type\":\"assistant\",\"message\":") && !l.ends_with('}'))
    );
    assert_eq!(tool_calls(&p).len(), 1);
}

#[tokio::test]
async fn claude_that_hangs_is_stopped_at_its_deadline_as_a_timeout() {
    let s = standins!("hang");
    let (res, p) = attempt(
        &s.runner(PresetKind::Claude, |_| {}),
        &s.task("T1", "x"),
        1,
        None,
        Some(Duration::from_secs(2)),
    )
    .await;
    let err = res.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout, "{err:?}");
    assert_eq!(
        err.session_id,
        sessions(&p).first().cloned(),
        "the session is kept for a later resume"
    );
}

// ------------------------------------------------------------------ codex

#[tokio::test]
async fn codex_success_reports_thread_command_and_message_with_its_documented_argv() {
    let s = standins!("success");
    let r = s.runner(PresetKind::Codex, |_| {});
    let (res, p) = attempt(&r, &s.task("T1", "--help me"), 1, None, LIMIT).await;
    let out = res.unwrap();
    assert_eq!(
        s.argvs()[0],
        [
            "exec",
            "--json",
            "--skip-git-repo-check",
            "-c",
            "analytics.enabled=false",
            "--disable",
            "plugins",
            "--sandbox",
            "workspace-write",
            "--",
            "--help me",
        ]
    );
    assert_eq!(
        out.session_id.as_deref(),
        Some("01a211dc-773e-7bb0-a3aa-c44ded8a88bb")
    );
    assert_eq!(
        tool_calls(&p),
        vec![(
            "command".into(),
            Some("echo 'Hello, world' > hello.txt".into())
        )]
    );
    assert_eq!(out.usage.unwrap().output_tokens, 211);
    assert!(out.summary.unwrap().starts_with("Created `hello.txt`"));
}

#[tokio::test]
async fn codex_failures_are_classified_by_message_and_its_own_retries_are_signals() {
    for (scenario, kind) in [
        ("rate-limited-429", ErrorKind::Transient),
        ("quota-exceeded-429", ErrorKind::Fatal),
        ("invalid-api-key-401", ErrorKind::Fatal),
        ("context-too-long-400", ErrorKind::ContextOverflow),
        ("overloaded-503-default-retries", ErrorKind::Transient),
    ] {
        let s = standins!(scenario);
        let (res, p) = attempt(
            &s.runner(PresetKind::Codex, |_| {}),
            &s.task("T1", "x"),
            1,
            None,
            LIMIT,
        )
        .await;
        assert_eq!(res.unwrap_err().kind, kind, "{scenario}");
        if scenario.ends_with("default-retries") {
            let retries = p
                .iter()
                .filter(|p| {
                    matches!(
                        p,
                        Progress::ApiRetry {
                            status: Some(503),
                            ..
                        }
                    )
                })
                .count();
            assert_eq!(retries, 5);
        }
    }
}

#[tokio::test]
async fn codex_transient_retry_resumes_its_thread() {
    let s = standins!("rate-limited-429", "success");
    let r = s.runner(PresetKind::Codex, |_| {});
    let task = s.task("T1", "x");
    let (res, _) = attempt(&r, &task, 1, None, LIMIT).await;
    let (res, _) = attempt(&r, &task, 2, Some(res.unwrap_err()), LIMIT).await;
    res.unwrap();
    let argv = &s.argvs()[1];
    assert_eq!(&argv[..2], ["exec", "resume"]);
    let dd = argv.iter().position(|a| a == "--").unwrap();
    assert_eq!(argv[dd + 1], "01a211dc-773e-7bb0-a3aa-c44ded8a88bb");
    assert!(argv.contains(&"sandbox_mode=\"workspace-write\"".to_string()));
}

#[tokio::test]
async fn codex_that_never_gives_up_on_an_unreachable_api_is_stopped_by_the_timeout() {
    let s = standins!("unreachable");
    let (res, p) = attempt(
        &s.runner(PresetKind::Codex, |_| {}),
        &s.task("T1", "x"),
        1,
        None,
        Some(Duration::from_secs(2)),
    )
    .await;
    assert_eq!(res.unwrap_err().kind, ErrorKind::Timeout);
    assert!(
        p.iter()
            .any(|p| matches!(p, Progress::ApiRetry { status: None, .. }))
    );
}

// ------------------------------------------------------------------ gemini

#[tokio::test]
async fn gemini_success_reports_session_tool_call_and_the_joined_message() {
    let s = standins!("success");
    let r = s.runner(PresetKind::Gemini, |_| {});
    let (res, p) = attempt(&r, &s.task("T1", "-x"), 1, None, LIMIT).await;
    let out = res.unwrap();
    let argv = &s.argvs()[0];
    assert_eq!(
        &argv[..4],
        [
            "--output-format",
            "stream-json",
            "--skip-trust",
            "--approval-mode=yolo"
        ]
    );
    assert_eq!(argv.last().unwrap(), "--prompt=-x");
    assert_eq!(
        tool_calls(&p),
        vec![("write_file".into(), Some("hello.txt".into()))]
    );
    assert!(p.contains(&Progress::Message {
        text: "Created `hello.txt` containing \"Hello, world\".".into()
    }));
    assert_eq!(out.usage.unwrap().input_tokens, 16952);
}

#[tokio::test]
async fn gemini_exit_codes_and_messages_map_to_kinds() {
    for (scenario, kind) in [
        ("rate-limited-429", ErrorKind::Transient),
        ("invalid-api-key-401", ErrorKind::Fatal),
        ("context-too-long-400", ErrorKind::ContextOverflow),
        ("overloaded-503", ErrorKind::Transient),
        ("max-session-turns", ErrorKind::TurnLimit),
        ("untrusted-folder", ErrorKind::Fatal),
    ] {
        let s = standins!(scenario);
        let (res, p) = attempt(
            &s.runner(PresetKind::Gemini, |_| {}),
            &s.task("T1", "x"),
            1,
            None,
            LIMIT,
        )
        .await;
        let err: RunError = res.unwrap_err();
        assert_eq!(err.kind, kind, "{scenario}: {err:?}");
        if scenario == "rate-limited-429" {
            assert_eq!(err.retry_after, Some(Duration::from_millis(2500)));
            assert!(
                p.iter()
                    .any(|p| matches!(p, Progress::ApiRetry { attempt: 1, .. }))
            );
        }
    }
}

// ------------------------------------------------------------------ through the executor

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_through_the_executor_pauses_on_a_rate_limit_resumes_the_session_and_journals_it() {
    use batch_core::exec::RunEvent;
    use batch_core::{ExecutorBuilder, RunOptions};
    use std::sync::{Arc, Mutex};

    let s = standins!("success");
    let file = s.work.path().join("tasks.md");
    std::fs::write(
        &file,
        "# Shop\n\nContext for every agent.\n\n## Wave 1\n\n\
         - [ ] Add the cart <!-- id: cart -->\n\
         - [ ] Add the checkout <!-- id: checkout -->\n\n\
         ## Wave 2\n\n\
         - [ ] Write the docs <!-- id: docs -->\n",
    )
    .unwrap();
    let runner = s.runner(PresetKind::Claude, |o| {
        o.env.push((
            "STANDIN_SCENARIOS_checkout".into(),
            "rate-limited-429,success".into(),
        ));
    });
    let mut options = RunOptions::default();
    options.backoff_base = Duration::from_millis(100);
    options.backoff_cap = Duration::from_millis(200);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let report = ExecutorBuilder::new(&file)
        .options(options)
        .runner(runner)
        .on_event(move |e| sink.lock().unwrap().push(e.event.clone()))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.summary.succeeded, 3);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.matches("- [x]").count(), 3, "{text}");

    // The rate limit paused launches and the retry did not spend the budget.
    let events = events.lock().unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RunEvent::RateLimited { id, .. } if id == "checkout"))
    );
    assert!(events.iter().any(|e| matches!(e, RunEvent::TaskRetrying { id, kind: ErrorKind::Transient, counts: false, .. } if id == "checkout")));

    // argv: the retry resumed the first attempt's session.
    let calls = s.calls();
    let checkout: Vec<Vec<String>> = calls
        .iter()
        .filter(|c| c["env"]["MDBATCH_TASK_ID"] == "checkout")
        .map(|c| {
            c["argv"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    assert_eq!(checkout.len(), 2);
    let first = flag(&checkout[0], "--session-id").unwrap();
    assert_eq!(flag(&checkout[1], "--resume"), Some(first.clone()));
    // The composed prompt (preamble, task, the rule) reached claude as one argument after `--`.
    let prompt = checkout[0].last().unwrap();
    assert!(
        prompt.contains("Context for every agent.")
            && prompt.contains("Add the checkout")
            && prompt.contains("Do this one task only"),
        "{prompt}"
    );

    // The journal has the session, the adjustment, the kinds and the usage.
    let journal =
        std::fs::read_to_string(batch_core::store::state_dir(&file).join("journal.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |ty: &'static str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|v| v["id"] == "checkout" && v["type"] == ty)
            .collect()
    };
    let ends = of("attempt_end");
    assert_eq!(ends[0]["kind"], "transient");
    assert_eq!(ends[0]["session_id"], first.as_str());
    assert_eq!(ends[1]["outcome"], "succeeded");
    assert_eq!(ends[1]["usage"]["output_tokens"], 23);
    assert!(
        of("attempt_info").iter().any(|v| v["adjusted"]
            == format!("transient error: resuming session {first} after the wait"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_sessions_continues_the_session_of_an_attempt_a_killed_run_left_unfinished() {
    use batch_core::store::journal::{Journal, JournalRecord};
    use batch_core::{ExecutorBuilder, RunOptions};

    let s = standins!("success");
    let file = s.work.path().join("tasks.md");
    std::fs::write(
        &file,
        "# A\n\n## W1\n\n- [ ] Do it <!-- id: t -->\n\n## W2\n\n- [ ] Then <!-- id: u -->\n",
    )
    .unwrap();
    // What a run killed mid-attempt leaves in the journal: a start, the
    // agent's session, no end.
    let state = batch_core::store::state_dir(&file);
    let mut j = Journal::open(&state, "killed-run").unwrap();
    j.append(JournalRecord::AttemptStart {
        id: "t".into(),
        attempt: 1,
        text_hash: batch_core::store::journal::text_hash("Do it"),
    })
    .unwrap();
    j.append(JournalRecord::AttemptInfo {
        id: "t".into(),
        attempt: 1,
        pid: None,
        session_id: Some("sess-killed".into()),
        adjusted: None,
    })
    .unwrap();
    drop(j);

    let mut options = RunOptions::default();
    options.resume_sessions = true;
    let report = ExecutorBuilder::new(&file)
        .options(options)
        .runner(s.runner(PresetKind::Claude, |_| {}))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.summary.succeeded, 2);
    let calls = s.calls();
    let t = calls
        .iter()
        .find(|c| c["env"]["MDBATCH_TASK_ID"] == "t")
        .unwrap();
    let argv: Vec<String> = t["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        flag(&argv, "--resume").as_deref(),
        Some("sess-killed"),
        "{argv:?}"
    );
    let u = calls
        .iter()
        .find(|c| c["env"]["MDBATCH_TASK_ID"] == "u")
        .unwrap();
    assert!(
        u["argv"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a != "--resume"),
        "only the unfinished task resumes"
    );
}

// ------------------------------------------------------------------ shell

#[tokio::test]
async fn shell_runner_runs_a_code_span_task_with_sh_and_refuses_prose() {
    let work = tempfile::tempdir().unwrap();
    let runner = batch_core::runner::presets::build(PresetKind::Shell, Default::default()).unwrap();
    let mut task = batch_core::TaskSpec::new("s1", "`echo made > out.txt && echo done`");
    task = task.with_workdir(work.path().to_path_buf());
    let (res, p) = attempt(&runner, &task, 1, None, LIMIT).await;
    let out = res.unwrap();
    assert_eq!(
        std::fs::read_to_string(work.path().join("out.txt")).unwrap(),
        "made\n"
    );
    assert_eq!(out.summary.as_deref(), Some("done"));
    assert!(p.contains(&Progress::Output {
        stream: Stream::Stdout,
        line: "done".into()
    }));

    let mut failing = batch_core::TaskSpec::new("s2", "`exit 3`");
    failing = failing.with_workdir(work.path().to_path_buf());
    assert_eq!(
        attempt(&runner, &failing, 1, None, LIMIT)
            .await
            .0
            .unwrap_err()
            .kind,
        ErrorKind::Failed
    );

    let prose = batch_core::TaskSpec::new("s3", "Refactor the parser; `cargo test` must pass");
    let err = attempt(&runner, &prose, 1, None, LIMIT)
        .await
        .0
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Fatal);
    assert!(
        err.message.contains("one inline code span"),
        "{}",
        err.message
    );
}
