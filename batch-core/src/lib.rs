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
//! Running needs a runner; see [`SubagentRunner`] and the `embed` example.
#![warn(missing_docs)]

pub mod doc;
mod error;
pub mod events;
pub mod exec;
pub mod land;
pub mod plan;
pub mod runner;
pub mod store;
pub mod util;

pub use doc::{Dialect, Document, ParseOptions, Task};
pub use error::*;
pub use events::{Envelope, RunEvent};
pub use exec::{EventStream, Executor, ExecutorBuilder, RunOptions, RunReport, StateDir};
pub use plan::{Plan, PlanOptions};
pub use runner::{
    CommandRunner, Progress, ProgressSink, PromptTemplate, RunContext, SubagentRunner, TaskOutput,
    TaskSpec, Usage,
};
