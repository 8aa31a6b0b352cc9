//! The dispatcher loop.
//!
//! [`Executor::run`] parses the task file, plans it, checks that the file can
//! be written, takes the lock and opens the journal; only then does anything
//! run. One dispatcher (this module's `Dispatcher`) owns all run state: the
//! [`Scheduler`](super::schedule::Scheduler), the journal, the event callback
//! and the task-file writer. Each attempt runs as its own tokio task and
//! reports back to the dispatcher; runner progress arrives over a bounded
//! channel (lossy for output lines); lifecycle events are emitted by the
//! dispatcher alone, so they are never lost or reordered.
//!
//! Lifecycle of an attempt: launched when a slot (`--jobs`, lowered by the
//! rate-limit gate), its group limit and its resources allow, highest
//! critical path first; guarded by its deadline and the run's cancellation
//! (cooperative first: the runner's token fires and it has the grace period
//! to stop its processes; then its future is dropped, which kills its process
//! group); then `verify` runs if configured; then the dispatcher journals the
//! end, and on success checks the box (completions that arrive together in
//! one write) before emitting `task_succeeded`.
//!
//! A runner that panics is a failed attempt. If the whole `run` future is
//! dropped, running attempts are aborted (their process groups killed) and a
//! terminal event is still emitted for each, then `run_finished`.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::events::{Envelope, Outcome, RunEvent, RunSummary, SCHEMA_VERSION, millis};
use super::options::{DEFAULT_JOBS, RunOptions};
use super::retry;
use super::schedule::{NodeState, Scheduler};
use crate::doc::{Document, ParseOptions};
use crate::error::{
    ErrorKind, OptionsError, RunError, RunSetupError, RunnerSetupError, StoreError,
};
use crate::plan::{NodeIdx, Plan, PlanOptions};
use crate::runner::{
    CancelReason, CommandRunnerBuilder, Progress, ProgressItem, ProgressSink, PromptTemplate,
    RunContext, SubagentRunner, TaskOutput, TaskSpec, Usage,
};
use crate::store::journal::{AttemptOutcome, Journal, JournalRecord, JournalSummary, text_hash};
use crate::store::lock::RunLock;
use crate::store::{self, taskfile};

/// The event callback type.
pub type EventCallback = Box<dyn FnMut(&Envelope) + Send>;

/// How long after the grace period a runner that ignores its cancellation is
/// still awaited before its future is dropped (which kills its process group).
const STOP_MARGIN: Duration = Duration::from_secs(2);
/// Capacity of the progress channel; output lines beyond it are dropped.
const PROGRESS_CAPACITY: usize = 1024;

/// How one task ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskReport {
    /// Task id.
    pub id: String,
    /// Outcome.
    pub outcome: Outcome,
    /// Attempts made.
    pub attempts: u32,
    /// The last error's kind, if it failed.
    pub kind: Option<ErrorKind>,
    /// The last error's message, or the skip reason.
    pub message: Option<String>,
    /// Duration over all attempts, ms.
    pub duration_ms: u64,
    /// Usage, when known.
    pub usage: Option<Usage>,
    /// Succeeded after a retry.
    pub flaky: bool,
    /// Skipped because the user checked its box by hand during the run: done,
    /// not a failure.
    #[serde(default)]
    pub checked_by_hand: bool,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunReport {
    /// The run id.
    pub run_id: String,
    /// Totals.
    pub summary: RunSummary,
    /// Per task, in plan order.
    pub tasks: Vec<TaskReport>,
}

/// Builds an [`Executor`].
///
/// ```no_run
/// use batch_core::{ExecutorBuilder, RunOptions};
///
/// let options = RunOptions::new().with_cmd("my-agent --prompt {prompt}");
/// let report = ExecutorBuilder::new("task.md")
///     .options(options)
///     .on_event(|e| eprintln!("{}", e.to_json()))
///     .build()?
///     .run_blocking()?;
/// println!("{} succeeded", report.summary.succeeded);
/// # Ok::<(), batch_core::RunSetupError>(())
/// ```
pub struct ExecutorBuilder {
    task_file: PathBuf,
    options: RunOptions,
    runner: Option<Arc<dyn SubagentRunner>>,
    on_event: Option<EventCallback>,
    cancel: CancellationToken,
    prompt: PromptTemplate,
    handle_signals: bool,
}

impl ExecutorBuilder {
    /// A builder for a run of `task_file`.
    pub fn new(task_file: impl Into<PathBuf>) -> Self {
        Self {
            task_file: task_file.into(),
            options: RunOptions::default(),
            runner: None,
            on_event: None,
            cancel: CancellationToken::new(),
            prompt: PromptTemplate::default(),
            handle_signals: false,
        }
    }

    /// Sets the options.
    pub fn options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the runner (default: the command runner from `options.cmd`).
    pub fn runner(mut self, runner: Arc<dyn SubagentRunner>) -> Self {
        self.runner = Some(runner);
        self
    }

    /// Receives every event, in order, from one thread at a time.
    pub fn on_event(mut self, f: impl FnMut(&Envelope) + Send + 'static) -> Self {
        self.on_event = Some(Box::new(f));
        self
    }

    /// A token that interrupts the run when cancelled (like Ctrl-C).
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// The prompt template.
    pub fn prompt_template(mut self, template: PromptTemplate) -> Self {
        self.prompt = template;
        self
    }

    /// Handle SIGINT/SIGTERM: first one interrupts gracefully, second kills at once.
    pub fn handle_signals(mut self, yes: bool) -> Self {
        self.handle_signals = yes;
        self
    }

    /// Checks the options and builds the executor.
    pub fn build(self) -> Result<Executor, RunSetupError> {
        if self.options.jobs == Some(0) {
            return Err(OptionsError::ZeroJobs.into());
        }
        if self.options.timeout == Some(Duration::ZERO) {
            return Err(OptionsError::ZeroTimeout.into());
        }
        let runner = match (self.runner, &self.options.cmd) {
            (Some(r), _) => r,
            (None, Some(cmd)) => Arc::new(
                CommandRunnerBuilder::new(cmd.clone())
                    .build()
                    .map_err(RunnerSetupError::from)?,
            ),
            (None, None) => return Err(OptionsError::NoRunner.into()),
        };
        Ok(Executor {
            task_file: self.task_file,
            options: self.options,
            runner,
            on_event: self.on_event,
            cancel: self.cancel,
            prompt: self.prompt,
            handle_signals: self.handle_signals,
        })
    }
}

