//! The ready set and the limits: which task may start next.
//!
//! A node is *ready* when every node it waits for (its deps and the members
//! of its barriers, tracked by the planner's [`ReadyTracker`]) has succeeded;
//! tasks checked before the run are not in the plan: they satisfy
//! dependencies already. Among
//! ready nodes the one heading the longest remaining chain of work goes first
//! (critical-path order, ties in plan order), provided its group is under its
//! `parallel:` limit and none of its `resource:` names is held by a running
//! node. The global limit (`--jobs`, lowered by the rate-limit gate) is the
//! caller's business: it asks [`Scheduler::pick`] only while a slot is free.
//!
//! A node that fails for good makes every node that (transitively) waits for
//! it unrunnable: [`Scheduler::fail`] returns them so the caller can skip them.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::plan::{NodeIdx, Plan, ReadyTracker};

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeState {
    /// Waiting for dependencies.
    Waiting,
    /// In the ready set.
    Ready,
    /// An attempt is running.
    Running,
    /// Between attempts (backoff); holds no slot, no resource.
    Backoff,
    /// Finished: succeeded, failed, skipped or interrupted.
    Done,
}

type Key = (Reverse<usize>, usize, NodeIdx);

/// The ready set over a plan's DAG plus group and resource bookkeeping.
#[derive(Debug)]
pub(crate) struct Scheduler {
    state: Vec<NodeState>,
    /// Dependencies and barriers (the planner's bookkeeping).
    tracker: ReadyTracker,
    keys: Vec<Key>,
    groups: Vec<usize>,
    group_limit: HashMap<usize, u32>,
    group_running: HashMap<usize, u32>,
    resources: Vec<Vec<String>>,
    held: HashSet<String>,
    /// Ready nodes per group, so a full group costs one look, not a scan.
    ready: BTreeMap<usize, BTreeSet<Key>>,
    ready_count: usize,
    running: usize,
    /// Nodes below this index are the plan's (the tracker's); the others
    /// were added during the run ([`Scheduler::add`]).
    planned: usize,
    /// What each added node still waits for.
    added_waits: HashMap<NodeIdx, HashSet<NodeIdx>>,
    /// The added nodes waiting for each node.
    added_waiters: HashMap<NodeIdx, Vec<NodeIdx>>,
}

impl Scheduler {
    /// A scheduler for every node of `plan`.
    pub(crate) fn new(plan: &Plan) -> Self {
        let n = plan.nodes.len();
        let tracker = ReadyTracker::new(plan);
        let initially = tracker.initially_ready();
        let group_limit = plan
            .groups
            .iter()
            .filter_map(|g| g.limit.map(|l| (g.group, l.max(1))))
            .collect();
        let mut s = Scheduler {
            state: vec![NodeState::Waiting; n],
            tracker,
            keys: plan
                .nodes
                .iter()
                .map(|nd| (Reverse(nd.chain), nd.order, nd.index))
                .collect(),
            groups: plan.nodes.iter().map(|nd| nd.group).collect(),
            group_limit,
            group_running: HashMap::new(),
            resources: plan.nodes.iter().map(|nd| nd.resources.clone()).collect(),
            held: HashSet::new(),
            ready: BTreeMap::new(),
            ready_count: 0,
            running: 0,
            planned: n,
            added_waits: HashMap::new(),
            added_waiters: HashMap::new(),
        };
        // Built in one go from sorted keys: far cheaper than inserting the
        // nodes one at a time (a flat file has every node ready at once).
        let mut by_group: BTreeMap<usize, Vec<Key>> = BTreeMap::new();
        for i in initially {
            s.state[i] = NodeState::Ready;
            by_group.entry(s.groups[i]).or_default().push(s.keys[i]);
        }
        for (g, mut keys) in by_group {
            keys.sort_unstable();
            keys.dedup();
            s.ready_count += keys.len();
            s.ready.insert(g, keys.into_iter().collect());
        }
        s
    }

    fn unready(&mut self, i: NodeIdx) {
        if let Some(set) = self.ready.get_mut(&self.groups[i])
            && set.remove(&self.keys[i])
        {
            self.ready_count -= 1;
        }
    }

    fn group_has_room(&self, g: usize) -> bool {
        match self.group_limit.get(&g) {
            Some(&limit) => self.group_running.get(&g).copied().unwrap_or(0) < limit,
            None => true,
        }
    }

    fn make_ready(&mut self, i: NodeIdx) {
        self.state[i] = NodeState::Ready;
        if self
            .ready
            .entry(self.groups[i])
            .or_default()
            .insert(self.keys[i])
        {
            self.ready_count += 1;
        }
    }

    /// The node's state.
    pub(crate) fn state(&self, i: NodeIdx) -> NodeState {
        self.state[i]
    }

    /// Attempts running now.
    pub(crate) fn running(&self) -> usize {
        self.running
    }

    /// Whether any node is ready (whether or not its limits allow it to start).
    pub(crate) fn has_ready(&self) -> bool {
        self.ready_count > 0
    }

