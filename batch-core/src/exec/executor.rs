//! The dispatcher loop.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::events::{Envelope, Outcome, RunSummary};
use super::options::RunOptions;
use crate::error::{ErrorKind, RunSetupError};
use crate::runner::{PromptTemplate, SubagentRunner, Usage};

/// The event callback type.
pub type EventCallback = Box<dyn FnMut(&Envelope) + Send>;

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
        let _ = (
            &self.task_file,
            &self.options,
            &self.runner,
            &self.on_event,
            &self.cancel,
            &self.prompt,
            self.handle_signals,
        );
        todo!("engine helper")
    }
}

/// Runs a task file's plan. Built by [`ExecutorBuilder`].
pub struct Executor {
    _private: (),
}

impl Executor {
    /// Runs inside an existing tokio runtime.
    pub async fn run(self) -> Result<RunReport, RunSetupError> {
        todo!("engine helper")
    }

    /// Runs on a runtime of its own (callers outside tokio: the CLI, the FFI).
    pub fn run_blocking(self) -> Result<RunReport, RunSetupError> {
        todo!("engine helper")
    }
}
