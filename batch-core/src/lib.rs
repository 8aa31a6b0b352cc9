//! # batch-core
//!
//! Plan and run a markdown checklist (`task.md`) through coding-agent
//! subagents, in waves, in parallel where the document allows, checking each
//! box in the file as its task succeeds.
#![warn(missing_docs)]

pub mod doc;
mod error;
pub mod exec;
pub mod plan;
pub mod runner;
pub mod store;
pub mod util;

pub use doc::{Dialect, Document, ParseOptions, Task};
pub use error::*;
pub use exec::{Envelope, Executor, ExecutorBuilder, RunEvent, RunOptions, RunReport};
pub use plan::{Plan, PlanOptions};
pub use runner::{
    CommandRunner, Progress, ProgressSink, PromptTemplate, RunContext, SubagentRunner, TaskOutput,
    TaskSpec, Usage,
};
