//! The real agent CLIs, end to end, against the mock API of `mock_api.rs`.
//!
//! Each CLI is installed from the npm registry at the version its preset
//! was tested with, into `target/agent-clis/<name>-<version>/` (kept between
//! runs). When npm or the registry is unavailable the test prints why and
//! returns. Every run gets a fresh HOME; the CLIs are pointed at 127.0.0.1
//! only and get a fake key, so nothing here can reach a real provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use batch_core::runner::presets::{self, PresetKind, PresetOptions};
use batch_core::{ErrorKind, Progress, RunContext, RunError, SubagentRunner, TaskOutput, TaskSpec};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::agent_cli::install;
use crate::mock_api::{MockApi, Reply, anthropic, gemini, openai};

/// One attempt of `task` through `runner`, with everything it reported.
pub async fn attempt(
    runner: &Arc<dyn SubagentRunner>,
    task: &TaskSpec,
    n: u32,
    prev: Option<RunError>,
    timeout: Option<Duration>,
) -> (Result<TaskOutput, RunError>, Vec<Progress>) {
    let (tx, mut rx) = mpsc::channel(10_000);
    let mut ctx = RunContext::new(
        n,
        batch_core::ProgressSink::new(task.id().to_string(), n, tx),
        CancellationToken::new(),
    );
    ctx.previous_error = prev;
    ctx.grace = Duration::from_secs(2);
    ctx.deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let res = runner.run(task, ctx).await;
    let mut items = Vec::new();
    while let Ok(i) = rx.try_recv() {
        items.push(i.progress);
    }
    (res, items)
}

pub fn sessions(p: &[Progress]) -> Vec<String> {
    p.iter()
        .filter_map(|p| match p {
            Progress::Session { id } => Some(id.clone()),
            _ => None,
        })
        .collect()
}

pub fn adjustments(p: &[Progress]) -> Vec<String> {
    p.iter()
        .filter_map(|p| match p {
            Progress::Adjusted { what } => Some(what.clone()),
            _ => None,
        })
        .collect()
}

struct Env {
    _home: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            _home: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    fn home(&self) -> String {
        self._home.path().display().to_string()
    }

    fn task(&self, id: &str, prompt: &str) -> TaskSpec {
        let mut t = TaskSpec::new(id, prompt);
        t = t.with_workdir(self.work.path().to_path_buf());
        t
    }
}

fn claude_runner(bin: &Path, api: &MockApi, env: &Env) -> Arc<dyn SubagentRunner> {
    let mut o = PresetOptions::default();
    o.program = Some(bin.to_path_buf());
    o.env = vec![
        ("HOME".into(), env.home()),
        ("ANTHROPIC_BASE_URL".into(), api.base_url()),
        ("ANTHROPIC_API_KEY".into(), "sk-test".into()),
        ("DISABLE_TELEMETRY".into(), "1".into()),
        ("DISABLE_ERROR_REPORTING".into(), "1".into()),
        ("DISABLE_AUTOUPDATER".into(), "1".into()),
    ];
    presets::build(PresetKind::Claude, o).unwrap()
}

