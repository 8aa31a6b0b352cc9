//! Built-in runners for coding-agent CLIs: `claude`, `codex`, `gemini`; the
//! opt-in `shell` runner; the `demo` stand-in agent.
//!
//! # Building one
//!
//! [`build`] turns a [`PresetKind`] and [`PresetOptions`] into a runner; it
//! finds the CLI before any task starts (a missing binary is a
//! [`RunSetupError::Config`] naming the install command):
//!
//! ```no_run
//! use batch_core::runner::presets::{self, PresetKind, PresetOptions};
//!
//! let mut opts = PresetOptions::default();
//! opts.model = Some("claude-sonnet-4-5".into());
//! let runner = presets::build(PresetKind::Claude, opts)?;
//! # Ok::<(), batch_core::RunSetupError>(())
//! ```
//!
//! # How an agent preset runs an attempt
//!
//! 1. `plan_attempt` reads `ctx.attempt`, `ctx.previous_error` and
//!    `ctx.resume_session` and decides the session and the prompt:
//!    - first attempt: a fresh session and the task's prompt (or, with
//!      `--resume-sessions`, the session an interrupted run left);
//!    - after `TurnLimit`: resume the same session with a larger turn budget;
//!    - after `Transient`: resume the session (after the executor's wait);
//!    - after `ContextOverflow`: a fresh session, never a resume, with the
//!      preamble dropped and long details cut;
//!    - after `Failed`/`Timeout`: a fresh session whose prompt carries the
//!      previous error and the tail of its output.
//!
//!    Every change is reported as [`Progress::Adjusted`] before the process
//!    starts, so the display and the journal show it.
//! 2. The CLI runs through the engine's process-group spawner: no shell, stdin
//!    closed, the prompt one argv element placed where it can never be read as
//!    an option.
//! 3. Each output line goes through the preset's stream parser, which turns
//!    the CLI's JSON events into [`Progress`] (session, tool calls, messages,
//!    the CLI's own API retries, usage); lines it does not understand are
//!    kept as plain output, never fatal.
//! 4. At exit the parser judges the attempt from what the CLI said (its last
//!    result/turn event, its error messages, then its exit code) and returns
//!    a [`TaskOutput`] or a [`RunError`] of the right kind, both carrying the
//!    session id and usage.

mod claude;
mod codex;
mod demo;
mod gemini;
mod shell;
pub mod version;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use demo::{DemoRunner, demo_task_file};
pub use shell::ShellRunner;

use super::process::{ProcessCommand, ProcessExit, spawn_streaming};
use super::{Progress, RunContext, Stream, SubagentRunner, TaskOutput, TaskSpec, Usage};
use crate::error::{ErrorKind, RunError, RunSetupError};

/// The built-in runners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PresetKind {
    /// Claude Code: `claude -p … --output-format stream-json --verbose`.
    Claude,
    /// OpenAI Codex CLI: `codex exec --json …`.
    Codex,
    /// Gemini CLI: `gemini --prompt=… --output-format stream-json`.
    Gemini,
    /// A task that is one inline code span runs with `sh -c` (opt-in).
    Shell,
    /// The stand-in agent of `mdbatch demo` (no process, nothing installed).
    Demo,
}

impl PresetKind {
    /// Every kind, in display order.
    pub const ALL: [PresetKind; 5] = [
        PresetKind::Claude,
        PresetKind::Codex,
        PresetKind::Gemini,
        PresetKind::Shell,
        PresetKind::Demo,
    ];

    /// The runner's name (`claude`, `codex`, …), as in `--runner`.
    pub fn name(self) -> &'static str {
        match self {
            PresetKind::Claude => "claude",
            PresetKind::Codex => "codex",
            PresetKind::Gemini => "gemini",
            PresetKind::Shell => "shell",
            PresetKind::Demo => "demo",
        }
    }

    /// The agent CLI's program name, for the three agent presets.
    pub fn program(self) -> Option<&'static str> {
        match self {
            PresetKind::Claude => Some("claude"),
            PresetKind::Codex => Some("codex"),
            PresetKind::Gemini => Some("gemini"),
            _ => None,
        }
    }

    /// How to install the CLI, for messages.
    pub fn install_hint(self) -> Option<&'static str> {
        match self {
            PresetKind::Claude => Some("npm install -g @anthropic-ai/claude-code"),
            PresetKind::Codex => Some("npm install -g @openai/codex"),
            PresetKind::Gemini => Some("npm install -g @google/gemini-cli"),
            _ => None,
        }
    }
}

impl fmt::Display for PresetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PresetKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PresetKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!("unknown runner `{s}`; expected claude, codex, gemini, shell or demo")
            })
    }
}

