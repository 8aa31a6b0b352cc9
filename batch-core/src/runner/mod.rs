//! Subagents: the [`SubagentRunner`] trait and the built-in runners.
//!
//! A runner sees a [`TaskSpec`] and a [`RunContext`], never a plan or a file.
//! Lifecycle events (started, succeeded, …) come from the executor; a runner
//! only reports [`Progress`] through its [`ProgressSink`].

//!
//! The data types ([`TaskSpec`], [`Progress`], [`TaskOutput`]) and the
//! [`PromptTemplate`] are always built; the trait, the context and the
//! built-in runners need the `exec` feature (Unix only).

#[cfg(feature = "exec")]
pub(crate) mod command;
#[cfg(feature = "exec")]
mod context;
#[cfg(feature = "exec")]
pub mod presets;
#[cfg(feature = "exec")]
pub(crate) mod process;
mod prompt;
#[cfg(feature = "exec")]
pub mod slurm;
mod spec;
#[cfg(feature = "exec")]
pub(crate) mod verify;

#[cfg(feature = "exec")]
pub use command::{CMD_PLACEHOLDERS, CommandRunner, CommandRunnerBuilder};
#[cfg(feature = "exec")]
pub use context::*;
#[cfg(feature = "exec")]
pub(crate) use context::{AttemptHandle, ContextRest, ContextSeed, LineBudget};
pub use prompt::{DEFAULT_TEMPLATE, PLACEHOLDERS, PromptTemplate, TemplateError};
pub use spec::*;

#[cfg(feature = "exec")]
use async_trait::async_trait;

#[cfg(feature = "exec")]
use crate::error::RunError;

/// Runs one task in a subagent.
///
/// Implementations must be cancellable: when `ctx.cancel` fires they should
/// stop their work (TERM their process group, …) and return promptly with
/// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled) or
/// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) as
/// [`RunContext::cancel_reason`] says.
///
/// The executor polls the future of [`run`](Self::run) once on its own
/// thread, where it is launched (the caller's thread with
/// [`Executor::run_blocking`](crate::Executor::run_blocking)); a future not
/// done at that poll goes on as a tokio task of its own, on the runtime's
/// workers, and is then polled with that task's waker (as every future
/// must, it registers the waker of its latest poll). Blocking work belongs
/// in `tokio::task::spawn_blocking` (or a thread), never in the future
/// itself: it would hold up the executor.
///
/// ```
/// use batch_core::{RunContext, RunError, SubagentRunner, TaskOutput, TaskSpec};
///
/// struct Echo;
///
/// #[async_trait::async_trait]
/// impl SubagentRunner for Echo {
///     async fn run(&self, task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError> {
///         ctx.progress.line(format!("doing {}", task.id()));
///         Ok(TaskOutput::default())
///     }
/// }
/// ```
#[cfg(feature = "exec")]
#[async_trait]
pub trait SubagentRunner: Send + Sync {
    /// Runs one attempt of `task`.
    async fn run(&self, task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError>;

    /// A short name for displays and the journal (`command`, `claude`, …).
    fn name(&self) -> &str {
        "custom"
    }
}
