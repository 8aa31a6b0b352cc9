//! The command runner against real processes, synchronised on pipes and files.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use batch_core::runner::{CancelReason, CommandRunnerBuilder, ProgressItem, Stream};
use batch_core::{ErrorKind, Progress, ProgressSink, RunContext, SubagentRunner, TaskSpec};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes an executable `/bin/sh` script and returns its path.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn spec(&self, id: &str, text: &str) -> TaskSpec {
        let mut t = TaskSpec::new(id, text);
        t = t.with_workdir(self.path().to_path_buf());
        t = t.with_task_file(self.path().join("task.md"));
        t
    }

    fn ctx(&self, attempt: u32) -> (RunContext, mpsc::Receiver<ProgressItem>) {
        let (tx, rx) = mpsc::channel(10_000);
        let mut ctx = RunContext::new(
            attempt,
            ProgressSink::new("t", attempt, tx),
            CancellationToken::new(),
        );
        ctx.log_path = Some(self.path().join(".mdbatch/logs/t/1.log"));
        (ctx, rx)
    }
}

fn lines(rx: &mut mpsc::Receiver<ProgressItem>, stream: Stream) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(item) = rx.try_recv() {
        if let Progress::Output { stream: s, line } = item.progress
            && s == stream
        {
            out.push(line);
        }
    }
    out
}

