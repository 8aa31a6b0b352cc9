//! The executor's front door: [`ExecutorBuilder`] and [`Executor`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::dispatcher::Dispatcher;
use super::options::RunOptions;
use super::report::RunReport;
use super::stream::{EventSender, EventStream};
use crate::error::RunSetupError;
use crate::events::Envelope;
use crate::runner::{CommandRunnerBuilder, PromptTemplate, SubagentRunner};

/// The event callback type.
pub type EventCallback = Box<dyn FnMut(&Envelope) + Send>;

/// Builds an [`Executor`].
///
/// ```no_run
/// use batch_core::{ExecutorBuilder, RunOptions};
///
/// let mut options = RunOptions::default();
/// options.cmd = Some("my-agent --prompt {prompt}".into());
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
            return Err(RunSetupError::Config("--jobs must be at least 1".into()));
        }
        if self.options.timeout == Some(Duration::ZERO) {
            return Err(RunSetupError::Config(
                "--timeout must be more than 0 (leave it out for no timeout)".into(),
            ));
        }
        let runner = match (self.runner, &self.options.cmd) {
            (Some(r), _) => r,
            (None, Some(cmd)) => Arc::new(
                CommandRunnerBuilder::new(cmd.clone())
                    .build()
                    .map_err(RunSetupError::Config)?,
            ),
            (None, None) => {
                return Err(RunSetupError::Config(
                    "no runner: give a command template (--cmd) or a runner".into(),
                ));
            }
        };
        Ok(Executor {
            task_file: self.task_file,
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

/// Runs a task file's plan. Built by [`ExecutorBuilder`].
pub struct Executor {
    pub(super) task_file: PathBuf,
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
    /// Errors only when the run cannot start (the file does not parse or plan,
    /// cannot be written, or is locked by another run); everything that
    /// happens to tasks is in the [`RunReport`] and the events.
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
