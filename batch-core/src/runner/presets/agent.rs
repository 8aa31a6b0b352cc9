//! The generic agent runner: one [`SubagentRunner`] over any [`Agent`] (how
//! to call one CLI, how to read its output). Each preset only says what
//! differs; the process, the progress, the readable output tail and the
//! verdict's session and usage are handled here once.

use std::ffi::OsString;
use std::path::Path;

use async_trait::async_trait;

use super::PresetOptions;
use super::attempt::plan_attempt;
use crate::error::RunError;
use crate::runner::process::{ProcessCommand, ProcessExit, spawn_streaming};
use crate::runner::{Progress, RunContext, Stream, SubagentRunner, TaskOutput, TaskSpec, Usage};

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
    /// A fresh session gets an id chosen by mdbatch (the CLI takes one).
    pub(crate) chooses_session_id: bool,
}

/// What every agent CLI takes from [`PresetOptions`]: the program, the
/// model, the first turn budget, extra arguments and environment.
#[derive(Debug, Clone)]
pub(crate) struct Cli {
    pub(crate) program: String,
    pub(crate) model: Option<String>,
    pub(crate) max_turns: Option<u32>,
    pub(crate) agent_args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
}

impl Cli {
    pub(crate) fn new(program: &Path, opts: &PresetOptions) -> Self {
        Self {
            program: program.display().to_string(),
            model: opts.model.clone(),
            max_turns: opts.max_turns,
            agent_args: opts.agent_args.clone(),
            env: opts.env.clone(),
        }
    }
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

/// One agent CLI: how to call it, how to read it. What all CLIs share is in
/// [`Cli`]; an implementation holds only its own settings.
pub(crate) trait Agent: Send + Sync + 'static {
    /// `claude`, `codex`, `gemini`.
    const NAME: &'static str;
    /// What the CLI can do across attempts.
    const CAPS: Caps;
    /// The argv (program first) and extra environment of one attempt.
    fn command(&self, cli: &Cli, plan: &AttemptPlan) -> (Vec<String>, Vec<(String, String)>);
    /// A parser for one attempt's output.
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
    cli: Cli,
}

impl<A: Agent> AgentRunner<A> {
    pub(crate) fn new(agent: A, cli: Cli) -> Self {
        Self { agent, cli }
    }
}

#[async_trait]
impl<A: Agent> SubagentRunner for AgentRunner<A> {
    async fn run(&self, task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError> {
        let base_max_turns = self.cli.max_turns.filter(|_| A::CAPS.max_turns);
        let plan = plan_attempt(task, &ctx, A::CAPS, base_max_turns);
        for what in &plan.adjustments {
            ctx.progress.send(Progress::Adjusted { what: what.clone() });
        }
        let (argv, env) = self.agent.command(&self.cli, &plan);
        let mut env: Vec<(OsString, OsString)> = env
            .into_iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect();
        env.push(("MDBATCH_TASK_ID".into(), task.id().to_string().into()));
        env.push(("MDBATCH_ATTEMPT".into(), ctx.attempt.to_string().into()));
        let cmd = ProcessCommand {
            argv,
            env,
            workdir: Some(task.workdir().to_path_buf()),
            progress_file: None,
            stdin: None,
        };
        let mut parser = self.agent.parser();
        let what = A::NAME;
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
                        if tail.len() == READABLE_TAIL_LINES {
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
        A::NAME
    }
}

/// How many readable lines (messages, tool calls, output) the tail handed to
/// the next attempt's prompt keeps; fewer than [`OUTPUT_TAIL_LINES`](crate::OUTPUT_TAIL_LINES)
/// raw lines, as each says more.
const READABLE_TAIL_LINES: usize = 20;

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
