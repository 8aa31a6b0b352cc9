//! The executor's front door: [`ExecutorBuilder`] and [`Executor`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::dispatcher::Dispatcher;
use super::options::RunOptions;
use super::report::RunReport;
use super::stream::{EventSender, EventStream};
use crate::doc::Document;
use crate::error::{OptionsError, RunSetupError, RunnerSetupError};
use crate::events::Envelope;
use crate::plan::Plan;
use crate::runner::{CommandRunnerBuilder, PromptTemplate, SubagentRunner};

/// The event callback type.
pub type EventCallback = Box<dyn FnMut(&Envelope) + Send>;

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
///
/// A run reads its task file ([`new`](Self::new)), or takes a document (and
/// plan) already in memory ([`from_document`](Self::from_document),
/// [`from_plan`](Self::from_plan)); where it keeps its journal, lock and logs
/// ([`state_dir`](Self::state_dir)) and whether it checks boxes in the file
/// ([`write_back`](Self::write_back)) are the caller's choice.
pub struct ExecutorBuilder {
    source: Source,
    state: StateDir,
    write_back: bool,
    options: RunOptions,
    runner: Option<Arc<dyn SubagentRunner>>,
    on_event: Option<EventCallback>,
    cancel: CancellationToken,
    prompt: PromptTemplate,
    handle_signals: bool,
}

impl ExecutorBuilder {
    /// A builder for a run of `task_file`, read and planned when the run
    /// starts.
    pub fn new(task_file: impl Into<PathBuf>) -> Self {
        Self::with_source(Source::File(task_file.into()))
    }

    /// A builder for a run of a document already parsed; it is planned with
    /// the options when the run starts. Its [`path`](Document::path) is the
    /// task file for write-back and the state folder; without one, turn
    /// [`write_back`](Self::write_back) off and choose a
    /// [`state_dir`](Self::state_dir).
    pub fn from_document(doc: Document) -> Self {
        Self::with_source(Source::Document(Box::new(doc), None))
    }

    /// A builder for a run of `plan`, built from `doc` (the plan options in
    /// [`RunOptions`] are then not used).
    pub fn from_plan(doc: Document, plan: Plan) -> Self {
        Self::with_source(Source::Document(Box::new(doc), Some(Box::new(plan))))
    }

    fn with_source(source: Source) -> Self {
        Self {
            source,
            state: StateDir::default(),
            write_back: true,
            options: RunOptions::default(),
            runner: None,
            on_event: None,
            cancel: CancellationToken::new(),
            prompt: PromptTemplate::default(),
            handle_signals: false,
        }
    }

    /// Where the journal, the lock and the logs live (default:
    /// [`StateDir::BesideFile`]).
    pub fn state_dir(mut self, state: StateDir) -> Self {
        self.state = state;
        self
    }

    /// Whether a task's box is checked in the task file when it succeeds
    /// (default: on). Off, the file is neither read again nor written: for a
    /// host that keeps its own record of what is done.
    pub fn write_back(mut self, yes: bool) -> Self {
        self.write_back = yes;
        self
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

    /// Receives every event, in order, from one thread at a time (the
    /// dispatcher's).
    ///
    /// The run waits while the callback runs: keep it quick, or consume
    /// [`Executor::events`] instead, which never stalls the run. A callback
    /// that panics (a `println!` on a closed pipe) is caught, never called
    /// again, and interrupts the run as a cancellation would; the host goes on.
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

    /// Handle SIGINT/SIGTERM/SIGHUP (SIGHUP only when not ignored): first one interrupts gracefully, second kills at once.
    pub fn handle_signals(mut self, yes: bool) -> Self {
        self.handle_signals = yes;
        self
    }

    /// Checks the options and builds the executor.
    ///
    /// # Errors
    ///
    /// [`RunSetupError::Options`] when `jobs` is 0, the timeout is 0, there is
    /// no runner (neither [`runner`](Self::runner) nor `options.cmd`), or a
    /// document without a path is to
    /// be written back or to keep its state beside its file;
    /// [`RunSetupError::Runner`] when the command template does not parse.
    pub fn build(self) -> Result<Executor, RunSetupError> {
        let task_file = match &self.source {
            Source::File(p) => Some(p.clone()),
            Source::Document(doc, _) => doc.path.clone(),
        };
        if task_file.is_none() {
            if self.write_back {
                return Err(OptionsError::WriteBackWithoutPath.into());
            }
            if self.state == StateDir::BesideFile {
                return Err(OptionsError::StateBesideWithoutPath.into());
            }
        }
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
            task_file,
            source: self.source,
            state: self.state,
            write_back: self.write_back,
            options: self.options,
            runner,
            on_event: self.on_event,
            cancel: self.cancel,
            prompt: self.prompt,
            handle_signals: self.handle_signals,
            streams: Vec::new(),
        })
    }
}

/// What a run runs.
pub(super) enum Source {
    File(PathBuf),
    Document(Box<Document>, Option<Box<Plan>>),
}

