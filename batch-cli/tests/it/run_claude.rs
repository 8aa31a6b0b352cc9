//! `mdbatch run --runner claude` with the real Claude Code (installed from
//! npm at the tested version) against the mock Messages API of batch-core's
//! tests: two subagents side by side, one of them retried with an adjusted
//! parameter (turn limit → same session resumed with more turns), and the
//! journal lines that record it. Skipped with a printed reason without npm.
//!
//! Run with `--nocapture` to see the whole transcript.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

#[path = "../../../batch-core/tests/it/mock_api.rs"]
pub(crate) mod mock_api;

#[path = "../../../batch-core/tests/it/agent_cli.rs"]
#[macro_use]
pub(crate) mod agent_cli;

use agent_cli::install;
use mock_api::{MockApi, Request, anthropic};

/// How many tool results the conversation holds so far.
fn tool_results(req: &Request) -> usize {
    req.raw_body.matches("\"tool_result\"").count()
}

/// The mock model: `hello.py` takes three turns (write it, read it back,
/// answer); the README two (write it, answer).
fn model(dir: &Path, req: &Request) -> mock_api::Reply {
    let path = |f: &str| dir.join(f).display().to_string();
    let prompt = req.raw_body.as_str();
    if prompt.contains("README.md that explains") {
        return match tool_results(req) {
            0 => anthropic::tool_use(
                "toolu_r1",
                "Write",
                json!({"file_path": path("README.md"), "content": "# Greeting\n\nRun `python3 hello.py`.\n"}),
            ),
            _ => anthropic::text("Wrote README.md with how to run hello.py."),
        };
    }
    match tool_results(req) {
        0 => anthropic::tool_use(
            "toolu_h1",
            "Write",
            json!({"file_path": path("hello.py"), "content": "print('Hello, world!')\n"}),
        ),
        1 => anthropic::tool_use("toolu_h2", "Read", json!({"file_path": path("hello.py")})),
        _ => anthropic::text("Created hello.py; it prints a greeting."),
    }
}