/// Runs a task file's plan. Built by [`ExecutorBuilder`].
pub struct Executor {
    task_file: PathBuf,
    options: RunOptions,
    runner: Arc<dyn SubagentRunner>,
    on_event: Option<EventCallback>,
    cancel: CancellationToken,
    prompt: PromptTemplate,
    handle_signals: bool,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("task_file", &self.task_file)
            .field("options", &self.options)
            .field("runner", &self.runner.name())
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// Runs inside an existing tokio runtime.
    ///
    /// Errors only when the run cannot start (the file does not parse or plan,
    /// cannot be written, or is locked by another run); everything that
    /// happens to tasks is in the [`RunReport`] and the events.
    pub async fn run(self) -> Result<RunReport, RunSetupError> {
        let mut d = Dispatcher::prepare(self)?;
        d.run().await;
        Ok(d.report())
    }

    /// Runs on a runtime of its own (callers outside tokio: the CLI, the FFI).
    pub fn run_blocking(self) -> Result<RunReport, RunSetupError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| RunSetupError::Io {
                path: self.task_file.clone(),
                message: "cannot start the async runtime".into(),
                source: Arc::new(e),
            })?;
        rt.block_on(self.run())
    }
}

/// A spawned attempt, aborted if dropped before it finished.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type AttemptResult = Result<TaskOutput, RunError>;
type AttemptFuture =
    Pin<Box<dyn Future<Output = (NodeIdx, Result<AttemptResult, JoinError>)> + Send>>;
type TimerFuture = Pin<Box<dyn Future<Output = NodeIdx> + Send>>;

/// Why the run stopped launching.
#[derive(Debug, Clone)]
enum Stop {
    Interrupted,
    FailFast(String),
    Fatal(String),
}

struct Running {
    ctx: RunContext,
    started: Instant,
    pid: Option<u32>,
    session: Option<String>,
}

#[derive(Default)]
struct NodeRun {
    /// Last attempt number used (continues a journal's unfinished attempt).
    attempt: u32,
    /// Attempts started in this run.
    attempts: u32,
    /// Failed attempts that spent the retry budget.
    counted_failures: u32,
    /// Any failed attempt in this run (for flakiness).
    had_failure: bool,
    /// Time spent waiting on rate limits.
    rate_wait: Duration,
    first_start: Option<Instant>,
    end: Option<Instant>,
    last_error: Option<RunError>,
    usage: Option<Usage>,
    outcome: Option<Outcome>,
    message: Option<String>,
    resume_session: Option<String>,
    running: Option<Running>,
    /// Skipped because its box was checked by hand during the run.
    checked_by_hand: bool,
}

struct NodeConfig {
    spec: Arc<TaskSpec>,
    retries: u32,
    timeout: Option<Duration>,
    wave: usize,
    group: String,
    hash: String,
}

struct Dispatcher {
    run_id: String,
    task_file: PathBuf,
    parse_options: ParseOptions,
    state_dir: PathBuf,
    options: RunOptions,
    runner: Arc<dyn SubagentRunner>,
    on_event: Option<EventCallback>,
    user_cancel: CancellationToken,
    hard_kill: CancellationToken,
    handle_signals: bool,
    doc: Document,
    plan: Plan,
    nodes: Vec<NodeConfig>,
    runs: Vec<NodeRun>,
    sched: Scheduler,
    jobs: u32,
    effective: u32,
    rate_hits: u32,
    gate_until: Option<Instant>,
    /// When the account was last found rate limited: only successes of
    /// attempts launched after it raise the concurrency again.
    last_limit: Option<Instant>,
    stop: Option<Stop>,
    seq: u64,
    journal: Option<Journal>,
    journal_warned: bool,
    _lock: RunLock,
    attempts: FuturesUnordered<AttemptFuture>,
    timers: FuturesUnordered<TimerFuture>,
    progress_tx: mpsc::Sender<ProgressItem>,
    progress_rx: mpsc::Receiver<ProgressItem>,
    pending_writes: Vec<NodeIdx>,
    started: Instant,
    finished: bool,
    unfinished_ids: Vec<String>,
    /// `(task id, process group)` of subagents a previous run left running.
    orphans: Vec<(String, u32)>,
    id_to_node: HashMap<String, NodeIdx>,
    /// Modification time and length of the task file when last parsed.
    file_stamp: Option<FileStamp>,
    /// Ids checked in the task file when last parsed.
    checked_in_file: std::collections::HashSet<String>,
}

/// Modification time and length: cheap evidence that a file changed.
type FileStamp = (std::time::SystemTime, u64);

