//! The plan: a DAG over the unchecked leaf tasks of a [`Document`].

use serde::{Deserialize, Serialize};

use crate::doc::{Dialect, GroupIdx, Parallelism, TaskIdx, WaveIdx};

/// Index of a node in [`Plan::nodes`].
pub type NodeIdx = usize;

/// Options for [`Plan::build`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PlanOptions {
    /// `--cross-wave` (overrides the document's `cross-wave:` hint when `Some`).
    pub cross_wave: Option<bool>,
    /// `--only`: ids, ranges `T004-T010`, section names; empty = everything.
    pub only: Vec<String>,
    /// `--include-optional`: run optional tasks too.
    pub include_optional: bool,
}

/// Why a node waits for another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EdgeReason {
    /// Strict waves: every task of the previous wave.
    Wave,
    /// Cross-wave: the same module in an earlier wave, or an earlier lead group.
    Module,
    /// The dialect's order inside a group (a chain, a spec-kit sequence).
    Order,
    /// An `after:` hint.
    After,
    /// Dependency text (`depends on T012`, `_Depends: 1.2_`).
    DependsOn,
}

/// One edge: this node waits for `on`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Edge {
    /// The node waited for.
    pub on: NodeIdx,
    /// Why.
    pub reason: EdgeReason,
}

/// One task to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PlanNode {
    /// This node's index in [`Plan::nodes`].
    pub index: NodeIdx,
    /// The task in the document.
    pub task: TaskIdx,
    /// The task id (copied for convenience).
    pub id: String,
    /// Its wave.
    pub wave: WaveIdx,
    /// Its group.
    pub group: GroupIdx,
    /// Position in the plan's topological order (0-based).
    pub order: usize,
    /// What it waits for (transitively reduced where cheap; never containing itself).
    pub deps: Vec<Edge>,
    /// Length (in tasks) of the longest chain of work starting at this node,
    /// itself included: the critical-path priority.
    pub chain: usize,
    /// Resource names from `resource:` hints.
    pub resources: Vec<String>,
}

/// A group as the executor needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PlanGroup {
    /// The group in the document.
    pub group: GroupIdx,
    /// Max concurrency inside the group (`None` = unbounded).
    pub limit: Option<u32>,
    /// Its parallelism as written / defaulted.
    pub parallel: Parallelism,
}

/// A task the plan leaves out, and why (shown by `plan`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Excluded {
    /// The task.
    pub task: TaskIdx,
    /// Its id.
    pub id: String,
    /// `done`, `optional`, `skip`, `parent`, `not selected by --only`, `outside any wave`.
    pub reason: String,
}

/// A DAG over the unchecked leaf tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Plan {
    /// Nodes in topological order (`nodes[i].order == i`).
    pub nodes: Vec<PlanNode>,
    /// Per-group limits, indexed like [`crate::doc::Document::groups`].
    pub groups: Vec<PlanGroup>,
    /// Tasks left out, with the reason.
    pub excluded: Vec<Excluded>,
    /// The dialect used.
    pub dialect: Dialect,
    /// Why.
    pub dialect_reason: String,
    /// Whether cross-wave scheduling is on.
    pub cross_wave: bool,
}

impl Plan {
    /// The node for a task id.
    pub fn node_by_id(&self, id: &str) -> Option<&PlanNode> {
        self.nodes.iter().find(|n| n.id == id)
    }
}
