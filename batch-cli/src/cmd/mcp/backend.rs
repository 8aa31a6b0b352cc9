//! The seam between the MCP server and mdbatch itself.
//!
//! The server knows JSON-RPC, schemas, paths and progress tokens; a
//! [`Backend`] knows task files, plans and runs. Every path a backend is
//! given has already been confined to the server's root folder and
//! canonicalised, and every argument has already been validated against the
//! tool's schema, so a backend only reports what went wrong in its own terms
//! ([`BackendError`]).
//!
//! All methods but [`Backend::wait`] are synchronous and expected to return
//! quickly (the server calls them on tokio's blocking pool). `run` in
//! particular must only *start* a detached run and return its id: hosts time
//! tool calls out after about a minute, a batch takes hours.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Options of `plan` (only what changes the plan's shape).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PlanOptions {
    /// Let a module's tasks wait only on the same module in earlier waves
    /// (`--cross-wave`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_wave: Option<bool>,
    /// Restrict the plan to these task ids (`--only`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Vec<String>>,
}

/// Options of `run` (what `mdbatch run --detach` accepts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RunOptions {
    /// Tasks running side by side at most (`--jobs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub jobs: Option<u32>,
    /// Built-in agent to run each task with (`--runner`): `claude` (the
    /// default), `codex`, `gemini`, `shell` or `demo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Instead of `agent`: a command template run per task (`--cmd`), e.g.
    /// `my-agent {prompt}`; never goes through a shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// Retries per task after its first attempt (`--retries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 20))]
    pub retries: Option<u32>,
    /// Stop launching new tasks after the first failure (`--fail-fast`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_fast: Option<bool>,
    /// Let a module's tasks wait only on the same module in earlier waves
    /// (`--cross-wave`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_wave: Option<bool>,
    /// Run only these task ids (`--only`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Vec<String>>,
    /// Spending cap for the whole run in US dollars (`--max-cost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub max_cost_usd: Option<f64>,
    /// Token cap for the whole run (`--max-tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u64>,
    /// At the cap, let running tasks `finish` (the default) or `stop` them (`--at-cap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_cap: Option<String>,
}

/// One problem `check` found in a task file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct Diagnostic {
    /// `error` or `warning`.
    pub severity: Severity,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// What is wrong and what to do.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic at `line:column`.
    pub fn new(severity: Severity, line: u32, column: u32, message: impl Into<String>) -> Self {
        Self {
            severity,
            line,
            column,
            message: message.into(),
        }
    }
}

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Severity {
    /// The file cannot be run as it is.
    Error,
    /// The file runs, but probably not as meant.
    Warning,
}

/// What `run` answers: the detached run has started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct RunStarted {
    /// The run's id (as `mdbatch status` shows it).
    pub run_id: String,
    /// The background process, when there is one.
    pub pid: Option<u32>,
    /// Where the run's own log goes.
    pub log: Option<PathBuf>,
}

impl RunStarted {
    /// A started run.
    pub fn new(run_id: impl Into<String>, pid: Option<u32>, log: Option<PathBuf>) -> Self {
        Self {
            run_id: run_id.into(),
            pid,
            log,
        }
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunState {
    /// No run of this file has been recorded.
    NotStarted,
    /// A run is going on.
    Running,
    /// A stop was asked for; running tasks are being ended.
    Stopping,
    /// The last run ended (see the task counts for how).
    Finished,
    /// The last run was stopped before the end.
    Stopped,
}

/// Where one task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskState {
    /// Not started yet.
    Pending,
    /// An attempt is running.
    Running,
    /// Waiting before its next attempt.
    Retrying,
    /// Finished; its box is checked.
    Done,
    /// Failed for good.
    Failed,
    /// Not run because a task it depends on failed.
    Skipped,
}

/// Why an attempt failed; the kind drives retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub enum FailureKind {
    /// Rate limit, overload, network: retried after a delay.
    Transient,
    /// The attempt ran out of time.
    Timeout,
    /// The prompt did not fit: retried in a fresh session.
    ContextOverflow,
    /// The agent hit its turn limit: resumed with more turns.
    TurnLimit,
    /// The agent finished but reported failure.
    Failed,
    /// Nothing will work until a person acts (bad key, missing binary).
    Fatal,
}