fn file_stamp(path: &Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Dispatcher {
    fn prepare(ex: Executor) -> Result<Dispatcher, RunSetupError> {
        let task_file = ex.task_file.clone();
        let mut parse_options = ParseOptions::with_path(&task_file);
        parse_options.dialect = ex.options.dialect;
        parse_options.wave_level = ex.options.wave_level;
        let stamp = file_stamp(&task_file);
        let doc = Document::read(&task_file, &parse_options)?;
        let checked_in_file = doc
            .tasks
            .iter()
            .filter(|t| t.checked)
            .map(|t| t.id.clone())
            .collect();
        let plan_options = PlanOptions {
            cross_wave: ex.options.cross_wave,
            only: ex.options.only.clone(),
            include_optional: ex.options.include_optional,
        };
        let plan = Plan::build(&doc, &plan_options)?;

        let state_dir = store::state_dir(&task_file);
        let lock = RunLock::acquire(&state_dir, &task_file)?;
        taskfile::ensure_writable(&task_file)?;
        let run_id = uuid::Uuid::new_v4().to_string();
        let history = JournalSummary::load(&state_dir).unwrap_or_default();
        let journal = Journal::open(&state_dir, run_id.clone())?;

        let abs_file = std::path::absolute(&task_file).unwrap_or_else(|_| task_file.clone());
        let workdir = match &ex.options.workdir {
            Some(w) => std::path::absolute(w).unwrap_or_else(|_| w.clone()),
            None => abs_file
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
        };
        let mut nodes = Vec::with_capacity(plan.nodes.len());
        let mut id_to_node = HashMap::new();
        for node in &plan.nodes {
            let task = &doc.tasks[node.task];
            let mut spec = TaskSpec::new(task.id.clone(), task.text.clone());
            spec.details = task.details.clone();
            spec.section_path = doc.section_path(task.index);
            spec.preamble = doc.preamble.clone();
            spec.task_file = abs_file.clone();
            spec.workdir = workdir.clone();
            spec.verify = task
                .hints
                .verify
                .clone()
                .or_else(|| ex.options.verify.clone());
            spec.prompt = ex.prompt.render(&spec);
            id_to_node.insert(task.id.clone(), node.index);
            nodes.push(NodeConfig {
                hash: text_hash(&task.text),
                spec: Arc::new(spec),
                retries: task.hints.retries.unwrap_or(ex.options.retries),
                timeout: task.hints.timeout.or(ex.options.timeout),
                wave: node.wave,
                group: doc
                    .groups
                    .get(node.group)
                    .map(|g| g.title.clone())
                    .unwrap_or_default(),
            });
        }

        let mut runs: Vec<NodeRun> = plan.nodes.iter().map(|_| NodeRun::default()).collect();
        let mut unfinished_ids = Vec::new();
        let mut orphans = Vec::new();
        for u in &history.unfinished {
            let Some(&i) = id_to_node.get(&u.id) else {
                continue;
            };
            unfinished_ids.push(u.id.clone());
            let r = &mut runs[i];
            r.attempt = u.attempt;
            r.last_error = Some(RunError::new(
                ErrorKind::Cancelled,
                format!("the previous run stopped during attempt {}", u.attempt),
            ));
            // A session is only continued for the same task text.
            let same_text = history
                .tasks
                .get(&u.id)
                .and_then(|h| h.text_hash.as_deref())
                .is_none_or(|h| h == nodes[i].hash);
            if ex.options.resume_sessions && same_text {
                r.resume_session = u.session_id.clone();
            }
            if let Some(pid) = u.pid
                && group_alive(pid)
                && group_runs_task(pid, &u.id)
            {
                orphans.push((u.id.clone(), pid));
            }
        }
        // A task a previous run interrupted (Ctrl-C, a fatal stop) ended its
        // attempt, so it is not in `unfinished`; it is left unfinished all the
        // same, and the run start names it.
        for n in &nodes {
            let id = &n.spec.id;
            if history.tasks.get(id).is_some_and(|h| {
                h.last_outcome == Some(AttemptOutcome::Interrupted) && !h.unfinished
            }) && !unfinished_ids.contains(id)
            {
                unfinished_ids.push(id.clone());
            }
        }
        if ex.options.resume_sessions {
            for (id, h) in &history.tasks {
                if let Some(&i) = id_to_node.get(id)
                    && runs[i].resume_session.is_none()
                    && h.last_outcome != Some(AttemptOutcome::Succeeded)
                    && h.text_hash.as_deref().is_none_or(|t| t == nodes[i].hash)
                {
                    runs[i].resume_session = h.last_session.clone();
                }
            }
        }

        let jobs = ex
            .options
            .jobs
            .or(doc.hints.jobs)
            .unwrap_or(DEFAULT_JOBS)
            .max(1);
        let sched = Scheduler::new(&plan);
        let (progress_tx, progress_rx) = mpsc::channel(PROGRESS_CAPACITY);
        Ok(Dispatcher {
            run_id,
            task_file,
            parse_options,
            state_dir,
            runner: ex.runner,
            on_event: ex.on_event,
            user_cancel: ex.cancel,
            hard_kill: CancellationToken::new(),
            handle_signals: ex.handle_signals,
            options: ex.options,
            doc,
            plan,
            nodes,
            runs,
            sched,
            jobs,
            effective: jobs,
            rate_hits: 0,
            gate_until: None,
            last_limit: None,
            stop: None,
            seq: 0,
            journal: Some(journal),
            journal_warned: false,
            _lock: lock,
            attempts: FuturesUnordered::new(),
            timers: FuturesUnordered::new(),
            progress_tx,
            progress_rx,
            pending_writes: Vec::new(),
            started: Instant::now(),
            finished: false,
            unfinished_ids,
            orphans,
            id_to_node,
            file_stamp: stamp,
            checked_in_file,
        })
    }

    fn emit(&mut self, event: RunEvent) {
        let env = Envelope {
            v: SCHEMA_VERSION,
            seq: self.seq,
            ts: crate::util::now_rfc3339(),
            run_id: self.run_id.clone(),
            event,
        };
        self.seq += 1;
        if let Some(cb) = self.on_event.as_mut() {
            cb(&env);
        }
    }

    fn journal(&mut self, record: JournalRecord) {
        let Some(j) = self.journal.as_mut() else {
            return;
        };
        if let Err(e) = j.append(record)
            && !self.journal_warned
        {
            self.journal_warned = true;
            self.emit(RunEvent::Warning {
                message: format!("{e}; the run goes on without a journal"),
            });
        }
    }

    async fn run(&mut self) {
        self.started = Instant::now();
        self.emit(RunEvent::RunStarted {
            file: self.task_file.display().to_string(),
            total: self.plan.nodes.len(),
            waves: self.doc.waves.len(),
            jobs: self.jobs,
            runner: self.runner.name().to_string(),
            unfinished: self.unfinished_ids.clone(),
        });
        // Subagents of a killed run still working on a task are stopped
        // before the task is launched again, so two never edit the same files.
        for (id, pgid) in std::mem::take(&mut self.orphans) {
            let gone = stop_group(pgid, self.options.grace).await;
            self.emit(RunEvent::Warning {
                message: if gone {
                    format!(
                        "task `{id}`: a subagent of a previous run (process group {pgid}) \
                         was still running; stopped it before running the task again"
                    )
                } else {
                    format!(
                        "task `{id}`: a subagent of a previous run (process group {pgid}) \
                         is still running and could not be stopped"
                    )
                },
            });
        }
        self.journal(JournalRecord::RunStart {
            file: self.task_file.display().to_string(),
            pid: std::process::id(),
            runner: self.runner.name().to_string(),
            total: self.plan.nodes.len(),
        });

        let mut signals = Signals::new(self.handle_signals);
        if let Some(msg) = signals.error.take() {
            self.emit(RunEvent::Warning { message: msg });
        }
        let far = Instant::now() + Duration::from_secs(86400 * 365 * 10);
        self.fill();
        loop {
            if self.attempts.is_empty()
                && self.timers.is_empty()
                && (self.stop.is_some() || !self.sched.has_ready())
            {
                break;
            }
            let gate = self.gate_until;
            let interrupted = matches!(self.stop, Some(Stop::Interrupted));
            tokio::select! {
                biased;
                _ = signals.recv() => {
                    // The second Ctrl-C kills at once; the first one stops
                    // gracefully, even when fail-fast already stopped launching.
                    if interrupted {
                        self.hard_kill.cancel();
                    } else {
                        self.interrupt();
                    }
                }
                _ = self.user_cancel.cancelled(), if !matches!(self.stop, Some(Stop::Interrupted)) => {
                    self.interrupt();
                }
                Some(item) = self.progress_rx.recv() => self.on_progress(item),
                Some((i, res)) = self.attempts.next(), if !self.attempts.is_empty() => {
                    self.drain_progress();
                    self.on_attempt_done(i, res);
                    // Completions that arrived together are written in one go.
                    while let Some(Some((i, res))) = self.attempts.next().now_or_never() {
                        self.drain_progress();
                        self.on_attempt_done(i, res);
                    }
                }
                Some(i) = self.timers.next(), if !self.timers.is_empty() => {
                    self.sched.retry_due(i);
                }
                _ = sleep_until(gate.unwrap_or(far)), if gate.is_some() => {
                    self.gate_until = None;
                }
            }
            self.flush_writes();
            self.fill();
        }
        self.drain_progress();
        self.finish();
    }

    fn drain_progress(&mut self) {
        while let Ok(item) = self.progress_rx.try_recv() {
            self.on_progress(item);
        }
    }

    fn on_progress(&mut self, item: ProgressItem) {
        let Some(&i) = self.id_to_node.get(&item.task_id) else {
            return;
        };
        let mut info = None;
        let current = self.runs[i].attempt;
        if let Some(r) = self.runs[i].running.as_mut()
            && item.attempt == current
        {
            match &item.progress {
                Progress::Spawned { pid } => {
                    r.pid = Some(*pid);
                    info = Some((Some(*pid), None, None));
                }
                Progress::Session { id } => {
                    r.session = Some(id.clone());
                    info = Some((None, Some(id.clone()), None));
                }
                Progress::Adjusted { what } => info = Some((None, None, Some(what.clone()))),
                _ => {}
            }
        }
        if let Some((pid, session_id, adjusted)) = info {
            self.journal(JournalRecord::AttemptInfo {
                id: item.task_id.clone(),
                attempt: item.attempt,
                pid,
                session_id,
                adjusted,
            });
        }
        self.emit(RunEvent::TaskProgress {
            id: item.task_id,
            attempt: item.attempt,
            progress: item.progress,
        });
    }

    fn gate_open(&self) -> bool {
        self.gate_until.is_none_or(|g| Instant::now() >= g)
    }

    fn fill(&mut self) {
        while self.stop.is_none()
            && self.gate_open()
            && (self.sched.running() as u32) < self.effective
        {
            let Some(i) = self.sched.pick() else { break };
            if self.runs[i].attempts == 0 && self.checked_by_hand(i) {
                // Done by the user: dependants go on as after a success.
                self.sched.start(i);
                self.runs[i].checked_by_hand = true;
                self.skip(i, "checked by hand during the run".into());
                self.sched.succeed(i);
                continue;
            }
            self.launch(i);
        }
    }

    /// Whether task `i`'s box is now checked in the file (re-parsed only when
    /// its modification time or length changed since the last look).
    fn checked_by_hand(&mut self, i: NodeIdx) -> bool {
        let stamp = file_stamp(&self.task_file);
        if stamp.is_some() && stamp != self.file_stamp {
            self.file_stamp = stamp;
            // A file that no longer parses is reported when boxes are written.
            if let Ok(doc) = Document::read(&self.task_file, &self.parse_options) {
                self.checked_in_file = doc
                    .tasks
                    .iter()
                    .filter(|t| t.checked)
                    .map(|t| t.id.clone())
                    .collect();
            }
        }
        self.checked_in_file.contains(&self.nodes[i].spec.id)
    }

    fn launch(&mut self, i: NodeIdx) {
        self.sched.start(i);
        let now = Instant::now();
        let cfg = &self.nodes[i];
        let spec = cfg.spec.clone();
        let r = &mut self.runs[i];
        r.attempt += 1;
        r.attempts += 1;
        r.first_start.get_or_insert(now);
        let attempt = r.attempt;
        let token = CancellationToken::new();
        let mut ctx = RunContext::new(
            attempt,
            ProgressSink::new(spec.id.clone(), attempt, self.progress_tx.clone()),
            token,
        );
        ctx.previous_error = r.last_error.clone();
        ctx.deadline = cfg.timeout.map(|t| now + t);
        ctx.grace = self.options.grace;
        let log = store::log_path(&self.state_dir, &spec.id, attempt);
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_file(log.with_extension("progress"));
        ctx.log_path = Some(log);
        if r.attempts == 1 {
            ctx.resume_session = r.resume_session.clone();
        }
        r.running = Some(Running {
            ctx: ctx.clone(),
            started: now,
            pid: None,
            session: None,
        });
        let hash = cfg.hash.clone();
        let (wave, group) = (cfg.wave, cfg.group.clone());
        self.journal(JournalRecord::AttemptStart {
            id: spec.id.clone(),
            attempt,
            text_hash: hash,
        });
        self.emit(RunEvent::TaskStarted {
            id: spec.id.clone(),
            title: spec.text.clone(),
            attempt,
            wave,
            group,
        });
        let runner = self.runner.clone();
        let hard = self.hard_kill.clone();
        let handle = tokio::spawn(run_attempt(runner, spec, ctx, hard));
        let fut = AbortOnDrop(handle);
        self.attempts.push(Box::pin(async move { (i, fut.await) }));
    }

    fn on_attempt_done(&mut self, i: NodeIdx, res: Result<AttemptResult, JoinError>) {
        let result = match res {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_panic() {
                    let p = e.into_panic();
                    let msg = p
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    format!("the runner panicked: {msg}")
                } else {
                    "the attempt was aborted".to_string()
                };
                Err(RunError::new(ErrorKind::Failed, what))
            }
        };
        let now = Instant::now();
        let id = self.nodes[i].spec.id.clone();
        let hash = self.nodes[i].hash.clone();
        let r = &mut self.runs[i];
        let running = r.running.take();
        let dropped = running.as_ref().map_or(0, |x| x.ctx.progress.dropped());
        let log = running.as_ref().and_then(|x| x.ctx.log_path.clone());
        let (started, pid, session) = running
            .map(|x| (x.started, x.pid, x.session))
            .unwrap_or((now, None, None));
        let attempt = r.attempt;
        let (outcome, kind, message, usage, session_id) = match &result {
            Ok(out) => (
                AttemptOutcome::Succeeded,
                None,
                None,
                out.usage,
                out.session_id.clone().or(session),
            ),
            Err(e) => (
                if e.kind == ErrorKind::Cancelled {
                    AttemptOutcome::Interrupted
                } else {
                    AttemptOutcome::Failed
                },
                Some(e.kind),
                Some(e.message.clone()),
                e.usage.as_deref().copied(),
                e.session_id.clone().or(session),
            ),
        };
        self.journal(JournalRecord::AttemptEnd {
            id: id.clone(),
            attempt,
            outcome,
            kind,
            message,
            duration_ms: millis(now - started),
            pid,
            session_id,
            usage,
            text_hash: hash,
        });

        if dropped > 0 {
            let whole = log.map(|l| format!("; the whole output is in {}", l.display()));
            self.emit(RunEvent::Warning {
                message: format!(
                    "`{id}` attempt {attempt}: {dropped} output lines were not shown (the display fell behind){}",
                    whole.unwrap_or_default()
                ),
            });
        }
        match result {
            Ok(out) => {
                let r = &mut self.runs[i];
                if let Some(u) = &out.usage {
                    r.usage.get_or_insert_with(Usage::default).add(u);
                }
                self.rate_hits = 0;
                if self.last_limit.is_none_or(|at| started >= at) {
                    self.effective = (self.effective + 1).min(self.jobs);
                }
                self.pending_writes.push(i);
            }
            Err(e) => self.on_failure(i, e),
        }
    }

    fn on_failure(&mut self, i: NodeIdx, e: RunError) {
        let id = self.nodes[i].spec.id.clone();
        let now = Instant::now();
        self.runs[i].had_failure = true;
        // A failed attempt's tokens were spent too: they count in the task's
        // and the run's totals.
        if let Some(u) = e.usage.as_deref() {
            self.runs[i].usage.get_or_insert_with(Usage::default).add(u);
        }
        if e.kind == ErrorKind::Cancelled
            || (matches!(self.stop, Some(Stop::Interrupted)) && e.kind == ErrorKind::Timeout)
        {
            self.end_task(i, Outcome::Interrupted, Some(e.kind), e.message.clone());
            self.emit(RunEvent::TaskFailed {
                id,
                attempt: self.runs[i].attempt,
                kind: ErrorKind::Cancelled,
                message: e.message.clone(),
                duration_ms: self.task_ms(i),
            });
            self.runs[i].last_error = Some(e);
            self.fail_node(i, "interrupted".into());
            return;
        }
        if e.kind == ErrorKind::Fatal {
            let message = e.message.clone();
            self.final_failure(i, e);
            self.stop_run(Stop::Fatal(format!("`{id}` hit a fatal error: {message}")));
            return;
        }
        if self.stop.is_some() {
            self.final_failure(i, e);
            return;
        }
        if e.kind == ErrorKind::Transient && e.rate_limited {
            self.rate_hits += 1;
            let pause = retry::delay(
                &e,
                self.options.backoff_base,
                self.options.backoff_cap,
                self.rate_hits,
            );
            let r = &mut self.runs[i];
            if r.rate_wait + pause > self.options.max_wait {
                let mut e = e;
                e.message = format!(
                    "rate limited for longer than --max-wait ({}): {}",
                    crate::util::format_duration(self.options.max_wait),
                    e.message
                );
                self.final_failure(i, e);
                return;
            }
            r.rate_wait += pause;
            self.last_limit = Some(now);
            let until = now + pause;
            let gate_was_open = self.gate_open();
            self.gate_until = Some(self.gate_until.map_or(until, |g| g.max(until)));
            if gate_was_open {
                self.effective = (self.effective / 2).max(1);
            }
            self.emit(RunEvent::RateLimited {
                pause_ms: millis(pause),
                concurrency: self.effective,
                id: id.clone(),
            });
            self.schedule_retry(i, e, pause, false);
            return;
        }
        let r = &self.runs[i];
        if retry::retryable(e.kind) && r.counted_failures < self.nodes[i].retries {
            let n = r.counted_failures + 1;
            let delay = retry::delay(&e, self.options.backoff_base, self.options.backoff_cap, n);
            self.runs[i].counted_failures = n;
            self.schedule_retry(i, e, delay, true);
            return;
        }
        self.final_failure(i, e);
    }

    fn schedule_retry(&mut self, i: NodeIdx, e: RunError, delay: Duration, counts: bool) {
        self.emit(RunEvent::TaskRetrying {
            id: self.nodes[i].spec.id.clone(),
            attempt: self.runs[i].attempt,
            kind: e.kind,
            message: e.message.clone(),
            delay_ms: millis(delay),
            counts,
        });
        self.runs[i].last_error = Some(e);
        self.sched.backoff(i);
        let at = Instant::now() + delay;
        self.timers.push(Box::pin(async move {
            sleep_until(at).await;
            i
        }));
    }

    fn final_failure(&mut self, i: NodeIdx, e: RunError) {
        let id = self.nodes[i].spec.id.clone();
        self.end_task(i, Outcome::Failed, Some(e.kind), e.message.clone());
        self.emit(RunEvent::TaskFailed {
            id: id.clone(),
            attempt: self.runs[i].attempt,
            kind: e.kind,
            message: e.message.clone(),
            duration_ms: self.task_ms(i),
        });
        self.runs[i].last_error = Some(e);
        self.fail_node(i, format!("dependency `{id}` failed"));
        if self.options.fail_fast && self.stop.is_none() {
            self.stop_run(Stop::FailFast(id));
        }
    }

    /// Ends a node that did not succeed and skips everything waiting for it.
    fn fail_node(&mut self, i: NodeIdx, reason: String) {
        for d in self.sched.fail(i) {
            self.skip(d, reason.clone());
        }
    }

    fn skip(&mut self, i: NodeIdx, reason: String) {
        self.end_task(i, Outcome::Skipped, None, reason.clone());
        self.journal(JournalRecord::TaskSkipped {
            id: self.nodes[i].spec.id.clone(),
            reason: reason.clone(),
        });
        self.emit(RunEvent::TaskSkipped {
            id: self.nodes[i].spec.id.clone(),
            reason,
        });
    }

    fn end_task(
        &mut self,
        i: NodeIdx,
        outcome: Outcome,
        _kind: Option<ErrorKind>,
        message: String,
    ) {
        let r = &mut self.runs[i];
        r.outcome = Some(outcome);
        r.message = Some(message);
        r.end = Some(Instant::now());
    }

    fn task_ms(&self, i: NodeIdx) -> u64 {
        let r = &self.runs[i];
        match (r.first_start, r.end) {
            (Some(s), Some(e)) => millis(e - s),
            (Some(s), None) => millis(Instant::now() - s),
            _ => 0,
        }
    }

    fn interrupt(&mut self) {
        if matches!(self.stop, Some(Stop::Interrupted)) {
            return;
        }
        self.stop_run(Stop::Interrupted);
    }

    /// Stops launching; cancels running attempts unless only fail-fast; ends
    /// tasks waiting for a retry.
    fn stop_run(&mut self, stop: Stop) {
        let cancel_running = !matches!(stop, Stop::FailFast(_));
        self.stop = Some(stop);
        if cancel_running {
            for r in &self.runs {
                if let Some(x) = &r.running {
                    x.ctx.cancel_with(CancelReason::Interrupted);
                }
            }
        }
        self.timers.clear();
        for i in 0..self.runs.len() {
            if self.sched.state(i) == NodeState::Backoff {
                let e = self.runs[i]
                    .last_error
                    .clone()
                    .unwrap_or_else(|| RunError::new(ErrorKind::Failed, "stopped"));
                if matches!(self.stop, Some(Stop::Interrupted)) {
                    let id = self.nodes[i].spec.id.clone();
                    self.end_task(
                        i,
                        Outcome::Interrupted,
                        Some(ErrorKind::Cancelled),
                        "interrupted before its retry".into(),
                    );
                    self.emit(RunEvent::TaskFailed {
                        id,
                        attempt: self.runs[i].attempt,
                        kind: ErrorKind::Cancelled,
                        message: "interrupted before its retry".into(),
                        duration_ms: self.task_ms(i),
                    });
                    self.fail_node(i, "interrupted".into());
                } else {
                    self.final_failure(i, e);
                }
            }
        }
    }

    fn flush_writes(&mut self) {
        if self.pending_writes.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending_writes);
        let ids: Vec<String> = batch
            .iter()
            .map(|&i| self.nodes[i].spec.id.clone())
            .collect();
        let mut parents_of: HashMap<NodeIdx, Vec<String>> = HashMap::new();
        // Tasks whose box could not be checked, with why.
        let mut unchecked: HashMap<String, String> = HashMap::new();
        match taskfile::check(&self.task_file, &self.parse_options, &ids) {
            Ok(out) => {
                for p in &out.problems {
                    if let StoreError::TaskGone { id, .. } | StoreError::MarkerMismatch { id, .. } =
                        p
                    {
                        unchecked.insert(id.clone(), p.to_string());
                    }
                    self.emit(RunEvent::Warning {
                        message: p.to_string(),
                    });
                }
                for parent in out.parents {
                    // Credit the parent to the task of this batch below it.
                    let owner = batch
                        .iter()
                        .copied()
                        .find(|&i| self.is_ancestor(&parent, i));
                    if let Some(o) = owner {
                        parents_of.entry(o).or_default().push(parent);
                    }
                }
            }
            Err(e) => {
                for id in &ids {
                    unchecked.insert(id.clone(), e.to_string());
                }
                self.emit(RunEvent::Warning {
                    message: format!("{e}; the boxes of {} were not checked", ids.join(", ")),
                })
            }
        }
        for i in batch {
            if let Some(why) = unchecked.remove(&self.nodes[i].spec.id) {
                self.succeeded_unchecked(i, why);
                continue;
            }
            self.end_task(i, Outcome::Succeeded, None, String::new());
            self.runs[i].message = None;
            let r = &self.runs[i];
            let event = RunEvent::TaskSucceeded {
                id: self.nodes[i].spec.id.clone(),
                attempt: r.attempt,
                duration_ms: self.task_ms(i),
                flaky: r.had_failure,
                usage: r.usage,
                parents_checked: parents_of.remove(&i).unwrap_or_default(),
            };
            self.emit(event);
            self.sched.succeed(i);
        }
    }

    /// The task's work succeeded but its box is not checked, so the file does
    /// not show it done: it ends as failed (the next run runs it again), and
    /// the tasks waiting for it go on, its work being done.
    fn succeeded_unchecked(&mut self, i: NodeIdx, why: String) {
        let id = self.nodes[i].spec.id.clone();
        let e = RunError::new(
            ErrorKind::Failed,
            format!("succeeded, but its box could not be checked: {why}"),
        );
        self.end_task(i, Outcome::Failed, Some(e.kind), e.message.clone());
        let r = &self.runs[i];
        self.journal(JournalRecord::AttemptEnd {
            id: id.clone(),
            attempt: r.attempt,
            outcome: AttemptOutcome::Failed,
            kind: Some(e.kind),
            message: Some(e.message.clone()),
            duration_ms: 0,
            pid: None,
            session_id: None,
            usage: None,
            text_hash: self.nodes[i].hash.clone(),
        });
        self.emit(RunEvent::TaskFailed {
            id,
            attempt: self.runs[i].attempt,
            kind: e.kind,
            message: e.message.clone(),
            duration_ms: self.task_ms(i),
        });
        self.runs[i].last_error = Some(e);
        self.sched.succeed(i);
    }

    fn is_ancestor(&self, parent_id: &str, node: NodeIdx) -> bool {
        let mut cur = self
            .doc
            .tasks
            .get(self.plan.nodes[node].task)
            .and_then(|t| t.parent);
        while let Some(p) = cur {
            if self.doc.tasks[p].id == parent_id {
                return true;
            }
            cur = self.doc.tasks[p].parent;
        }
        false
    }

    fn finish(&mut self) {
        let reason = match &self.stop {
            Some(Stop::Interrupted) => "interrupted".to_string(),
            Some(Stop::FailFast(id)) => format!("--fail-fast: `{id}` failed"),
            Some(Stop::Fatal(msg)) => format!("run stopped: {msg}"),
            None => "not run".to_string(),
        };
        for i in self.sched.unfinished() {
            self.sched.finish(i);
            self.skip(i, reason.clone());
        }
        let summary = self.summary();
        self.journal(JournalRecord::RunEnd {
            summary: summary.clone(),
        });
        if let Some(j) = self.journal.as_mut() {
            let _ = j.sync();
        }
        self.finished = true;
        self.emit(RunEvent::RunFinished { summary });
    }

    fn summary(&self) -> RunSummary {
        let mut s = RunSummary {
            total: self.plan.nodes.len(),
            duration_ms: millis(Instant::now() - self.started),
            cancelled: matches!(self.stop, Some(Stop::Interrupted)),
            ..RunSummary::default()
        };
        for r in &self.runs {
            match r.outcome {
                Some(Outcome::Succeeded) => {
                    s.succeeded += 1;
                    if r.had_failure {
                        s.flaky += 1;
                    }
                }
                Some(Outcome::Failed) => s.failed += 1,
                Some(Outcome::Skipped) | None => s.skipped += 1,
                Some(Outcome::Interrupted) => s.interrupted += 1,
            }
            if let Some(u) = &r.usage {
                s.usage.get_or_insert_with(Usage::default).add(u);
            }
        }
        s
    }

    fn report(&self) -> RunReport {
        RunReport {
            run_id: self.run_id.clone(),
            summary: self.summary(),
            tasks: (0..self.runs.len())
                .map(|i| {
                    let r = &self.runs[i];
                    let outcome = r.outcome.unwrap_or(Outcome::Skipped);
                    TaskReport {
                        id: self.nodes[i].spec.id.clone(),
                        outcome,
                        attempts: r.attempts,
                        kind: match outcome {
                            Outcome::Failed | Outcome::Interrupted => {
                                r.last_error.as_ref().map(|e| e.kind)
                            }
                            _ => None,
                        },
                        message: r.message.clone(),
                        duration_ms: self.task_ms(i),
                        usage: r.usage,
                        flaky: outcome == Outcome::Succeeded && r.had_failure,
                        checked_by_hand: r.checked_by_hand,
                    }
                })
                .collect(),
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // The run future was dropped mid-run: attempts are aborted with the
        // FuturesUnordered (killing their process groups); still end every
        // started task and the run with a terminal event.
        self.hard_kill.cancel();
        for i in 0..self.runs.len() {
            if self.runs[i].running.take().is_some() {
                let id = self.nodes[i].spec.id.clone();
                self.emit(RunEvent::TaskFailed {
                    id,
                    attempt: self.runs[i].attempt,
                    kind: ErrorKind::Cancelled,
                    message: "the run was abandoned".into(),
                    duration_ms: self.task_ms(i),
                });
            }
        }
        self.stop = Some(Stop::Interrupted);
        let summary = self.summary();
        self.emit(RunEvent::RunFinished { summary });
    }
}