/// The mock's usual conversation: write `hello.txt` in `dir`, then say done.
fn write_then_done(dir: PathBuf) -> impl Fn(&crate::mock_api::Request) -> Reply + Send + Sync {
    move |req| {
        if anthropic::has_tool_result(req) {
            anthropic::text("Done: wrote hello.txt.")
        } else {
            anthropic::tool_use(
                "toolu_01",
                "Write",
                json!({"file_path": dir.join("hello.txt").display().to_string(), "content": "hi\n"}),
            )
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn real_claude_writes_a_file_and_reports_tool_call_session_and_usage() {
    let bin = require_cli!("@anthropic-ai/claude-code", "2.1.330", "claude");
    let env = Env::new();
    let script = write_then_done(env.work.path().to_path_buf());
    let api = MockApi::start(move |req, _| script(req));
    let runner = claude_runner(&bin, &api, &env);
    let task = env.task(
        "T1",
        "-p looks like a flag but is the prompt: create hello.txt",
    );
    let (res, progress) = attempt(&runner, &task, 1, None, Some(Duration::from_secs(120))).await;
    let out = res.unwrap_or_else(|e| panic!("{e:?}\n{progress:#?}"));
    assert_eq!(
        std::fs::read_to_string(env.work.path().join("hello.txt")).unwrap(),
        "hi\n"
    );
    assert!(progress.iter().any(|p| matches!(p, Progress::ToolCall { tool, arg: Some(a) } if tool == "Write" && a.ends_with("hello.txt"))), "{progress:#?}");
    assert!(
        progress
            .iter()
            .any(|p| matches!(p, Progress::Message { text } if text.contains("Done")))
    );
    let usage = out.usage.expect("usage");
    assert!(
        usage.output_tokens > 0 && usage.turns == Some(2) && usage.cost_usd.is_some(),
        "{usage:?}"
    );
    let ids = sessions(&progress);
    assert_eq!(out.session_id.as_deref(), Some(ids[0].as_str()));
    assert!(ids.iter().all(|i| *i == ids[0]), "one session: {ids:?}");
    // The prompt that starts with `-p` reached the model as the prompt.
    assert!(
        api.requests()[0]
            .text()
            .contains("-p looks like a flag but is the prompt")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn real_claude_429_is_transient_and_the_retry_resumes_the_same_session() {
    let bin = require_cli!("@anthropic-ai/claude-code", "2.1.330", "claude");
    let env = Env::new();
    let script = write_then_done(env.work.path().to_path_buf());
    // Claude Code retries once itself (CLAUDE_CODE_MAX_RETRIES=1): two 429s
    // fail the attempt.
    let api = MockApi::start(move |req, i| {
        if i < 2 {
            anthropic::error(
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            )
        } else {
            script(req)
        }
    });
    let runner = claude_runner(&bin, &api, &env);
    let task = env.task("T2", "create hello.txt");
    let (res, p1) = attempt(&runner, &task, 1, None, Some(Duration::from_secs(120))).await;
    let err = res.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err:?}");
    assert!(err.rate_limited);
    let first = err.session_id.clone().expect("session id");
    assert_eq!(sessions(&p1)[0], first);
    let (res, p2) = attempt(&runner, &task, 2, Some(err), Some(Duration::from_secs(120))).await;
    let out = res.unwrap_or_else(|e| panic!("{e:?}\n{p2:#?}"));
    assert_eq!(out.session_id.as_deref(), Some(first.as_str()));
    assert_eq!(
        adjustments(&p2),
        vec![format!(
            "transient error: resuming session {first} after the wait"
        )]
    );
    assert!(env.work.path().join("hello.txt").is_file());
}

#[tokio::test(flavor = "multi_thread")]
async fn real_claude_overload_529_is_transient_and_rate_limited() {
    let bin = require_cli!("@anthropic-ai/claude-code", "2.1.330", "claude");
    let env = Env::new();
    let api = MockApi::start(|_, _| anthropic::error(529, "overloaded_error", "Overloaded"));
    let runner = claude_runner(&bin, &api, &env);
    let (res, progress) = attempt(
        &runner,
        &env.task("T3", "create hello.txt"),
        1,
        None,
        Some(Duration::from_secs(120)),
    )
    .await;
    let err = res.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err:?}");
    assert!(err.rate_limited);
    // Claude Code's own retry (CLAUDE_CODE_MAX_RETRIES=1) is seen as a signal.
    assert!(
        progress.iter().any(|p| matches!(
            p,
            Progress::ApiRetry {
                status: Some(529),
                ..
            }
        )),
        "{progress:#?}"
    );
    assert!(
        api.requests().len() <= 2,
        "the preset turns Claude Code's own retries down"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn real_claude_long_prompt_is_context_overflow_and_the_retry_is_fresh_and_trimmed() {
    let bin = require_cli!("@anthropic-ai/claude-code", "2.1.330", "claude");
    let env = Env::new();
    let dir = env.work.path().to_path_buf();
    // The mock rejects any conversation that carries the long details.
    let api = MockApi::start(move |req, _| {
        if req.text().contains("DETAIL-LINE-0999") {
            anthropic::error(
                400,
                "invalid_request_error",
                "prompt is too long: 250123 tokens > 200000 maximum",
            )
        } else if anthropic::has_tool_result(req) {
            anthropic::text("Done.")
        } else {
            anthropic::tool_use(
                "toolu_01",
                "Write",
                json!({"file_path": dir.join("hello.txt").display().to_string(), "content": "hi\n"}),
            )
        }
    });
    let runner = claude_runner(&bin, &api, &env);
    let mut task = env.task("T4", "create hello.txt");
    task = task.with_preamble("# Project\n\nA long preamble.");
    task = task.with_details(
        (0..1000)
            .map(|i| format!("DETAIL-LINE-{i:04}\n"))
            .collect::<String>(),
    );
    let prompt = format!(
        "{}\n\nTask: create hello.txt\n\n{}",
        task.preamble(),
        task.details()
    );
    task = task.with_prompt(prompt);
    let (res, p1) = attempt(&runner, &task, 1, None, Some(Duration::from_secs(120))).await;
    let err = res.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ContextOverflow, "{err:?}");
    let first = sessions(&p1)[0].clone();
    let (res, p2) = attempt(&runner, &task, 2, Some(err), Some(Duration::from_secs(120))).await;
    res.unwrap_or_else(|e| panic!("{e:?}\n{p2:#?}"));
    let second = sessions(&p2)[0].clone();
    assert_ne!(first, second, "a context overflow is never resumed");
    let adj = adjustments(&p2);
    assert!(
        adj[0].starts_with("context overflow: fresh session (never a resume)"),
        "{adj:?}"
    );
    assert!(
        adj[0].contains("preamble dropped, details cut to 2000 chars"),
        "{adj:?}"
    );
}

// ------------------------------------------------------------------ gemini

fn gemini_runner(bin: &Path, api: &MockApi, env: &Env) -> Arc<dyn SubagentRunner> {
    let gemini_dir = env._home.path().join(".gemini");
    std::fs::create_dir_all(&gemini_dir).unwrap();
    // API-key auth is required with a base URL; one attempt: mdbatch owns the retries.
    std::fs::write(
        gemini_dir.join("settings.json"),
        r#"{"security":{"auth":{"selectedType":"gemini-api-key"}},"general":{"maxAttempts":1},"privacy":{"usageStatisticsEnabled":false}}"#,
    )
    .unwrap();
    let mut o = PresetOptions::default();
    o.program = Some(bin.to_path_buf());
    o.model = Some("gemini-2.5-flash".into());
    o.env = vec![
        ("HOME".into(), env.home()),
        ("GEMINI_API_KEY".into(), "test".into()),
        ("GOOGLE_GEMINI_BASE_URL".into(), api.base_url()),
    ];
    presets::build(PresetKind::Gemini, o).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn real_gemini_429_is_transient_and_the_retry_writes_the_file_in_a_fresh_session() {
    let bin = require_cli!("@google/gemini-cli", "0.61.0", "gemini");
    let env = Env::new();
    let dir = env.work.path().to_path_buf();
    let api = MockApi::start(move |req, i| {
        if req.path.contains(":streamGenerateContent") && i == 0 {
            return gemini::error(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota. Please retry in 2.5s.",
            );
        }
        if gemini::has_function_response(req) {
            gemini::text("Created hello.txt.")
        } else {
            gemini::function_call(
                "write_file",
                json!({"file_path": dir.join("hello.txt").display().to_string(), "content": "hi\n"}),
            )
        }
    });
    let runner = gemini_runner(&bin, &api, &env);
    let task = env.task("G1", "create hello.txt");
    let (res, p1) = attempt(&runner, &task, 1, None, Some(Duration::from_secs(120))).await;
    let err = res.unwrap_err();
    assert_eq!(
        (err.kind, err.rate_limited),
        (ErrorKind::Transient, true),
        "{err:?}\n{p1:#?}"
    );
    let first = err.session_id.clone().expect("session id");
    let (res, p2) = attempt(&runner, &task, 2, Some(err), Some(Duration::from_secs(120))).await;
    let out = res.unwrap_or_else(|e| panic!("{e:?}\n{p2:#?}"));
    assert_eq!(
        std::fs::read_to_string(env.work.path().join("hello.txt")).unwrap(),
        "hi\n"
    );
    assert!(
        p2.iter()
            .any(|p| matches!(p, Progress::ToolCall { tool, .. } if tool == "write_file")),
        "{p2:#?}"
    );
    // Gemini CLI keeps no session when the first request failed: a fresh one.
    assert_eq!(
        adjustments(&p2),
        vec![
            "transient error: fresh session with the same prompt (no session worth resuming)"
                .to_string()
        ]
    );
    assert_ne!(out.session_id.as_deref(), Some(first.as_str()));
    assert!(out.usage.is_some_and(|u| u.input_tokens > 0));
}

// ------------------------------------------------------------------ codex

fn codex_runner(bin: &Path, api: &MockApi, env: &Env) -> Arc<dyn SubagentRunner> {
    let codex_home = env._home.path().join(".codex");
    std::fs::create_dir_all(&codex_home).unwrap();
    std::fs::write(
        codex_home.join("config.toml"),
        format!(
            "model = \"gpt-5.5\"\nmodel_provider = \"mock\"\n\n[model_providers.mock]\nname = \"Mock\"\n\
             base_url = \"{}/v1\"\nenv_key = \"MOCK_API_KEY\"\nwire_api = \"responses\"\n\
             request_max_retries = 0\nstream_max_retries = 0\nsupports_websockets = false\n",
            api.base_url()
        ),
    )
    .unwrap();
    let tmp = env._home.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut o = PresetOptions::default();
    o.program = Some(bin.to_path_buf());
    o.env = vec![
        ("HOME".into(), env.home()),
        ("CODEX_HOME".into(), codex_home.display().to_string()),
        ("TMPDIR".into(), tmp.display().to_string()),
        ("MOCK_API_KEY".into(), "sk-test".into()),
    ];
    presets::build(PresetKind::Codex, o).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn real_codex_runs_a_command_then_answers_and_a_401_is_fatal() {
    let bin = require_cli!("@openai/codex", "0.169.0", "codex");
    let env = Env::new();
    let api = MockApi::start(|req, _| {
        if !req.path.starts_with("/v1/responses") {
            return Reply::Json(404, json!({"error": "not found"}), vec![]);
        }
        if req.text().contains("BAD-KEY-TASK") {
            return openai::error(
                401,
                "invalid_api_key",
                "Incorrect API key provided: sk-test.",
            );
        }
        if openai::has_tool_output(req) {
            openai::text("Created hello.txt.")
        } else {
            openai::exec_command("call_1", "echo hi > hello.txt")
        }
    });
    let runner = codex_runner(&bin, &api, &env);
    let (res, p) = attempt(
        &runner,
        &env.task("C1", "create hello.txt"),
        1,
        None,
        Some(Duration::from_secs(120)),
    )
    .await;
    let out = res.unwrap_or_else(|e| panic!("{e:?}\n{p:#?}"));
    assert!(p.iter().any(|p| matches!(p, Progress::ToolCall { tool, arg: Some(a) } if tool == "command" && a.contains("hello.txt"))), "{p:#?}");
    assert_eq!(out.summary.as_deref(), Some("Created hello.txt."));
    assert!(out.session_id.is_some() && out.usage.is_some_and(|u| u.output_tokens > 0));
    assert_eq!(
        std::fs::read_to_string(env.work.path().join("hello.txt")).unwrap_or_default(),
        "hi\n"
    );

    let (res, _) = attempt(
        &runner,
        &env.task("C2", "BAD-KEY-TASK"),
        1,
        None,
        Some(Duration::from_secs(120)),
    )
    .await;
    assert_eq!(res.unwrap_err().kind, ErrorKind::Fatal);
}