/// Where a run keeps its journal, lock and attempt logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateDir {
    /// `.mdbatch/<file name>/` beside the task file (its real path), shared
    /// with `mdbatch status`, `logs` and `reset`.
    #[default]
    BesideFile,
    /// This folder (created if missing).
    At(PathBuf),
    /// None: no journal, no lock, no logs, and no history from earlier runs
    /// (resuming sessions and finding a killed run's subagents need it).
    Off,
}

/// Runs a task file's plan. Built by [`ExecutorBuilder`].
pub struct Executor {
    pub(super) task_file: Option<PathBuf>,
    pub(super) source: Source,
    pub(super) state: StateDir,
    pub(super) write_back: bool,
    pub(super) options: RunOptions,
    pub(super) runner: Arc<dyn SubagentRunner>,
    pub(super) on_event: Option<EventCallback>,
    pub(super) cancel: CancellationToken,
    pub(super) prompt: PromptTemplate,
    pub(super) handle_signals: bool,
    pub(super) streams: Vec<EventSender>,
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
    /// The run's events as a stream, in addition to the callback (call it
    /// as many times as you want streams). A slow consumer never stalls the
    /// run: see [`EventStream`] for what it may lose.
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// # async fn demo(runner: std::sync::Arc<dyn batch_core::SubagentRunner>) -> Result<(), batch_core::RunSetupError> {
    /// let mut executor = batch_core::ExecutorBuilder::new("task.md").runner(runner).build()?;
    /// let mut events = executor.events();
    /// let shown = tokio::spawn(async move {
    ///     while let Some(e) = events.next().await {
    ///         println!("{}", e.to_json());
    ///     }
    /// });
    /// let report = executor.run().await?;
    /// shown.await.ok();
    /// # Ok(()) }
    /// ```
    pub fn events(&mut self) -> EventStream {
        let (tx, rx) = super::stream::channel();
        self.streams.push(tx);
        rx
    }

    /// Runs inside an existing tokio runtime.
    ///
    /// Reading, parsing and planning the file, the lock, the journal and
    /// every write-back run off the runtime's workers (`spawn_blocking` and a
    /// journal thread); the runtime needs the time driver (`enable_time`,
    /// included in `enable_all`) and, for the command runner, the I/O driver.
    ///
    /// # Errors
    ///
    /// Only when the run cannot start: the file cannot be read, does not
    /// parse or plan, cannot be written, or another run holds its lock
    /// ([`RunSetupError`]). Everything that happens to tasks is in the
    /// [`RunReport`] and the events.
    ///
    /// # Panics
    ///
    /// Never because of a task, a runner or an event callback (a panicking
    /// runner is a failed attempt; a panicking callback is not called again
    /// and interrupts the run). A panic inside mdbatch itself is passed on.
    ///
    /// # Cancel safety
    ///
    /// Cancel a run with the [`cancel_token`](ExecutorBuilder::cancel_token):
    /// running attempts are cancelled, given the grace period, and the
    /// report comes back. Dropping this future instead abandons the run at
    /// once: running attempts are aborted (their process groups killed), a
    /// terminal event is still emitted for each and then `run_finished`, the
    /// journal keeps what was queued, and the lock is released; boxes of
    /// tasks that had not been written back stay unchecked.
    pub async fn run(self) -> Result<RunReport, RunSetupError> {
        // Reading, parsing and planning the file, the lock and the journal
        // are blocking work: off the runtime's workers.
        let mut d = match tokio::task::spawn_blocking(move || Dispatcher::prepare(self)).await {
            Ok(d) => d?,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        d.run().await;
        Ok(d.report())
    }

    /// Runs on a runtime of its own (callers outside tokio: the CLI, the FFI),
    /// blocking the calling thread until the run ends.
    ///
    /// Called from inside a tokio runtime it does not panic: the run then
    /// gets a thread and a runtime of its own, and the calling thread (one
    /// of the runtime's workers) waits for it — prefer
    /// [`run`](Self::run) there.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run), and [`RunSetupError::Io`] when the runtime
    /// cannot be started.
    pub fn run_blocking(self) -> Result<RunReport, RunSetupError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return std::thread::scope(|scope| {
                match std::thread::Builder::new()
                    .name("mdbatch-run".into())
                    .spawn_scoped(scope, move || self.run_on_own_runtime())
                {
                    Ok(handle) => handle
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p)),
                    Err(e) => Err(RunSetupError::Io {
                        path: PathBuf::new(),
                        message: "cannot start a thread for the run".into(),
                        source: Arc::new(e),
                    }),
                }
            });
        }
        self.run_on_own_runtime()
    }

    fn run_on_own_runtime(self) -> Result<RunReport, RunSetupError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| RunSetupError::Io {
                path: self.task_file.clone().unwrap_or_default(),
                message: "cannot start the async runtime".into(),
                source: Arc::new(e),
            })?;
        rt.block_on(self.run())
    }
}