/// Settings of a preset; `Default` gives the documented defaults.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PresetOptions {
    /// The CLI to run (default: the preset's program looked up on `PATH`).
    pub program: Option<PathBuf>,
    /// `--model` for the CLI.
    pub model: Option<String>,
    /// The turn budget of a first attempt (`--max-turns` for claude); a
    /// turn-limit retry doubles it.
    pub max_turns: Option<u32>,
    /// Extra arguments passed to the CLI before the prompt (`--agent-arg`).
    pub agent_args: Vec<String>,
    /// Claude Code's `--permission-mode`. Default `acceptEdits`: file edits
    /// inside the working folder are allowed, shell commands and anything
    /// else that asks for permission are refused (print mode cannot ask), so
    /// an agent can do ordinary coding work but cannot run arbitrary
    /// commands unless you pass e.g. `--agent-arg=--allowedTools=Bash(cargo test:*)`
    /// or choose `bypassPermissions` yourself.
    pub permission_mode: Option<String>,
    /// Codex's `--sandbox` (default `workspace-write`: writes inside the
    /// working folder, no network).
    pub sandbox: Option<String>,
    /// Gemini CLI's `--approval-mode` (default `yolo`: headless Gemini only
    /// registers its write tools in that mode).
    pub approval_mode: Option<String>,
    /// Extra environment variables for the CLI.
    pub env: Vec<(String, String)>,
}

/// Builds a built-in runner.
///
/// For `claude`, `codex` and `gemini` the CLI must be found (on `PATH`, or at
/// [`PresetOptions::program`]); otherwise the error says how to install it,
/// before any task starts.
pub fn build(
    kind: PresetKind,
    opts: PresetOptions,
) -> Result<Arc<dyn SubagentRunner>, RunSetupError> {
    let program = || resolve_program(kind, &opts);
    Ok(match kind {
        PresetKind::Claude => Arc::new(AgentRunner::new(claude::Claude::new(program()?, &opts))),
        PresetKind::Codex => Arc::new(AgentRunner::new(codex::Codex::new(program()?, &opts))),
        PresetKind::Gemini => Arc::new(AgentRunner::new(gemini::Gemini::new(program()?, &opts))),
        PresetKind::Shell => Arc::new(ShellRunner::new()),
        PresetKind::Demo => Arc::new(DemoRunner::new()),
    })
}

fn resolve_program(kind: PresetKind, opts: &PresetOptions) -> Result<PathBuf, RunSetupError> {
    let name = kind.program().unwrap_or("sh");
    let path_env = opts
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| OsString::from(v))
        .or_else(|| std::env::var_os("PATH"));
    let found = match &opts.program {
        Some(p) if p.components().count() > 1 => p.is_file().then(|| p.clone()),
        Some(p) => find_on_path(&p.to_string_lossy(), path_env.as_deref()),
        None => find_on_path(name, path_env.as_deref()),
    };
    found.ok_or_else(|| {
        let shown = opts
            .program
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| name.to_string());
        RunSetupError::Config(format!(
            "`{shown}` was not found{}; install it ({}) or check with `mdbatch doctor`",
            if opts.program.is_some() {
                ""
            } else {
                " on PATH"
            },
            kind.install_hint().unwrap_or("")
        ))
    })
}

/// Looks `name` up on `path` (a `PATH` value) like a shell would.
pub(crate) fn find_on_path(name: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = path?;
    std::env::split_paths(path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

// ---------------------------------------------------------------------------
// The generic agent runner.

/// What a preset can do across attempts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    /// The CLI can continue a session by id.
    pub(crate) resume: bool,
    /// The CLI takes a turn budget on its command line.
    pub(crate) max_turns: bool,
    /// The CLI keeps a session only once the model answered (Gemini CLI:
    /// a first request that failed leaves nothing to resume).
    pub(crate) resume_needs_progress: bool,
}

/// The session an attempt runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Session {
    /// A new session; the id, when the CLI lets us choose it.
    Fresh(Option<String>),
    /// Continue this session.
    Resume(String),
}

impl Session {
    pub(crate) fn id(&self) -> Option<&str> {
        match self {
            Session::Fresh(id) => id.as_deref(),
            Session::Resume(id) => Some(id),
        }
    }
}

/// What [`plan_attempt`] decided for one attempt.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AttemptPlan {
    pub(crate) session: Session,
    pub(crate) prompt: String,
    pub(crate) max_turns: Option<u32>,
    /// Human-readable changes, each reported as `Progress::Adjusted`.
    pub(crate) adjustments: Vec<String>,
}