/// One failed attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct Failure {
    /// 1-based attempt number.
    pub attempt: u32,
    /// Why it failed.
    pub kind: FailureKind,
    /// The agent's or mdbatch's message.
    pub message: String,
}

impl Failure {
    /// A failed attempt.
    pub fn new(attempt: u32, kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            attempt,
            kind,
            message: message.into(),
        }
    }
}

/// One task in [`RunStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct TaskStatus {
    /// The task's id.
    pub id: String,
    /// The task's first line.
    pub title: String,
    /// Where it stands.
    pub state: TaskState,
    /// Attempts started so far.
    pub attempts: u32,
    /// Every failed attempt, oldest first.
    pub failures: Vec<Failure>,
}

impl TaskStatus {
    /// A task that has not started.
    pub fn pending(id: impl Into<String>, title: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            state: TaskState::Pending,
            attempts: 0,
            failures: Vec::new(),
        }
    }
}

/// What `status` answers, and what `wait` reports at its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct RunStatus {
    /// The run's id, once there has been a run.
    pub run_id: Option<String>,
    /// Where the run stands.
    pub state: RunState,
    /// Every task of the file, in file order.
    pub tasks: Vec<TaskStatus>,
    /// US dollars the agents reported spending, over the journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent_usd: Option<f64>,
    /// Tokens the agents reported using, over the journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent_tokens: Option<u64>,
}

impl RunStatus {
    /// A status.
    pub fn new(run_id: Option<String>, state: RunState, tasks: Vec<TaskStatus>) -> Self {
        Self {
            run_id,
            state,
            tasks,
            spent_usd: None,
            spent_tokens: None,
        }
    }

    /// How many tasks are in `state`.
    pub fn count(&self, state: TaskState) -> usize {
        self.tasks.iter().filter(|t| t.state == state).count()
    }

    /// Tasks that will not run again in this run (done, failed, skipped).
    pub fn settled(&self) -> usize {
        self.tasks
            .iter()
            .filter(|t| {
                matches!(
                    t.state,
                    TaskState::Done | TaskState::Failed | TaskState::Skipped
                )
            })
            .count()
    }

    /// One line for people: `3/5 settled: 2 done, 1 failed, 0 skipped, 1 running`.
    pub fn summary(&self) -> String {
        format!(
            "{}/{} settled: {} done, {} failed, {} skipped, {} running",
            self.settled(),
            self.tasks.len(),
            self.count(TaskState::Done),
            self.count(TaskState::Failed),
            self.count(TaskState::Skipped),
            self.count(TaskState::Running) + self.count(TaskState::Retrying),
        )
    }
}

/// What `logs` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct TaskLog {
    /// The task's id.
    pub task: String,
    /// Which attempt's output this is.
    pub attempt: u32,
    /// The output's last lines (or all of it when shorter).
    pub text: String,
    /// Lines left out at the start.
    pub omitted_lines: u64,
}

impl TaskLog {
    /// Build from a whole output, keeping its last `tail` lines.
    pub fn tail_of(task: impl Into<String>, attempt: u32, output: &str, tail: usize) -> Self {
        let lines: Vec<&str> = output.lines().collect();
        let keep = lines.len().min(tail);
        let omitted = lines.len() - keep;
        Self {
            task: task.into(),
            attempt,
            text: lines[omitted..].join("\n"),
            omitted_lines: omitted as u64,
        }
    }
}

/// How `wait` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WaitEnd {
    /// The run ended (finished or stopped).
    Finished,
    /// The timeout passed first; the run goes on.
    Timeout,
}

/// What `wait` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct WaitOutcome {
    /// Finished or timed out.
    pub end: WaitEnd,
    /// The run as it stood when the wait ended.
    pub status: RunStatus,
}

impl WaitOutcome {
    /// An outcome.
    pub fn new(end: WaitEnd, status: RunStatus) -> Self {
        Self { end, status }
    }
}

/// What `stop` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct StopOutcome {
    /// The run asked to stop.
    pub run_id: String,
    /// True when running tasks are killed at once rather than given the
    /// grace period.
    pub forced: bool,
}

impl StopOutcome {
    /// An outcome.
    pub fn new(run_id: impl Into<String>, forced: bool) -> Self {
        Self {
            run_id: run_id.into(),
            forced,
        }
    }
}

