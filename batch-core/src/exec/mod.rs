//! The executor: runs a [`Plan`](crate::Plan) through a
//! [`SubagentRunner`](crate::SubagentRunner).
//!
//! Architecture (after cargo-nextest's runner loop): one dispatcher task owns
//! the run state, the journal, the event callback and the task-file writer;
//! each attempt runs as its own tokio task and reports back over a channel. A
//! ready set over the DAG plus counters for `--jobs`, group limits and
//! resources decide what starts next, highest critical-path first.

//!
//! The event schema ([`RunEvent`], [`Envelope`]) is always built; the
//! executor needs the `exec` feature.

mod events;
#[cfg(feature = "exec")]
mod executor;
#[cfg(feature = "exec")]
mod options;
#[cfg(feature = "exec")]
mod retry;
#[cfg(feature = "exec")]
mod schedule;

pub use events::*;
#[cfg(feature = "exec")]
pub use executor::{Executor, ExecutorBuilder, RunReport, TaskReport};
#[cfg(feature = "exec")]
pub use options::RunOptions;