#[test]
fn run_runner_claude_retries_a_turn_limit_by_resuming_with_more_turns_and_journals_it() {
    let claude = require_cli!("@anthropic-ai/claude-code", "2.1.330", "claude");
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&claude, bin.path().join("claude")).unwrap();
    let dir = project.path().canonicalize().unwrap();
    let api = {
        let dir = dir.clone();
        MockApi::start(move |req, _| model(&dir, req))
    };
    // A task file as a new user writes it.
    std::fs::write(
        dir.join("tasks.md"),
        "# Greeting app\n\nA tiny Python project. Keep it simple.\n\n\
         ## Wave 1: code and docs\n\n\
         - [ ] Create hello.py that prints a greeting\n\
         - [ ] Write a README.md that explains how to run hello.py\n",
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = mdbatch_with_claude(
        &dir,
        &path,
        home.path(),
        &api.base_url(),
        &[
            "run",
            "--runner",
            "claude",
            "--max-turns",
            "2",
            "--verbose",
            "--color",
            "never",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let journal =
        std::fs::read_to_string(dir.join(".mdbatch/tasks.md/journal.jsonl")).unwrap_or_default();
    println!(
        "$ mdbatch run --runner claude --max-turns 2 --verbose\n{stderr}\n$ cat .mdbatch/tasks.md/journal.jsonl\n{journal}"
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    let tasks = std::fs::read_to_string(dir.join("tasks.md")).unwrap();
    assert_eq!(tasks.matches("- [x]").count(), 2, "{tasks}");
    assert_eq!(
        std::fs::read_to_string(dir.join("hello.py")).unwrap(),
        "print('Hello, world!')\n"
    );
    assert!(dir.join("README.md").is_file());

    let lines: Vec<Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let hello: Vec<&Value> = lines
        .iter()
        .filter(|v| {
            v["id"]
                .as_str()
                .is_some_and(|id| id.contains("hello-py-that"))
        })
        .collect();
    let ends: Vec<&&Value> = hello
        .iter()
        .filter(|v| v["type"] == "attempt_end")
        .collect();
    assert_eq!(ends.len(), 2, "{journal}");
    assert_eq!(ends[0]["kind"], "turn_limit");
    assert_eq!(ends[1]["outcome"], "succeeded");
    assert_eq!(
        ends[0]["session_id"], ends[1]["session_id"],
        "the retry resumed the same session"
    );
    let adjusted = hello
        .iter()
        .find_map(|v| v["adjusted"].as_str())
        .expect("the adjustment is journalled");
    assert!(
        adjusted.starts_with("turn limit: resuming session ")
            && adjusted.ends_with("max turns 4 (was 2)"),
        "{adjusted}"
    );
    assert!(
        ends[1]["usage"]["cost_usd"].as_f64().is_some(),
        "usage per attempt"
    );
    // The run's totals count every attempt, the failed one too.
    let spent: u64 = lines
        .iter()
        .filter(|v| v["type"] == "attempt_end")
        .map(|v| v["usage"]["output_tokens"].as_u64().unwrap_or(0))
        .sum();
    let run_end = lines
        .iter()
        .find(|v| v["type"] == "run_end")
        .expect("run_end");
    assert_eq!(
        run_end["summary"]["usage"]["output_tokens"].as_u64(),
        Some(spent),
        "{journal}"
    );
}

/// The worktree a request of the real Claude Code comes from: its system
/// prompt names its working directory.
fn worktree_of(req: &Request) -> Option<String> {
    let body = req.raw_body.as_str();
    let at = body.find(".mdbatch-worktrees/")?;
    let start = body[..at].rfind(['"', ' ', '\n'])? + 1;
    let end = at + body[at..].find(|c: char| c == '"' || c == '\\' || c.is_whitespace())?;
    Some(body[start..end].to_string())
}

#[test]
fn run_runner_claude_in_a_git_repository_runs_each_task_in_its_own_worktree_and_lands_both() {
    let claude = require_cli!("@anthropic-ai/claude-code", "2.1.330", "claude");
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&claude, bin.path().join("claude")).unwrap();
    let dir = project.path().join("greeting");
    std::fs::create_dir(&dir).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let api = {
        let seen = seen.clone();
        MockApi::start(move |req, _| {
            // Each agent writes into the folder it runs in: its worktree.
            let Some(wt) = worktree_of(req) else {
                return anthropic::text("No worktree in sight.");
            };
            seen.lock().unwrap().insert(wt.clone());
            model(Path::new(&wt), req)
        })
    };
    std::fs::write(
        dir.join("tasks.md"),
        "# Greeting app\n\nA tiny Python project. Keep it simple.\n\n\
         ## Wave 1: code and docs\n\n\
         - [ ] Create hello.py that prints a greeting\n\
         - [ ] Write a README.md that explains how to run hello.py\n",
    )
    .unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["config", "user.name", "Ada Lovelace"]);
    git(&["config", "user.email", "ada@example.com"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "tasks"]);
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = mdbatch_with_claude(
        &dir,
        &path,
        home.path(),
        &api.base_url(),
        &[
            "run",
            "--runner",
            "claude",
            "-j",
            "2",
            "--verbose",
            "--color",
            "never",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = git(&["log", "--format=%s%n%(trailers:key=Mdbatch-Task)", "main"]);
    println!("$ mdbatch run --runner claude -j 2 --verbose\n{stderr}\n$ git log\n{log}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Two worktrees, one per task, each agent writing into its own.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    // Both changes landed as one commit each; the checkout shows them; no
    // worktree is left.
    let tasks = std::fs::read_to_string(dir.join("tasks.md")).unwrap();
    assert_eq!(tasks.matches("- [x]").count(), 2, "{tasks}");
    assert_eq!(log.matches("Mdbatch-Task:").count(), 2, "{log}");
    assert_eq!(
        std::fs::read_to_string(dir.join("hello.py")).unwrap(),
        "print('Hello, world!')\n"
    );
    assert!(dir.join("README.md").is_file());
    assert_eq!(git(&["worktree", "list"]).lines().count(), 1);
    assert!(!project.path().join("greeting.mdbatch-worktrees").exists());
}

/// `mdbatch ARGS` in `dir`, with the real Claude Code first on `path`, a
/// home of its own, and the mock API as its provider.
fn mdbatch_with_claude(
    dir: &Path,
    path: &str,
    home: &Path,
    base_url: &str,
    args: &[&str],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mdbatch"))
        .args(args)
        .current_dir(dir)
        .env("PATH", path)
        .env("HOME", home)
        .env("ANTHROPIC_BASE_URL", base_url)
        .env("ANTHROPIC_API_KEY", "sk-test")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env_remove("CI")
        .output()
        .unwrap()
}
