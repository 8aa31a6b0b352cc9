//! Built-in runners for coding-agent CLIs: `claude`, `codex`, `gemini`; the
//! opt-in `shell` runner; the `demo` stand-in agent.
//!
//! # Building one
//!
//! [`build`] turns a [`PresetKind`] and [`PresetOptions`] into a runner; it
//! finds the CLI before any task starts (a missing binary is a
//! [`RunnerSetupError::ProgramNotFound`](crate::RunnerSetupError::ProgramNotFound) naming the install command):
//!
//! ```no_run
//! use batch_core::runner::presets::{self, PresetKind, PresetOptions};
//!
//! let opts = PresetOptions::new().with_model("claude-sonnet-4-5");
//! let runner = presets::build(PresetKind::Claude, opts)?;
//! # Ok::<(), batch_core::RunnerSetupError>(())
//! ```
//!
//! # How an agent preset runs an attempt
//!
//! 1. `attempt::plan_attempt` reads `ctx.attempt`, `ctx.previous_error` and
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
//!    Every change is reported as [`Progress::Adjusted`](crate::Progress::Adjusted) before the process
//!    starts, so the display and the journal show it.
//! 2. The CLI runs through the engine's process-group spawner: no shell, stdin
//!    closed, the prompt one argv element placed where it can never be read as
//!    an option.
//! 3. Each output line goes through the preset's stream parser, which turns
//!    the CLI's JSON events into [`Progress`](crate::Progress) (session, tool calls, messages,
//!    the CLI's own API retries, usage); lines it does not understand are
//!    kept as plain output, never fatal.
//! 4. At exit the parser judges the attempt from what the CLI said (its last
//!    result/turn event, its error messages, then its exit code) and returns
//!    a [`TaskOutput`](crate::TaskOutput) or a [`RunError`](crate::RunError) of the right kind, both carrying the
//!    session id and usage.

mod agent;
mod attempt;
mod catalogue;
mod classify;
mod claude;
mod codex;
mod demo;
mod gemini;
mod shell;
#[doc(hidden)] // probing installed CLIs, for `mdbatch doctor`; no stability promise
pub mod version;

pub(crate) use catalogue::find_on_path;
pub use catalogue::{PresetKind, PresetOptions, build};
pub(crate) use classify::summary_line;
pub use demo::{DemoRunner, demo_task_file};
pub use shell::ShellRunner;
