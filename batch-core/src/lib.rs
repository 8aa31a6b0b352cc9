//! # batch-core
//!
//! Plan and run a markdown checklist (`task.md`) through coding-agent
//! subagents, in waves, in parallel where the document allows, checking each
//! box in the file as its task succeeds.
//!
//! ## The pipeline
//!
//! 1. **Parse** ([`doc`]): the task file becomes a [`Document`] — tasks with
//!    their text, details, parents and children, the preamble, sections,
//!    waves, groups and modules, hints from HTML comments, the dialect
//!    (`waves`, `spec-kit`, `kiro`) and a stable id per task. Every task
//!    records the byte range of its `[ ]` marker so that checking it later
//!    changes exactly one byte.
//! 2. **Plan** ([`plan`]): the unchecked tasks become a [`Plan`], a DAG whose
//!    edges come from the waves (strict or cross-wave), the dialect's order
//!    inside a group, `after:` hints and dependency text. [`plan::check`]
//!    adds the lints of `mdbatch check`.
//! 3. **Run** ([`exec`]): an [`Executor`] runs the plan through a
//!    [`SubagentRunner`] — the built-in [`CommandRunner`], a preset for an
//!    agent CLI ([`runner::presets`]), or your own — with limits, retries,
//!    the rate-limit gate and live [`RunEvent`]s, and checks each box as its
//!    task succeeds ([`store`]). State lives in
//!    `.mdbatch/<file name>/` beside the file (or where the caller says).
//!
//! ## Example
//!
//! ```
//! use batch_core::{Document, ParseOptions, Plan, PlanOptions};
//!
//! let text = "\
//! # Release
//!
//! ## Wave 1
//! ### api
//! - [ ] Add the endpoint
//! ### db
//! - [x] Write the migration
//!
//! ## Wave 2
//! ### api
//! - [ ] Document the endpoint
//! ";
//! let doc = Document::parse(text, &ParseOptions::default())?;
//! assert_eq!(doc.waves.len(), 2);
//! assert_eq!(doc.tasks.len(), 3);
//!
//! let plan = Plan::build(&doc, &PlanOptions::default())?;
//! // The checked task is done: only two nodes, the second waits for the first.
//! assert_eq!(plan.nodes.len(), 2);
//! assert_eq!(plan.waits_for(1), vec![0]);
//! # Ok::<(), batch_core::Diagnostics>(())
//! ```
//!
//! Running needs a runner; see [`SubagentRunner`] and the `embed` example
//! (`cargo run -p batch-core --example embed`).
//!
//! ## Cargo features
//!
//! - `exec` (on by default): the executor, the runner trait and the built-in
//!   runners, the journal and the lock. It brings tokio and a process
//!   supervisor, and supports **Unix only** (Linux, macOS): subagents run in
//!   their own process group and are stopped with `SIGTERM`/`SIGKILL`.
//! - Without it (`default-features = false`) the crate parses and plans on
//!   any platform and depends only on pulldown-cmark, serde, serde_json and
//!   thiserror: [`Document`], [`Plan`], [`plan::check`], the renderers, the
//!   event schema ([`RunEvent`], [`Envelope`]) and [`PromptTemplate`].
//!
//! ## Stability
//!
//! Everything an embedder needs is reachable from the crate root and from
//! the documented modules ([`doc`], [`plan`], [`events`], [`runner`],
//! [`exec`], [`land`]). Until
//! 1.0, a minor version (0.x → 0.x+1) may change this API; a patch version
//! does not. Enums and structs marked `#[non_exhaustive]` grow without a
//! breaking change: match them with a wildcard arm and build them with their
//! constructors. The JSON of plans, events and the journal is versioned
//! separately ([`SCHEMA_VERSION`]); readers must ignore unknown fields and
//! event types. Items marked `#[doc(hidden)]` exist for the `mdbatch` binary
//! and carry no stability promise.
#![warn(missing_docs)]

#[cfg(all(feature = "exec", not(unix)))]
compile_error!(
    "batch-core's `exec` feature (running subagents) supports Unix only; \
     use `default-features = false` to parse and plan on this platform"
);

pub mod doc;
mod error;
pub mod events;
#[cfg(feature = "exec")]
pub mod exec;
mod find;
#[cfg(feature = "exec")]
pub mod land;
pub mod plan;
#[cfg(feature = "exec")]
pub mod reset;
pub mod runner;
#[cfg(feature = "exec")]
pub mod status;
#[cfg(feature = "exec")]
#[doc(hidden)]
pub mod store;
mod usage;
mod util;

pub use doc::{Dialect, Document, ParseOptions, Task};
pub use error::*;
pub use events::{Envelope, Outcome, RunEvent, RunSummary, SCHEMA_VERSION};
#[cfg(feature = "exec")]
pub use exec::{
    AtCap, EventCallback, EventStream, Executor, ExecutorBuilder, Isolate, IsolateError, Launcher,
    RunOptions, RunReport, SpecPlace, StateDir, TaskReport, task_spec,
};
pub use find::{TASK_FILE_NAMES, find_task_file};
pub use plan::{Plan, PlanFormat, PlanOptions, render as render_plan};
#[cfg(feature = "exec")]
pub use reset::{ResetOutcome, ResetPlan, ResetScope};
#[cfg(feature = "exec")]
pub use runner::presets::{self, PresetKind, PresetOptions};
#[cfg(feature = "exec")]
pub use runner::{
    CancelReason, CommandRunner, CommandRunnerBuilder, ProgressItem, ProgressSink, RunContext,
    SubagentRunner,
};
pub use runner::{
    DEFAULT_TEMPLATE, OUTPUT_TAIL_LINES, Progress, PromptTemplate, Stream, TaskOutput, TaskSpec,
    TemplateError,
};
#[cfg(feature = "exec")]
pub use status::Status;
pub use usage::Usage;
#[cfg(feature = "exec")]
#[doc(hidden)]
pub use util::now_rfc3339;
pub use util::{format_duration, parse_duration};

/// Re-exported: the token that cancels a run or an attempt
/// ([`ExecutorBuilder::cancel_token`], [`RunContext::cancel`]).
#[cfg(feature = "exec")]
pub use tokio_util::sync::CancellationToken;

/// Re-exported: the extension methods of the `futures::Stream` that
/// [`EventStream`] implements (`events.next().await`).
#[cfg(feature = "exec")]
pub use futures::stream::StreamExt;

/// Re-exported: the attribute that implements [`SubagentRunner`]
/// (`#[batch_core::async_trait]`).
#[cfg(feature = "exec")]
pub use async_trait::async_trait;
