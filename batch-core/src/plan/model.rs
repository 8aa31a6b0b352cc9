//! The plan: a DAG over the unchecked leaf tasks of a [`Document`].

use serde::{Deserialize, Serialize};

use crate::doc::{Dialect, Document, GroupIdx, Parallelism, TaskIdx, WaveIdx};

/// Index of a node in [`Plan::nodes`].
pub type NodeIdx = usize;
/// Index of a barrier in [`Plan::barriers`].
pub type BarrierIdx = usize;

/// Options for [`Plan::build`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PlanOptions {
    /// Plan cross-wave (`Some(true)`) or in strict waves (`Some(false)`);
    /// `None` follows the document's `cross-wave:` hint.
    pub cross_wave: Option<bool>,
    /// Plan only these tasks (ids, ranges `T004-T010`, section names) and
    /// what they need; empty plans everything.
    pub only: Vec<String>,
    /// Plan optional tasks (`- [ ]* …`) too.
    pub include_optional: bool,
}

impl PlanOptions {
    /// The defaults: the document decides, every task, no optional ones.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`PlanOptions::cross_wave`]: cross-wave or strict waves.
    pub fn with_cross_wave(mut self, cross_wave: bool) -> Self {
        self.cross_wave = Some(cross_wave);
        self
    }

    /// Sets [`PlanOptions::only`]: the tasks to plan.
    pub fn with_only<I, S>(mut self, only: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.only = only.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`PlanOptions::include_optional`]: plan optional tasks too.
    pub fn with_include_optional(mut self, include_optional: bool) -> Self {
        self.include_optional = include_optional;
        self
    }
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
    /// A dependency written in prose outside the tasks
    /// ([`ProseDep`](crate::doc::ProseDep)): `**Dependencies:** Task 11`,
    /// an "Implementation order" list, "can start after US1".
    Prose,
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
    /// Barriers this node waits for, besides `deps`: it may start only when
    /// every member of each of these barriers has finished.
    pub barriers: Vec<BarrierIdx>,
}

impl PlanNode {
    /// The task's id (`doc.tasks[self.task].id`); `doc` is the document the
    /// plan was built from. Not copied into the node: a 100,000-task plan
    /// would hold 100,000 more strings.
    pub fn id<'d>(&self, doc: &'d Document) -> &'d str {
        doc.tasks.get(self.task).map_or("", |t| t.id.as_str())
    }
}

/// A join point: "every remaining task of wave 2", "module `api` of wave 1",
/// "all of section `Setup`".
///
/// Waiting for a whole wave through direct edges would cost
/// `|wave N| × |wave N+1|` edges (a hundred million for 100,000 tasks in 100
/// waves); a barrier costs `|wave N| + |wave N+1|`. A node waits for a barrier
/// when its [`PlanNode::barriers`] names it; the barrier is passed when every
/// node in `members` has finished. Members are the set's sinks (nodes nothing
/// else in the set waits for), which implies the rest of the set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Barrier {
    /// This barrier's index in [`Plan::barriers`].
    pub index: BarrierIdx,
    /// The nodes that must all finish (never empty).
    pub members: Vec<NodeIdx>,
    /// Why nodes wait for it.
    pub reason: EdgeReason,
    /// What it stands for, for people: `wave 1`, `module api (wave 2)`, `section Setup`.
    pub label: String,
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
    /// `done`, `optional`, `skip`, `not work` (under a heading such as
    /// "Success criteria"), `parent`, `not selected by --only`, `outside any wave`.
    pub reason: String,
}

/// A DAG over the unchecked leaf tasks.
///
/// A node may start when every node in its [`deps`](PlanNode::deps) and every
/// member of every barrier in its [`barriers`](PlanNode::barriers) has
/// finished. [`ReadyTracker`](super::ReadyTracker) does that bookkeeping.
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
    /// Join points nodes wait for (see [`Barrier`]).
    pub barriers: Vec<Barrier>,
    /// The dependencies read from prose and whether each was followed.
    pub prose: Vec<ProseUse>,
}

/// A dependency read from prose (see [`ProseDep`](crate::doc::ProseDep)),
/// as `plan` reports it: where it was read and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProseUse {
    /// The line it was read from.
    pub line: usize,
    /// That line's text.
    pub source: String,
    /// What waits (a heading's title, `Task 3`, `US6`).
    pub waiter: String,
    /// What it waits for, as written.
    pub on: Vec<String>,
    /// Whether the plan follows it.
    pub followed: bool,
    /// Why not, or what else to know.
    pub note: Option<String>,
}

impl Plan {
    /// The node for a task id; `doc` is the document the plan was built from.
    pub fn node_by_id(&self, doc: &Document, id: &str) -> Option<&PlanNode> {
        self.nodes
            .iter()
            .find(|n| doc.tasks.get(n.task).is_some_and(|t| t.id == id))
    }

    /// Every node `node` waits for directly: its `deps` plus the members of
    /// its barriers, sorted, without duplicates.
    pub fn waits_for(&self, node: NodeIdx) -> Vec<NodeIdx> {
        let Some(n) = self.nodes.get(node) else {
            return Vec::new();
        };
        let mut out: Vec<NodeIdx> = n.deps.iter().map(|e| e.on).collect();
        for &b in &n.barriers {
            if let Some(b) = self.barriers.get(b) {
                out.extend_from_slice(&b.members);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether `node` waits for `other`, directly or through other nodes.
    pub fn depends_on(&self, node: NodeIdx, other: NodeIdx) -> bool {
        if node >= self.nodes.len() || other >= node {
            // Topological order: a node only waits for earlier ones.
            return false;
        }
        let mut seen = vec![false; node + 1];
        let mut seen_barrier = vec![false; self.barriers.len()];
        let mut stack = vec![node];
        while let Some(v) = stack.pop() {
            let n = &self.nodes[v];
            let direct = n.deps.iter().map(|e| e.on);
            let mut next: Vec<NodeIdx> = direct.collect();
            for &b in &n.barriers {
                if !seen_barrier[b] {
                    seen_barrier[b] = true;
                    next.extend_from_slice(&self.barriers[b].members);
                }
            }
            for w in next {
                if w == other {
                    return true;
                }
                if w > other && !seen[w] {
                    seen[w] = true;
                    stack.push(w);
                }
            }
        }
        false
    }
}