/// One attempt: the runner under its deadline and the run's cancellation,
/// then the verify command.
async fn run_attempt(
    runner: Arc<dyn SubagentRunner>,
    spec: Arc<TaskSpec>,
    ctx: RunContext,
    hard: CancellationToken,
) -> AttemptResult {
    let out = guarded(runner.run(&spec, ctx.clone()), &ctx, &hard).await?;
    if let Some(verify) = &spec.verify {
        guarded(run_verify(verify, &spec, &ctx), &ctx, &hard).await?;
    }
    Ok(out)
}

/// Awaits `fut`; at the deadline or on cancellation fires the runner's token
/// and gives it the grace period (plus a margin) to stop, then drops it.
async fn guarded<F>(fut: F, ctx: &RunContext, hard: &CancellationToken) -> AttemptResult
where
    F: Future<Output = AttemptResult>,
{
    tokio::pin!(fut);
    let far = Instant::now() + Duration::from_secs(86400 * 365 * 10);
    tokio::select! {
        biased;
        r = &mut fut => return r,
        _ = hard.cancelled() => return Err(RunError::new(ErrorKind::Cancelled, "killed: interrupted twice")),
        _ = ctx.cancel.cancelled() => {}
        _ = sleep_until(ctx.deadline.unwrap_or(far)), if ctx.deadline.is_some() => {
            ctx.cancel_with(CancelReason::Timeout);
        }
    }
    let reason = ctx.cancel_reason().unwrap_or(CancelReason::Interrupted);
    let stopped = |message: String| match reason {
        CancelReason::Timeout => RunError::new(ErrorKind::Timeout, message),
        _ => RunError::new(ErrorKind::Cancelled, message),
    };
    tokio::select! {
        biased;
        r = &mut fut => match r {
            Ok(out) => Ok(out),
            Err(e) if matches!(e.kind, ErrorKind::Timeout | ErrorKind::Cancelled) => Err(e),
            Err(e) => {
                let mut s = stopped(e.message.clone());
                s.output_tail = e.output_tail;
                s.session_id = e.session_id;
                Err(s)
            }
        },
        _ = hard.cancelled() => Err(RunError::new(ErrorKind::Cancelled, "killed: interrupted twice")),
        _ = tokio::time::sleep(ctx.grace + STOP_MARGIN) => Err(stopped(match reason {
            CancelReason::Timeout => "timed out; the runner did not stop within the grace period".into(),
            _ => "interrupted; the runner did not stop within the grace period".into(),
        })),
    }
}