/// One agent CLI: how to call it, how to read it.
pub(crate) trait Agent: Send + Sync + 'static {
    /// `claude`, `codex`, `gemini`.
    fn name(&self) -> &'static str;
    fn caps(&self) -> Caps;
    /// Whether a fresh session gets an id chosen by mdbatch.
    fn chooses_session_id(&self) -> bool;
    fn base_max_turns(&self) -> Option<u32>;
    /// The argv (program first) and extra environment of one attempt.
    fn command(&self, plan: &AttemptPlan) -> (Vec<String>, Vec<(String, String)>);
    fn parser(&self) -> Box<dyn AgentStream>;
}

/// Reads one attempt's output.
pub(crate) trait AgentStream: Send {
    /// One output line; progress to report goes to `out`.
    fn line(&mut self, stream: Stream, line: &str, out: &mut Vec<Progress>);
    /// The verdict once the process exited on its own.
    fn finish(&mut self, exit: &ProcessExit) -> Result<TaskOutput, RunError>;
    /// The session id the CLI reported.
    fn session(&self) -> Option<String>;
    /// Usage reported so far.
    fn usage(&self) -> Option<Usage>;
}

/// A [`SubagentRunner`] over an [`Agent`].
pub(crate) struct AgentRunner<A> {
    agent: A,
}

impl<A: Agent> AgentRunner<A> {
    pub(crate) fn new(agent: A) -> Self {
        Self { agent }
    }
}