/// Whether a pid is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// Waits (bounded) for a process killed by us to disappear: reaping by init is asynchronous.
async fn gone(pid: u32) -> bool {
    for _ in 0..200 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn hostile_task_text_reaches_the_command_as_one_argument_and_never_a_shell() {
    let fx = Fixture::new();
    let show = fx.script(
        "show-args",
        r#"for a in "$@"; do printf '[%s]\n' "$a"; done"#,
    );
    let runner = CommandRunnerBuilder::new(format!("'{}' {{task}} --id={{id}}", show.display()))
        .build()
        .unwrap();
    let hostile = "$(touch pwned) `touch pwned2`; rm -rf ~ && echo {id} \"'";
    let (ctx, mut rx) = fx.ctx(1);
    runner.run(&fx.spec("T1", hostile), ctx).await.unwrap();
    assert_eq!(
        lines(&mut rx, Stream::Stdout),
        [format!("[{hostile}]"), "[--id=T1]".to_string()]
    );
    assert!(!fx.path().join("pwned").exists());
    assert!(!fx.path().join("pwned2").exists());

    let (ctx, mut rx) = fx.ctx(1);
    runner.run(&fx.spec("T2", "-rf"), ctx).await.unwrap();
    assert_eq!(lines(&mut rx, Stream::Stdout), ["[-rf]", "[--id=T2]"]);
}

#[tokio::test]
async fn the_task_data_is_in_mdbatch_env_vars_and_stdin_is_closed() {
    let fx = Fixture::new();
    let s = fx.script(
        "env",
        r#"echo "id=$MDBATCH_TASK_ID"; echo "task=$MDBATCH_TASK"; echo "prompt=$MDBATCH_PROMPT"
echo "attempt=$MDBATCH_ATTEMPT"; test -n "$MDBATCH_PROGRESS_FILE" && echo has-progress-file
if read -r line; then echo "stdin gave: $line"; else echo stdin-closed; fi
pwd"#,
    );
    let runner = CommandRunnerBuilder::new(format!("'{}'", s.display()))
        .build()
        .unwrap();
    let mut spec = fx.spec("T7", "write the docs");
    spec = spec.with_prompt("the prompt");
    let (ctx, mut rx) = fx.ctx(3);
    let out = runner.run(&spec, ctx).await.unwrap();
    let got = lines(&mut rx, Stream::Stdout);
    let cwd = std::fs::canonicalize(fx.path()).unwrap();
    assert_eq!(
        got,
        [
            "id=T7".to_string(),
            "task=write the docs".into(),
            "prompt=the prompt".into(),
            "attempt=3".into(),
            "has-progress-file".into(),
            "stdin-closed".into(),
            cwd.display().to_string(),
        ]
    );
    assert_eq!(
        out.summary.as_deref(),
        Some(cwd.display().to_string().as_str())
    );
}

#[tokio::test]
async fn stdout_stderr_and_progress_file_lines_stream_live_and_reach_the_log() {
    let fx = Fixture::new();
    let s = fx.script(
        "talk",
        r#"echo out-1; echo err-1 >&2; echo "step one" >> "$MDBATCH_PROGRESS_FILE"; printf 'no newline'"#,
    );
    let runner = CommandRunnerBuilder::new(format!("'{}'", s.display()))
        .build()
        .unwrap();
    let (ctx, mut rx) = fx.ctx(1);
    let log = ctx.log_path.clone().unwrap();
    let out = runner.run(&fx.spec("t", "x"), ctx).await.unwrap();
    let mut items = Vec::new();
    while let Ok(i) = rx.try_recv() {
        items.push(i.progress);
    }
    assert!(matches!(items[0], Progress::Spawned { pid } if pid > 0));
    let has = |stream: Stream, text: &str| {
        items.iter().any(
            |p| matches!(p, Progress::Output { stream: s, line } if *s == stream && line == text),
        )
    };
    assert!(has(Stream::Stdout, "out-1"));
    assert!(has(Stream::Stdout, "no newline"));
    assert!(has(Stream::Stderr, "err-1"));
    assert!(has(Stream::ProgressFile, "step one"));
    let logged = std::fs::read_to_string(log).unwrap();
    for l in [
        "out-1",
        "[stderr] err-1",
        "[progress] step one",
        "no newline",
    ] {
        assert!(
            logged.lines().any(|x| x == l),
            "{l:?} missing from log:\n{logged}"
        );
    }
    assert!(out.output_tail.unwrap().contains("out-1"));
}

#[tokio::test]
async fn exit_statuses_map_to_error_kinds() {
    let fx = Fixture::new();
    let cases = [
        ("exit 0", None),
        ("echo busy; exit 75", Some(ErrorKind::Transient)),
        ("exit 126", Some(ErrorKind::Fatal)),
        ("exit 127", Some(ErrorKind::Fatal)),
        ("echo broke >&2; exit 3", Some(ErrorKind::Failed)),
        ("kill -9 $$", Some(ErrorKind::Failed)),
    ];
    for (i, (body, want)) in cases.iter().enumerate() {
        let s = fx.script(&format!("s{i}"), body);
        let runner = CommandRunnerBuilder::new(format!("'{}'", s.display()))
            .build()
            .unwrap();
        let (ctx, _rx) = fx.ctx(1);
        let got = runner.run(&fx.spec("t", "x"), ctx).await;
        match (got, want) {
            (Ok(_), None) => {}
            (Err(e), Some(k)) => {
                assert_eq!(e.kind, *k, "{body}: {e}");
                if *k == ErrorKind::Transient {
                    assert!(e.rate_limited);
                }
                if body.contains("broke") {
                    assert!(
                        e.message.contains("exit status 3") && e.message.contains("broke"),
                        "{e}"
                    );
                    assert_eq!(e.output_tail.as_deref(), Some("broke"));
                }
            }
            (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
        }
    }
}

#[tokio::test]
async fn a_missing_program_is_fatal_with_a_clear_message() {
    let fx = Fixture::new();
    let runner = CommandRunnerBuilder::new("mdbatch-no-such-agent {prompt}")
        .build()
        .unwrap();
    let (ctx, _rx) = fx.ctx(1);
    let e = runner.run(&fx.spec("t", "x"), ctx).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Fatal);
    assert_eq!(e.message, "command not found: mdbatch-no-such-agent");
}

#[tokio::test]
async fn a_timeout_terms_the_group_and_kills_it_after_the_grace_period() {
    let fx = Fixture::new();
    let pidfile = fx.path().join("child.pid");
    // Ignores TERM (and so does its child): only the KILL after the grace period ends it.
    let s = fx.script(
        "stubborn",
        &format!(
            "trap '' TERM; sleep 1000 & echo $! > '{}'; echo ready; wait; wait",
            pidfile.display()
        ),
    );
    let runner = CommandRunnerBuilder::new(format!("'{}'", s.display()))
        .build()
        .unwrap();
    let (mut ctx, _rx) = fx.ctx(1);
    ctx.grace = Duration::from_millis(300);
    ctx.deadline = Some(tokio::time::Instant::now() + Duration::from_millis(300));
    let started = Instant::now();
    let e = runner.run(&fx.spec("t", "x"), ctx).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "killed before the grace period"
    );
    // The message names the timeout, not the timeout plus the time it took
    // to stop (which was "0.6s" for a 0.3 s timeout).
    let said = e
        .message
        .split("timed out after ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|d| match d.strip_suffix("ms") {
            Some(ms) => ms.parse::<f64>().ok().map(|ms| ms / 1000.0),
            None => d.strip_suffix('s')?.parse::<f64>().ok(),
        })
        .unwrap_or_else(|| panic!("{e}"));
    assert!(said < 0.55, "{e}");
    assert!(
        gone(read_pid(&pidfile)).await,
        "the grandchild survived the group kill"
    );
}