/// Runs the verify command (`sh -c CMD`: the user wrote it as a shell command;
/// no task text is substituted into it) in the task's folder with the task's
/// `MDBATCH_*` variables.
async fn run_verify(verify: &str, spec: &TaskSpec, ctx: &RunContext) -> AttemptResult {
    use crate::runner::process::{ProcessCommand, spawn_streaming};
    let mut vctx = ctx.clone();
    vctx.log_path = ctx
        .log_path
        .as_ref()
        .map(|p| p.with_extension("verify.log"));
    let progress_file = crate::runner::command::progress_file_for(spec, &vctx);
    let cmd = ProcessCommand {
        argv: vec!["sh".into(), "-c".into(), verify.to_string()],
        env: crate::runner::command::task_env(spec, ctx.attempt, &progress_file),
        workdir: Some(spec.workdir.clone()),
        progress_file: None,
        stdin: None,
    };
    let sink = ctx.progress.clone();
    sink.line(format!("verify: {verify}"));
    let exit = spawn_streaming(&cmd, &vctx, |stream, line| {
        sink.send(Progress::Output {
            stream,
            line: format!("verify: {line}"),
        });
    })
    .await?;
    if let Some(e) = exit.stop_error(&format!("verify `{verify}`")) {
        return Err(e);
    }
    if exit.code() == Some(0) {
        return Ok(TaskOutput::default());
    }
    let last = exit
        .tail
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default();
    Err(RunError::new(
        ErrorKind::Failed,
        format!("verify `{verify}` failed with {}{last}", exit.describe()),
    )
    .with_output_tail(exit.tail_opt()))
}