/// A step of a `wait`, forwarded to the client as an MCP progress
/// notification when it asked for them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WaitProgress {
    /// Tasks settled so far (never decreases during one wait).
    pub settled: u64,
    /// Tasks in the run.
    pub total: u64,
    /// One line for people.
    pub message: String,
}

impl WaitProgress {
    /// The progress a status shows.
    pub fn of(status: &RunStatus) -> Self {
        Self {
            settled: status.settled() as u64,
            total: status.tasks.len() as u64,
            message: status.summary(),
        }
    }
}

/// Where a backend sends [`WaitProgress`] while it waits. Sending never
/// blocks; steps the client cannot take any more are dropped.
#[derive(Debug, Clone)]
pub struct ProgressSink(pub(crate) tokio::sync::mpsc::UnboundedSender<WaitProgress>);

impl ProgressSink {
    /// Report a step.
    pub fn send(&self, progress: WaitProgress) {
        // The receiver only goes away when the request is over: nothing to
        // report to any more.
        let _ = self.0.send(progress);
    }
}

/// Why a backend could not do what was asked. The server turns every one
/// into a tool error result the model can read; none ends the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The task file has problems (the `check` diagnostics say which).
    #[error("{file}: {count} problem(s) in the task file; call `check` to see them")]
    Invalid {
        /// The task file.
        file: PathBuf,
        /// How many errors.
        count: usize,
    },
    /// A run of this file is already going on.
    #[error("{file}: run {run_id} is already going on; `wait` for it or `stop` it first")]
    AlreadyRunning {
        /// The task file.
        file: PathBuf,
        /// The run going on.
        run_id: String,
    },
    /// Nothing has been run for this file (or no run is going on).
    #[error("{file}: no run is going on; start one with `run`")]
    NoRun {
        /// The task file.
        file: PathBuf,
    },
    /// No such task in the file.
    #[error("{file}: no task `{task}`; `status` lists the task ids")]
    NoTask {
        /// The task file.
        file: PathBuf,
        /// The id asked for.
        task: String,
    },
    /// The task has no such attempt (yet).
    #[error("{file}: task `{task}` has no attempt {attempt} (it has {attempts})")]
    NoAttempt {
        /// The task file.
        file: PathBuf,
        /// The task.
        task: String,
        /// The attempt asked for.
        attempt: u32,
        /// Attempts so far.
        attempts: u32,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// Anything else, said for people.
    #[error("{0}")]
    Other(String),
}

/// What the MCP server needs from mdbatch. See the module docs.
pub trait Backend: Send + Sync + 'static {
    /// The plan of `file` as the JSON `mdbatch plan --format json` prints.
    fn plan(&self, file: &Path, options: &PlanOptions) -> Result<serde_json::Value, BackendError>;

    /// Every problem in `file` (empty when it is fine).
    fn check(&self, file: &Path) -> Result<Vec<Diagnostic>, BackendError>;

    /// Start a detached run of `file` and return at once.
    fn run(&self, file: &Path, options: &RunOptions) -> Result<RunStarted, BackendError>;

    /// The latest run of `file`, task by task.
    fn status(&self, file: &Path) -> Result<RunStatus, BackendError>;

    /// The output of `task`'s `attempt` (default: its latest), last `tail`
    /// lines.
    fn logs(
        &self,
        file: &Path,
        task: &str,
        attempt: Option<u32>,
        tail: usize,
    ) -> Result<TaskLog, BackendError>;

    /// Wait until the run of `file` ends or `timeout` passes, sending
    /// progress to `progress` as tasks settle. Must honour `timeout`; the
    /// server drops the future if the client cancels the request.
    fn wait(
        &self,
        file: &Path,
        timeout: Duration,
        progress: ProgressSink,
    ) -> impl Future<Output = Result<WaitOutcome, BackendError>> + Send;

    /// Ask the run of `file` to stop: gracefully, or at once with `now`.
    fn stop(&self, file: &Path, now: bool) -> Result<StopOutcome, BackendError>;

    /// The journal of `file`'s latest run, as stored (JSON lines), or `None`
    /// when there has been no run.
    fn journal(&self, file: &Path) -> Result<Option<String>, BackendError>;
}