    /// The highest-priority ready node whose group and resources allow it to start.
    pub(crate) fn pick(&self) -> Option<NodeIdx> {
        // The best startable node of each group with room, then the best of those.
        self.ready
            .iter()
            .filter(|(g, _)| self.group_has_room(**g))
            .filter_map(|(_, keys)| {
                keys.iter()
                    .find(|k| !self.resources[k.2].iter().any(|r| self.held.contains(r)))
            })
            .min()
            .map(|k| k.2)
    }

    /// Marks a ready node as running: takes its group slot and resources.
    pub(crate) fn start(&mut self, i: NodeIdx) {
        debug_assert!(self.state[i] == NodeState::Ready);
        self.unready(i);
        self.state[i] = NodeState::Running;
        *self.group_running.entry(self.groups[i]).or_default() += 1;
        for r in &self.resources[i] {
            self.held.insert(r.clone());
        }
        self.running += 1;
    }

    fn release(&mut self, i: NodeIdx) {
        if self.state[i] != NodeState::Running {
            return;
        }
        if let Some(c) = self.group_running.get_mut(&self.groups[i]) {
            *c = c.saturating_sub(1);
        }
        for r in &self.resources[i] {
            self.held.remove(r);
        }
        self.running -= 1;
    }

    /// A running node's attempt failed and it will be retried: frees its slot.
    pub(crate) fn backoff(&mut self, i: NodeIdx) {
        self.release(i);
        self.state[i] = NodeState::Backoff;
    }

    /// A node in backoff may start again.
    pub(crate) fn retry_due(&mut self, i: NodeIdx) {
        if self.state[i] == NodeState::Backoff {
            self.make_ready(i);
        }
    }

    /// Adds a node the plan did not have (a task added to the file during
    /// the run), waiting for `waits` (nodes not yet succeeded); its index.
    /// It starts after the plan's ready nodes of the same chain length.
    pub(crate) fn add(&mut self, resources: Vec<String>, waits: HashSet<NodeIdx>) -> NodeIdx {
        let i = self.state.len();
        self.state.push(NodeState::Waiting);
        self.keys.push((Reverse(0), usize::MAX, i));
        // A group of its own: no `parallel:` limit applies to it.
        self.groups.push(usize::MAX - i);
        self.resources.push(resources);
        let waits: HashSet<NodeIdx> = waits
            .into_iter()
            .filter(|&w| self.state[w] != NodeState::Done)
            .collect();
        if waits.is_empty() {
            self.make_ready(i);
        } else {
            for &w in &waits {
                self.added_waiters.entry(w).or_default().push(i);
            }
            self.added_waits.insert(i, waits);
        }
        i
    }

    /// A node succeeded (its work; its box may still be being written):
    /// frees its slot and returns the nodes that became ready. Called again
    /// once the box is written, it does nothing.
    pub(crate) fn succeed(&mut self, i: NodeIdx) -> Vec<NodeIdx> {
        if self.state[i] == NodeState::Done {
            // Released when its work was done; its box is written now.
            return Vec::new();
        }
        self.release(i);
        if self.state[i] == NodeState::Ready {
            self.unready(i);
        }
        self.state[i] = NodeState::Done;
        let mut now_ready = Vec::new();
        if i < self.planned {
            for d in self.tracker.finish(i) {
                if self.state[d] == NodeState::Waiting {
                    self.make_ready(d);
                    now_ready.push(d);
                }
            }
        }
        for d in self.added_waiters.remove(&i).unwrap_or_default() {
            let Some(w) = self.added_waits.get_mut(&d) else {
                continue;
            };
            w.remove(&i);
            if w.is_empty() {
                self.added_waits.remove(&d);
                if self.state[d] == NodeState::Waiting {
                    self.make_ready(d);
                    now_ready.push(d);
                }
            }
        }
        now_ready
    }

    /// A node failed for good (or was interrupted); returns every unfinished
    /// node that waits for it, transitively, now marked done.
    pub(crate) fn fail(&mut self, i: NodeIdx) -> Vec<NodeIdx> {
        self.finish(i);
        let mut out = Vec::new();
        let mut blocked = vec![i];
        let mut k = 0;
        while k < blocked.len() {
            let b = blocked[k];
            k += 1;
            // The tracker's answer is transitive over the plan; added nodes
            // are followed one step at a time (no planned node waits for one).
            let mut next = if b == i && b < self.planned {
                self.tracker.blocked_by(b)
            } else {
                Vec::new()
            };
            next.extend(self.added_waiters.remove(&b).unwrap_or_default());
            for d in next {
                if self.state[d] != NodeState::Done {
                    self.finish(d);
                    out.push(d);
                    blocked.push(d);
                }
            }
        }
        out
    }

    /// Marks a node done whatever its state (skipped, stopped).
    pub(crate) fn finish(&mut self, i: NodeIdx) {
        self.release(i);
        if self.state[i] == NodeState::Ready {
            self.unready(i);
        }
        self.state[i] = NodeState::Done;
    }

    /// Nodes not yet done.
    pub(crate) fn unfinished(&self) -> Vec<NodeIdx> {
        (0..self.state.len())
            .filter(|&i| self.state[i] != NodeState::Done)
            .collect()
    }
}