/// Whether a process group still has a live member.
fn group_alive(pgid: u32) -> bool {
    let Ok(p) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    if p <= 1 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks for existence; no memory effects.
    unsafe { libc::kill(-p, 0) == 0 }
}

/// Whether some live member of process group `pgid` is a subagent started
/// for task `id` (its environment holds `MDBATCH_TASK_ID=<id>`), so a pid
/// reused by an unrelated process is never signalled.
fn group_runs_task(pgid: u32, id: &str) -> bool {
    let want = format!("MDBATCH_TASK_ID={id}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| process_group_of(*pid) == Some(pgid))
        .any(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == want.as_bytes()))
        })
}

/// The process group of `pid`, from `/proc/<pid>/stat`.
fn process_group_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces and parentheses):
    // state ppid pgrp ...
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// Whether process group `pgid` has a member that is not a zombie.
fn group_has_live_member(pgid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return group_alive(pgid);
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let mut f = stat
                .rsplit_once(')')
                .map(|r| r.1)
                .unwrap_or("")
                .split_whitespace();
            let state = f.next();
            let pgrp = f.nth(1).and_then(|p| p.parse::<u32>().ok());
            pgrp == Some(pgid) && !matches!(state, Some("Z") | Some("X") | None)
        })
}

/// SIGTERMs process group `pgid`, waits up to `grace` (real time) for it to
/// go, then SIGKILLs it. Returns whether the group is gone.
async fn stop_group(pgid: u32, grace: Duration) -> bool {
    let Ok(p) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    if p <= 1 {
        return false;
    }
    let wait = move |limit: Duration| {
        let until = std::time::Instant::now() + limit;
        while group_has_live_member(pgid) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        !group_has_live_member(pgid)
    };
    // SAFETY: kill(2) on a process group checked to run one of our tasks.
    unsafe { libc::kill(-p, libc::SIGTERM) };
    if tokio::task::spawn_blocking(move || wait(grace))
        .await
        .unwrap_or(false)
    {
        return true;
    }
    // SAFETY: as above.
    unsafe { libc::kill(-p, libc::SIGKILL) };
    tokio::task::spawn_blocking(move || wait(Duration::from_secs(1)))
        .await
        .unwrap_or(false)
}

/// SIGINT/SIGTERM, when the caller asked for signal handling.
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
    error: Option<String>,
}

impl Signals {
    fn new(enabled: bool) -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        if !enabled {
            return Self {
                int: None,
                term: None,
                error: None,
            };
        }
        let mut error = None;
        let mut get = |kind| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                error = Some(format!("cannot handle signals: {e}"));
                None
            }
        };
        let int = get(SignalKind::interrupt());
        let term = get(SignalKind::terminate());
        Self { int, term, error }
    }

    async fn recv(&mut self) {
        let int = async {
            match self.int.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let term = async {
            match self.term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = int => {}
            _ = term => {}
        }
    }
}
