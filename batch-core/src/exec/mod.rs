//! The executor: runs a [`Plan`](crate::Plan) through a
//! [`SubagentRunner`](crate::SubagentRunner).
//!
//! Architecture (after cargo-nextest's runner loop), one module per role:
//! - `executor`: the front door ([`ExecutorBuilder`], [`Executor`]);
//! - `dispatcher`: the one task that owns the run state, the journal, the
//!   event callback and the task-file writer, and loops over what happens;
//! - `attempt`: one attempt of one task, polled once on the dispatcher's
//!   thread and, unless done there, as its own tokio task; guarded by its
//!   deadline and the run's cancellation, then the verify step;
//! - `retry`: what follows a failed attempt, a pure function (`decide`);
//! - `schedule`: the ready set plus the `--jobs`, group and resource limits;
//! - `signals`: SIGINT/SIGTERM when the caller asks for them;
//! - `stream`: the events as a stream ([`EventStream`]);
//! - `report`: [`RunReport`] and [`TaskReport`];
//! - `isolate`: worktree isolation and the merge queue ([`Isolate`]): a
//!   worktree per attempt, one commit per task, landed in finishing order;
//! - `spec`: the [`TaskSpec`](crate::TaskSpec) of a task ([`task_spec`]).
//!
//! The event schema is in [`crate::events`], re-exported here.

mod attempt;
mod dispatcher;
mod executor;
mod isolate;
mod options;
mod prepare;
mod replan;
mod report;
mod retry;
mod schedule;
mod signals;
mod spec;
mod stream;
mod trust;
mod writeback;

pub use crate::events::*;
pub use executor::{EventCallback, Executor, ExecutorBuilder, StateDir};
pub use isolate::{Isolate, IsolateError};
pub use options::{AtCap, Launcher, RunOptions};
pub use report::{RunReport, TaskReport};
pub use spec::{SpecPlace, task_spec};
pub use stream::EventStream;
pub use trust::{UnapprovedVerify, unapproved_verify};