#[async_trait]
impl<A: Agent> SubagentRunner for AgentRunner<A> {
    async fn run(&self, task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError> {
        let plan = plan_attempt(
            task,
            &ctx,
            self.agent.caps(),
            self.agent.base_max_turns(),
            self.agent.chooses_session_id(),
        );
        for what in &plan.adjustments {
            ctx.progress.send(Progress::Adjusted { what: what.clone() });
        }
        let (argv, env) = self.agent.command(&plan);
        let mut env: Vec<(OsString, OsString)> = env
            .into_iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect();
        env.push(("MDBATCH_TASK_ID".into(), task.id.clone().into()));
        env.push(("MDBATCH_ATTEMPT".into(), ctx.attempt.to_string().into()));
        let cmd = ProcessCommand {
            argv,
            env,
            workdir: Some(task.workdir.clone()),
            progress_file: None,
            stdin: None,
        };
        let mut parser = self.agent.parser();
        let what = self.agent.name();
        // A readable tail (messages, tool calls, plain output) rather than raw
        // JSON lines: it goes into the next attempt's prompt.
        let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let result = {
            let sink = &ctx.progress;
            let parser = &mut parser;
            let tail = &mut tail;
            spawn_streaming(&cmd, &ctx, move |stream, line| {
                let mut out = Vec::new();
                parser.line(stream, line, &mut out);
                for p in out {
                    if let Some(l) = readable(&p) {
                        if tail.len() == TAIL_LINES {
                            tail.pop_front();
                        }
                        tail.push_back(l);
                    }
                    sink.send(p);
                }
            })
            .await
        };
        let tail = (!tail.is_empty()).then(|| Vec::from(tail).join("\n"));
        let session = parser
            .session()
            .or_else(|| plan.session.id().map(str::to_string));
        let usage = parser.usage();
        let outcome = match result {
            Err(e) => Err(e),
            Ok(exit) => match exit.stop_error(what) {
                Some(e) => Err(e),
                None => parser.finish(&exit),
            },
        };
        match outcome {
            Ok(mut out) => {
                out.session_id = out.session_id.or(session);
                out.usage = out.usage.or(usage);
                out.output_tail = tail.or(out.output_tail);
                Ok(out)
            }
            Err(mut e) => {
                if e.session_id.is_none() {
                    e.session_id = session;
                }
                if e.usage.is_none() {
                    e.usage = usage.map(Box::new);
                }
                e.output_tail = tail.or(e.output_tail);
                Err(e)
            }
        }
    }

    fn name(&self) -> &str {
        self.agent.name()
    }
}

/// How many readable lines an attempt's output tail keeps.
const TAIL_LINES: usize = 20;

/// A progress item as one line of a readable output tail.
fn readable(p: &Progress) -> Option<String> {
    Some(match p {
        Progress::Output { line, .. } => line.clone(),
        Progress::ToolCall { tool, arg } => match arg {
            Some(a) => format!("[{tool}] {a}"),
            None => format!("[{tool}]"),
        },
        Progress::Message { text } => text.clone(),
        Progress::ApiRetry {
            attempt,
            status,
            error,
            ..
        } => format!(
            "API retry {attempt}{}{}",
            status.map(|s| format!(" (status {s})")).unwrap_or_default(),
            error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Retries with adjusted parameters.

/// Details longer than this are cut after a context overflow (halved on each
/// further overflow).
pub(crate) const DETAILS_LIMIT: usize = 2000;
/// How much of the previous attempt's output a retry prompt carries.
pub(crate) const TAIL_FOR_PROMPT: usize = 2000;
/// The turn budget after a turn limit when none was set.
const DEFAULT_TURN_BUMP: u32 = 20;

/// Decides the session, prompt and turn budget of an attempt (see the module docs).
pub(crate) fn plan_attempt(
    task: &TaskSpec,
    ctx: &RunContext,
    caps: Caps,
    base_max_turns: Option<u32>,
    choose_id: bool,
) -> AttemptPlan {
    let fresh = || Session::Fresh(choose_id.then(|| uuid::Uuid::new_v4().to_string()));
    let mut plan = AttemptPlan {
        session: fresh(),
        prompt: task.prompt.clone(),
        max_turns: base_max_turns,
        adjustments: Vec::new(),
    };
    // `--resume-sessions`: the journal's session of an earlier, unfinished
    // run (whose attempt the executor reports as cancelled, or not at all).
    if let (Some(id), true) = (&ctx.resume_session, caps.resume)
        && ctx
            .previous_error
            .as_ref()
            .is_none_or(|e| e.kind == ErrorKind::Cancelled)
    {
        plan.session = Session::Resume(id.clone());
        plan.prompt = continue_prompt(task, "mdbatch was interrupted while you worked on it");
        plan.adjustments.push(format!(
            "resuming session {id} left unfinished by an earlier run"
        ));
        return plan;
    }
    let Some(prev) = &ctx.previous_error else {
        return plan;
    };
    let prev_session = prev.session_id.clone().filter(|_| caps.resume);
    match prev.kind {
        ErrorKind::TurnLimit => {
            let used = prev.usage.as_ref().and_then(|u| u.turns).unwrap_or(0);
            let doublings = ctx.attempt.saturating_sub(1).min(8);
            let next = match base_max_turns {
                Some(b) => b.max(1).saturating_mul(1 << doublings).max(used + 1),
                None => (used.saturating_mul(2)).max(DEFAULT_TURN_BUMP),
            };
            let mut what = Vec::new();
            if let Some(id) = prev_session {
                what.push(format!("turn limit: resuming session {id}"));
                plan.prompt = continue_prompt(task, "you ran out of turns before finishing");
                plan.session = Session::Resume(id);
            } else {
                what.push("turn limit: fresh session (no session to resume)".to_string());
            }
            if caps.max_turns {
                plan.max_turns = Some(next);
                what.push(match base_max_turns {
                    Some(b) => format!("max turns {next} (was {b})"),
                    None => format!("max turns {next}"),
                });
            }
            plan.adjustments.push(what.join(", "));
        }
        ErrorKind::Transient => match prev_session.filter(|_| {
            // Claude Code keeps a session even when its first request was
            // refused; Gemini CLI only once the model answered.
            !caps.resume_needs_progress || prev.usage.as_ref().is_some_and(|u| u.output_tokens > 0)
        }) {
            Some(id) => {
                plan.prompt = continue_prompt(
                    task,
                    &format!(
                        "the previous attempt stopped on an API error ({})",
                        short(&prev.message, 160)
                    ),
                );
                plan.adjustments.push(format!(
                    "transient error: resuming session {id} after the wait"
                ));
                plan.session = Session::Resume(id);
            }
            None => plan.adjustments.push(
                "transient error: fresh session with the same prompt (no session worth resuming)"
                    .to_string(),
            ),
        },
        ErrorKind::ContextOverflow => {
            let overflows = ctx.attempt.saturating_sub(1).max(1);
            let limit = DETAILS_LIMIT >> (overflows - 1).min(4);
            let (prompt, what) = trim_prompt(task, limit);
            plan.adjustments.push(format!(
                "context overflow: fresh session (never a resume), prompt trimmed from {} to {} chars{what}",
                task.prompt.chars().count(),
                prompt.chars().count()
            ));
            plan.prompt = prompt;
        }
        ErrorKind::Failed | ErrorKind::Timeout => {
            plan.prompt = failure_prompt(task, ctx.attempt.saturating_sub(1), prev);
            plan.adjustments.push(format!(
                "previous attempt {}: fresh session, prompt carries its error{}",
                if prev.kind == ErrorKind::Timeout {
                    "timed out"
                } else {
                    "failed"
                },
                if prev.output_tail.is_some() {
                    " and output tail"
                } else {
                    ""
                }
            ));
        }
        ErrorKind::Cancelled => {
            if let Some(id) = prev_session {
                plan.prompt =
                    continue_prompt(task, "mdbatch was interrupted while you worked on it");
                plan.adjustments
                    .push(format!("resuming interrupted session {id}"));
                plan.session = Session::Resume(id);
            }
        }
        _ => {}
    }
    plan
}

fn continue_prompt(task: &TaskSpec, why: &str) -> String {
    format!(
        "Continue task {} (\"{}\") from where you stopped: {why}. \
         The instructions you were given at the start of this session still apply: \
         do this one task only and leave the checkboxes of the task file to mdbatch.",
        task.id,
        short(&task.text, 200)
    )
}

fn failure_prompt(task: &TaskSpec, prev_attempt: u32, prev: &RunError) -> String {
    let mut p = task.prompt.clone();
    p.push_str(&format!(
        "\n\nNote from mdbatch: attempt {prev_attempt} at this task did not succeed: {}.\n",
        short(&prev.message, 500)
    ));
    if let Some(tail) = &prev.output_tail {
        p.push_str("The last lines of its output:\n```\n");
        p.push_str(tail_chars(tail, TAIL_FOR_PROMPT));
        p.push_str("\n```\n");
    }
    p.push_str("Check what that attempt left behind in the working folder, then finish the task.");
    p
}

/// The task's prompt without the preamble and with details cut to `limit`
/// characters; works on the composed prompt whatever the template was.
pub(crate) fn trim_prompt(task: &TaskSpec, limit: usize) -> (String, String) {
    let mut prompt = task.prompt.clone();
    let mut what = Vec::new();
    let preamble = task.preamble.trim();
    if !preamble.is_empty() && prompt.contains(preamble) {
        prompt = prompt.replacen(preamble, "", 1);
        what.push("preamble dropped".to_string());
    }
    let details = task.details.trim_end();
    if details.chars().count() > limit && prompt.contains(details) {
        let cut: String = details.chars().take(limit).collect();
        let replacement = format!(
            "{cut}\n[… {} more characters of details cut by mdbatch: the previous attempt overflowed the model's context]",
            details.chars().count() - limit
        );
        prompt = prompt.replacen(details, &replacement, 1);
        what.push(format!("details cut to {limit} chars"));
    }
    let prompt = super::prompt::collapse_blank_lines(&prompt);
    let what = if what.is_empty() {
        " (nothing left to trim)".to_string()
    } else {
        format!(" ({})", what.join(", "))
    };
    (prompt, what)
}

// ---------------------------------------------------------------------------
// Small text helpers shared by the parsers.

/// The first line of `s`, cut to `max` characters with `…`.
pub(crate) fn short(s: &str, max: usize) -> String {
    let line = s.trim().lines().next().unwrap_or("").trim();
    if line.chars().count() <= max {
        let more = s.trim().lines().nth(1).is_some();
        if more && line.chars().count() < max {
            return format!("{line} …");
        }
        return line.to_string();
    }
    let mut out: String = line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The last `max` characters of `s` (on a char boundary).
pub(crate) fn tail_chars(s: &str, max: usize) -> &str {
    let n = s.chars().count();
    if n <= max {
        return s;
    }
    let skip = n - max;
    let idx = s.char_indices().nth(skip).map(|(i, _)| i).unwrap_or(0);
    &s[idx..]
}

/// The main argument of a tool call: a path, a command, a pattern, a URL.
pub(crate) fn main_arg(input: &serde_json::Value) -> Option<String> {
    const KEYS: &[&str] = &[
        "file_path",
        "path",
        "notebook_path",
        "absolute_path",
        "command",
        "cmd",
        "pattern",
        "url",
        "query",
        "description",
        "prompt",
        "dir_path",
    ];
    let obj = input.as_object()?;
    for k in KEYS {
        if let Some(v) = obj.get(*k) {
            if let Some(s) = v.as_str() {
                return Some(short(s, 120));
            }
            if let Some(arr) = v.as_array() {
                let parts: Vec<&str> = arr.iter().filter_map(|x| x.as_str()).collect();
                if !parts.is_empty() {
                    return Some(short(&parts.join(" "), 120));
                }
            }
        }
    }
    None
}

/// A 3-digit HTTP status mentioned in `msg` (`429`, `unexpected status 503`).
pub(crate) fn http_status_in(msg: &str) -> Option<u16> {
    let b = msg.as_bytes();
    let mut i = 0;
    while i + 3 <= b.len() {
        let boundary_before = i == 0 || !b[i - 1].is_ascii_alphanumeric() && b[i - 1] != b'.';
        let digits = b[i..i + 3].iter().all(u8::is_ascii_digit);
        let boundary_after =
            i + 3 == b.len() || !b[i + 3].is_ascii_alphanumeric() && b[i + 3] != b'.';
        if boundary_before && digits && boundary_after {
            let n: u16 = msg[i..i + 3].parse().ok()?;
            if (400..600).contains(&n) {
                return Some(n);
            }
        }
        i += 1;
    }
    None
}

/// A wait the message asks for: `retry in 2.5s`, `retry after 2s`,
/// `try again in 1 hour 5 minutes`, `retry-after: 30`.
pub(crate) fn retry_in(msg: &str) -> Option<Duration> {
    let lower = msg.to_ascii_lowercase();
    const CUES: &[&str] = &[
        "retry in ",
        "retry after ",
        "try again in ",
        "try again after ",
        "retry-after: ",
        "retry_after: ",
    ];
    CUES.iter()
        .filter_map(|cue| lower.find(cue).map(|i| &lower[i + cue.len()..]))
        .find_map(parse_spoken_duration)
}

/// `2.5s`, `2s`, `30`, `1 hour 5 minutes`, `2 days, 3 hours`.
fn parse_spoken_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut any = false;
    let mut rest = s.trim_start();
    loop {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            break;
        }
        let Ok(n) = rest[..num_len].trim_end_matches('.').parse::<f64>() else {
            break;
        };
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let secs = match unit {
            "ms" | "millisecond" | "milliseconds" => 0.001,
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            _ => break,
        };
        total += n * secs;
        any = true;
        rest = rest[unit_len..].trim_start_matches([' ', ',']);
        rest = rest.strip_prefix("and ").unwrap_or(rest);
        if unit.is_empty() {
            break;
        }
    }
    (any && total.is_finite() && total >= 0.0)
        .then(|| Duration::from_secs_f64(total.min(7.0 * 86400.0)))
}

/// When a usage limit resets, as a wait from now: `limit reached|1767000000`
/// (epoch seconds), `resets 3pm`, `resets at 3:30 pm`, `reset at 15:00`,
/// `try again at 4:05 PM`. Clock times are read in the local time zone (the
/// CLI prints the user's zone) and mean their next occurrence.
pub(crate) fn reset_wait(msg: &str, now_epoch: i64) -> Option<Duration> {
    if let Some(i) = msg.find('|') {
        let digits: String = msg[i + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if digits.len() >= 9
            && let Ok(at) = digits.parse::<i64>()
        {
            return Some(Duration::from_secs(
                at.saturating_sub(now_epoch).max(0) as u64
            ));
        }
    }
    let lower = msg.to_ascii_lowercase();
    const CUES: &[&str] = &[
        "resets at ",
        "resets ",
        "reset at ",
        "try again at ",
        "available again at ",
    ];
    let rest = CUES
        .iter()
        .find_map(|c| lower.find(c).map(|i| &lower[i + c.len()..]))?;
    let (hour, minute) = parse_clock(rest)?;
    local_wait_until(now_epoch, hour, minute)
}

/// `3pm`, `3:30 pm`, `15:00` → (hour, minute) on a 24-hour clock.
fn parse_clock(s: &str) -> Option<(u32, u32)> {
    let s = s.trim_start();
    let h_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if h_len == 0 || h_len > 2 {
        return None;
    }
    let mut hour: u32 = s[..h_len].parse().ok()?;
    let mut rest = &s[h_len..];
    let mut minute = 0;
    if let Some(r) = rest.strip_prefix(':') {
        let m_len = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        if m_len != 2 {
            return None;
        }
        minute = r[..2].parse().ok()?;
        rest = &r[2..];
    }
    let rest = rest.trim_start();
    let had_ampm = if rest.starts_with("am") || rest.starts_with("a.m") {
        if hour == 12 {
            hour = 0;
        }
        true
    } else if rest.starts_with("pm") || rest.starts_with("p.m") {
        if hour < 12 {
            hour += 12;
        }
        true
    } else {
        false
    };
    if !had_ampm && !s[h_len..].starts_with(':') {
        return None;
    }
    (hour < 24 && minute < 60).then_some((hour, minute))
}

/// Seconds from `now` until the next local `hour:minute`.
fn local_wait_until(now: i64, hour: u32, minute: u32) -> Option<Duration> {
    let offset = local_utc_offset(now)?;
    let local_secs = (now + offset).rem_euclid(86400);
    let target = i64::from(hour) * 3600 + i64::from(minute) * 60;
    let mut wait = target - local_secs;
    if wait <= 0 {
        wait += 86400;
    }
    Some(Duration::from_secs(wait as u64))
}

/// The local zone's offset from UTC at `epoch`, in seconds.
fn local_utc_offset(epoch: i64) -> Option<i64> {
    let t: libc::time_t = epoch as libc::time_t;
    // SAFETY: `localtime_r` writes only into the `tm` we own and is
    // thread-safe; a zeroed `tm` is a valid value of the plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    ok.then_some(tm.tm_gmtoff)
}

/// Seconds since the epoch.
pub(crate) fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Whether `msg` reads like a usage/subscription limit (as opposed to a
/// per-minute rate limit).
pub(crate) fn is_usage_limit(msg: &str) -> bool {
    let l = msg.to_ascii_lowercase();
    [
        "usage limit",
        "hit your limit",
        "limit reached",
        "limit will reset",
        "out of extra usage",
    ]
    .iter()
    .any(|c| l.contains(c))
}

/// Whether `msg` reads like a failed connection.
pub(crate) fn is_connection_error(msg: &str) -> bool {
    let l = msg.to_ascii_lowercase();
    [
        "connection error",
        "connection failed",
        "connection refused",
        "econnrefused",
        "econnreset",
        "etimedout",
        "enotfound",
        "fetch failed",
        "error sending request",
        "socket hang up",
        "network error",
        "stream disconnected",
    ]
    .iter()
    .any(|c| l.contains(c))
}

/// Whether `msg` says the credentials are bad or missing, or the account has no credit.
pub(crate) fn is_auth_error(msg: &str) -> bool {
    let l = msg.to_ascii_lowercase();
    [
        "invalid api key",
        "incorrect api key",
        "api key not valid",
        "api_key_invalid",
        "invalid x-api-key",
        "authentication_error",
        "authentication failed",
        "unauthorized",
        "unauthenticated",
        "not logged in",
        "please run /login",
        "credit balance is too low",
        "insufficient_quota",
        "quota exceeded. check your plan",
        "permission_error",
        "oauth token has expired",
    ]
    .iter()
    .any(|c| l.contains(c))
}

/// The path of `p` relative to nothing: for messages.
#[allow(dead_code)]
pub(crate) fn display(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::runner::ProgressSink;

    fn ctx(attempt: u32, prev: Option<RunError>) -> RunContext {
        let mut c = RunContext::new(attempt, ProgressSink::discard(), CancellationToken::new());
        c.previous_error = prev;
        c
    }

    fn task() -> TaskSpec {
        let mut t = TaskSpec::new("T7", "add the parser");
        t.preamble = "# Project\nLots of context here.".into();
        t.details = "d".repeat(5000);
        t.prompt = format!(
            "{}\n\nTask T7: add the parser\n\n{}\n\nRules.",
            t.preamble, t.details
        );
        t
    }

    const ALL: Caps = Caps {
        resume: true,
        max_turns: true,
        resume_needs_progress: false,
    };

    fn usage(out: u64, turns: u32) -> Option<Usage> {
        Some(Usage {
            output_tokens: out,
            turns: Some(turns),
            ..Usage::default()
        })
    }

    #[test]
    fn first_attempt_is_a_fresh_session_with_the_task_prompt() {
        let p = plan_attempt(&task(), &ctx(1, None), ALL, Some(10), true);
        assert!(matches!(p.session, Session::Fresh(Some(_))));
        assert_eq!(p.prompt, task().prompt);
        assert_eq!(p.max_turns, Some(10));
        assert!(p.adjustments.is_empty());
    }

    #[test]
    fn resume_sessions_continues_the_journalled_session_on_the_first_attempt() {
        let mut c = ctx(1, None);
        c.resume_session = Some("s-old".into());
        let p = plan_attempt(&task(), &c, ALL, None, true);
        assert_eq!(p.session, Session::Resume("s-old".into()));
        assert!(p.adjustments[0].contains("s-old"));
        // An attempt a killed run left unfinished comes back as `Cancelled`.
        let mut c = ctx(
            2,
            Some(RunError::new(
                ErrorKind::Cancelled,
                "the previous run stopped",
            )),
        );
        c.resume_session = Some("s-old".into());
        let p = plan_attempt(&task(), &c, ALL, None, true);
        assert_eq!(p.session, Session::Resume("s-old".into()));
    }

    #[test]
    fn turn_limit_resumes_the_same_session_with_a_doubled_budget() {
        let e = RunError::new(ErrorKind::TurnLimit, "max turns")
            .with_session(Some("s1".into()))
            .with_usage(usage(20, 11));
        let p = plan_attempt(&task(), &ctx(2, Some(e)), ALL, Some(10), true);
        assert_eq!(p.session, Session::Resume("s1".into()));
        assert_eq!(p.max_turns, Some(20));
        assert_eq!(
            p.adjustments,
            vec!["turn limit: resuming session s1, max turns 20 (was 10)"]
        );
        assert!(p.prompt.contains("ran out of turns"));
    }

    #[test]
    fn context_overflow_never_resumes_and_trims_preamble_and_details() {
        let e = RunError::new(ErrorKind::ContextOverflow, "prompt is too long")
            .with_session(Some("s1".into()));
        let p = plan_attempt(&task(), &ctx(2, Some(e)), ALL, None, true);
        assert!(matches!(p.session, Session::Fresh(Some(ref id)) if id != "s1"));
        assert!(!p.prompt.contains("Lots of context"));
        assert!(p.prompt.contains("more characters of details cut"));
        assert!(p.prompt.chars().count() < 2300, "{}", p.prompt.len());
        assert!(
            p.adjustments[0].starts_with(
                "context overflow: fresh session (never a resume), prompt trimmed from"
            )
        );
        assert!(p.adjustments[0].contains("preamble dropped, details cut to 2000 chars"));
    }

    #[test]
    fn failed_starts_afresh_with_the_error_and_output_tail_in_the_prompt() {
        let e = RunError::new(ErrorKind::Failed, "claude exited with status 1")
            .with_session(Some("s1".into()))
            .with_output_tail(Some("error: tests failed\nthread main panicked".into()));
        let p = plan_attempt(&task(), &ctx(2, Some(e)), ALL, None, true);
        assert!(matches!(p.session, Session::Fresh(_)));
        assert!(p.prompt.starts_with(&task().prompt));
        assert!(
            p.prompt
                .contains("attempt 1 at this task did not succeed: claude exited with status 1")
        );
        assert!(p.prompt.contains("thread main panicked"));
    }

    #[test]
    fn transient_resumes_the_session_when_there_is_one() {
        let e = RunError::new(ErrorKind::Transient, "429");
        let p = plan_attempt(&task(), &ctx(2, Some(e.clone())), ALL, None, true);
        assert!(matches!(p.session, Session::Fresh(_)));
        assert_eq!(p.prompt, task().prompt);
        let e = e.with_session(Some("s1".into()));
        let p = plan_attempt(&task(), &ctx(2, Some(e)), ALL, None, true);
        assert_eq!(p.session, Session::Resume("s1".into()));
        assert!(p.prompt.contains("stopped on an API error (429)"));
    }

    #[test]
    fn retry_waits_are_read_from_messages() {
        assert_eq!(
            retry_in("Please retry in 2.5s.\nSuggested retry after 2s."),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(
            retry_in("try again in 1.4s"),
            Some(Duration::from_millis(1400))
        );
        assert_eq!(
            retry_in("or try again in 2 days 3 hours"),
            Some(Duration::from_secs(2 * 86400 + 3 * 3600))
        );
        assert_eq!(retry_in("Retry-After: 30"), Some(Duration::from_secs(30)));
        assert_eq!(retry_in("no wait here"), None);
    }

    #[test]
    fn usage_limit_reset_times_become_waits() {
        assert_eq!(
            reset_wait("Claude AI usage limit reached|1700003600", 1_700_000_000),
            Some(Duration::from_secs(3600))
        );
        let now = 1_700_000_000;
        let off = local_utc_offset(now).unwrap();
        let local = (now + off).rem_euclid(86400);
        // "resets 3pm" is the next 15:00 local, within a day.
        let w = reset_wait("You've hit your limit · resets 3pm (Europe/Berlin)", now).unwrap();
        assert!(w.as_secs() > 0 && w.as_secs() <= 86400);
        assert_eq!((local + w.as_secs() as i64).rem_euclid(86400), 15 * 3600);
        let w = reset_wait("limit will reset at 9:30 am", now).unwrap();
        assert_eq!(
            (local + w.as_secs() as i64).rem_euclid(86400),
            9 * 3600 + 30 * 60
        );
        assert_eq!(reset_wait("resets soon", now), None);
    }

    #[test]
    fn http_statuses_are_found_only_as_whole_numbers() {
        assert_eq!(
            http_status_in("unexpected status 503 Service Unavailable"),
            Some(503)
        );
        assert_eq!(http_status_in("Request rejected (429) · x"), Some(429));
        assert_eq!(http_status_in("the request is ~250123 tokens"), None);
        assert_eq!(http_status_in("127.0.0.1:18783"), None);
    }

    #[test]
    fn main_argument_of_a_tool_call_is_its_path_or_command() {
        let v = serde_json::json!({"file_path": "/p/hello.txt", "content": "hi"});
        assert_eq!(main_arg(&v).as_deref(), Some("/p/hello.txt"));
        let v = serde_json::json!({"command": "cargo test\n-- more"});
        assert_eq!(main_arg(&v).as_deref(), Some("cargo test …"));
        assert_eq!(main_arg(&serde_json::json!({"x": 1})), None);
    }

    #[test]
    fn a_missing_cli_is_a_setup_error_naming_the_install_command() {
        let mut o = PresetOptions::default();
        o.env
            .push(("PATH".into(), "/nonexistent-mdbatch-dir".into()));
        let Err(e) = build(PresetKind::Claude, o) else {
            panic!("expected an error")
        };
        let msg = e.to_string();
        assert!(msg.contains("`claude` was not found on PATH"), "{msg}");
        assert!(
            msg.contains("npm install -g @anthropic-ai/claude-code"),
            "{msg}"
        );
    }
}