#[tokio::test]
async fn cancelling_terms_the_group_and_a_polite_process_exits_within_the_grace_period() {
    let fx = Fixture::new();
    let pidfile = fx.path().join("child.pid");
    let s = fx.script(
        "polite",
        &format!(
            "sleep 1000 & echo $! > '{}'; echo ready; wait",
            pidfile.display()
        ),
    );
    let runner = CommandRunnerBuilder::new(format!("'{}'", s.display()))
        .build()
        .unwrap();
    let (mut ctx, mut rx) = fx.ctx(1);
    ctx.grace = Duration::from_secs(60);
    let canceller = ctx.clone();
    let spec = fx.spec("t", "x");
    let run = tokio::spawn(async move { runner.run(&spec, ctx).await });
    // Wait for the script to say it is ready, then interrupt.
    while let Some(item) = rx.recv().await {
        if matches!(&item.progress, Progress::Output { line, .. } if line == "ready") {
            break;
        }
    }
    let started = Instant::now();
    canceller.cancel_with(CancelReason::Interrupted);
    let e = run.await.unwrap().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited for the grace period"
    );
    assert!(gone(read_pid(&pidfile)).await);
}

#[tokio::test]
async fn the_task_ends_when_its_process_exits_even_if_a_grandchild_holds_the_pipe() {
    let fx = Fixture::new();
    let pidfile = fx.path().join("child.pid");
    let s = fx.script(
        "leaky",
        &format!("sleep 1000 & echo $! > '{}'; echo done", pidfile.display()),
    );
    let runner = CommandRunnerBuilder::new(format!("'{}'", s.display()))
        .build()
        .unwrap();
    let (ctx, mut rx) = fx.ctx(1);
    let started = Instant::now();
    runner.run(&fx.spec("t", "x"), ctx).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(lines(&mut rx, Stream::Stdout), ["done"]);
    assert!(
        gone(read_pid(&pidfile)).await,
        "the grandchild outlived its task"
    );
}

#[tokio::test]
async fn binary_and_overlong_output_is_replaced_and_cut_never_fatal() {
    let fx = Fixture::new();
    let s = fx.script(
        "binary",
        "printf 'ok \\377\\376 bytes\\n'; head -c 200000 /dev/zero | tr '\\0' a; echo; echo after",
    );
    let runner = CommandRunnerBuilder::new(format!("'{}'", s.display()))
        .build()
        .unwrap();
    let (ctx, mut rx) = fx.ctx(1);
    runner.run(&fx.spec("t", "x"), ctx).await.unwrap();
    let got = lines(&mut rx, Stream::Stdout);
    assert_eq!(got[0], "ok \u{fffd}\u{fffd} bytes");
    assert!(
        got[1].len() <= 4096 && got[1].ends_with('…'),
        "{}",
        got[1].len()
    );
    assert_eq!(got.last().map(String::as_str), Some("after"));
}

#[tokio::test]
async fn a_task_text_over_128_kib_fails_at_once_as_fatal_with_a_clear_message() {
    let fx = Fixture::new();
    let s = fx.script("agent", "exit 0");
    // Once as an argument, once only through the environment (MDBATCH_TASK).
    for template in [
        format!("'{}' {{task}}", s.display()),
        format!("'{}' {{id}}", s.display()),
    ] {
        let runner = CommandRunnerBuilder::new(&template).build().unwrap();
        let (ctx, _rx) = fx.ctx(1);
        let text = "x".repeat(200 * 1024);
        let e = runner.run(&fx.spec("t", &text), ctx).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Fatal, "{template}: {e}");
        assert!(e.message.contains("task text is too long"), "{e}");
        assert!(e.message.contains(" KiB in one "), "{e}");
    }
}
