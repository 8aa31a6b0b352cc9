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
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

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

/// The ready nodes of one group, best (smallest key) first: the nodes ready
/// at the start in a vector sorted once, best last, so taking the next
/// one is a pop from its end (a flat file has every node ready at once,
/// and a heap of all of them costs a sift of its depth per task); the
/// nodes that become ready later in a heap. The best of the two tops goes
/// first.
#[derive(Debug, Default)]
struct ReadySet {
    /// Sorted: the best last.
    initial: Vec<Reverse<Key>>,
    later: BinaryHeap<Reverse<Key>>,
}

impl ReadySet {
    fn new(mut initial: Vec<Reverse<Key>>) -> Self {
        // Nodes in plan order (the usual case) are sorted backwards: found
        // and reversed in one pass.
        initial.sort_unstable();
        Self {
            initial,
            later: BinaryHeap::new(),
        }
    }

    /// Whether the best entry is the initial vector's.
    fn best_is_initial(&self) -> bool {
        match (self.initial.last(), self.later.peek()) {
            (Some(a), Some(b)) => a > b,
            (a, _) => a.is_some(),
        }
    }

    fn peek(&self) -> Option<&Key> {
        if self.best_is_initial() {
            self.initial.last().map(|Reverse(k)| k)
        } else {
            self.later.peek().map(|Reverse(k)| k)
        }
    }

    fn pop(&mut self) {
        if self.best_is_initial() {
            self.initial.pop();
        } else {
            self.later.pop();
        }
    }

    fn push(&mut self, k: Key) {
        self.later.push(Reverse(k));
    }

    /// Every entry, in no order.
    fn iter(&self) -> impl Iterator<Item = &Key> {
        self.initial
            .iter()
            .chain(self.later.iter())
            .map(|Reverse(k)| k)
    }
}

/// The ready set over a plan's DAG plus group and resource bookkeeping.
#[derive(Debug)]
pub(crate) struct Scheduler {
    state: Vec<NodeState>,
    /// Dependencies and barriers (the planner's bookkeeping).
    tracker: ReadyTracker,
    keys: Vec<Key>,
    groups: Vec<usize>,
    /// The `parallel:` limit of each of the plan's groups, by group index
    /// (a group past the end, as an added node's, has none).
    group_limit: Vec<Option<u32>>,
    /// Attempts running in each limited group.
    group_running: Vec<u32>,
    resources: Vec<Vec<String>>,
    held: HashSet<String>,
    /// Ready nodes per group, best first, so a full group costs one look,
    /// not a scan. An entry whose node is no longer ready is stale: it is
    /// dropped when it reaches the top (taking a node out of the middle of
    /// a heap would cost a search).
    ready: BTreeMap<usize, ReadySet>,
    /// Nodes in the `Ready` state.
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
        let groups: Vec<usize> = plan.nodes.iter().map(|nd| nd.group).collect();
        let group_count = groups
            .iter()
            .copied()
            .chain(plan.groups.iter().map(|g| g.group))
            .max()
            .map_or(0, |g| g + 1);
        let mut group_limit = vec![None; group_count];
        for g in &plan.groups {
            if let Some(l) = g.limit {
                group_limit[g.group] = Some(l.max(1));
            }
        }
        let mut s = Scheduler {
            state: vec![NodeState::Waiting; n],
            tracker,
            keys: plan
                .nodes
                .iter()
                .map(|nd| (Reverse(nd.chain), nd.order, nd.index))
                .collect(),
            groups,
            group_running: vec![0; group_count],
            group_limit,
            resources: plan.nodes.iter().map(|nd| nd.resources.clone()).collect(),
            held: HashSet::new(),
            ready: BTreeMap::new(),
            ready_count: 0,
            running: 0,
            planned: n,
            added_waits: HashMap::new(),
            added_waiters: HashMap::new(),
        };
        // Built in one go (sorting nodes in plan order is linear): far
        // cheaper than inserting the nodes one at a time (a flat file has
        // every node ready at once).
        let mut by_group: BTreeMap<usize, Vec<Reverse<Key>>> = BTreeMap::new();
        for i in initially {
            if s.state[i] == NodeState::Ready {
                continue;
            }
            s.state[i] = NodeState::Ready;
            s.ready_count += 1;
            by_group
                .entry(s.groups[i])
                .or_default()
                .push(Reverse(s.keys[i]));
        }
        for (g, keys) in by_group {
            s.ready.insert(g, ReadySet::new(keys));
        }
        s
    }

    /// Takes a ready node out of the ready set (its heap entry goes with it
    /// when on top, else it is left stale).
    fn unready(&mut self, i: NodeIdx) {
        if self.state[i] != NodeState::Ready {
            return;
        }
        self.ready_count -= 1;
        if let Some(heap) = self.ready.get_mut(&self.groups[i])
            && heap.peek().is_some_and(|k| k.2 == i)
        {
            heap.pop();
        }
    }

    fn make_ready(&mut self, i: NodeIdx) {
        if self.state[i] == NodeState::Ready {
            return;
        }
        self.state[i] = NodeState::Ready;
        self.ready_count += 1;
        self.ready
            .entry(self.groups[i])
            .or_default()
            .push(self.keys[i]);
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

    /// Whether group `g` is under its `parallel:` limit.
    fn group_has_room(limits: &[Option<u32>], running: &[u32], g: usize) -> bool {
        match limits.get(g) {
            Some(Some(limit)) => running[g] < *limit,
            _ => true,
        }
    }

    /// The highest-priority ready node whose group and resources allow it
    /// to start (stale entries met on the way are dropped).
    pub(crate) fn pick(&mut self) -> Option<NodeIdx> {
        let Self {
            state,
            resources,
            held,
            ready,
            group_limit,
            group_running,
            ..
        } = self;
        let startable = |i: NodeIdx| !resources[i].iter().any(|r| held.contains(r));
        // The best startable node of each group with room, then the best of those.
        let mut best: Option<Key> = None;
        for (&g, heap) in ready.iter_mut() {
            if !Self::group_has_room(group_limit, group_running, g) {
                continue;
            }
            while heap.peek().is_some_and(|k| state[k.2] != NodeState::Ready) {
                heap.pop();
            }
            let found = match heap.peek() {
                None => None,
                Some(k) if startable(k.2) => Some(*k),
                // Its best one waits for a resource: the best that does not
                // (in no order in the heap: a scan).
                Some(_) => heap
                    .iter()
                    .copied()
                    .filter(|k| state[k.2] == NodeState::Ready && startable(k.2))
                    .min(),
            };
            if let Some(k) = found
                && best.is_none_or(|b| k < b)
            {
                best = Some(k);
            }
        }
        best.map(|k| k.2)
    }

    /// Marks a ready node as running: takes its group slot and resources.
    pub(crate) fn start(&mut self, i: NodeIdx) {
        debug_assert!(self.state[i] == NodeState::Ready);
        self.unready(i);
        self.state[i] = NodeState::Running;
        let g = self.groups[i];
        if let Some(Some(_)) = self.group_limit.get(g) {
            self.group_running[g] += 1;
        }
        for r in &self.resources[i] {
            self.held.insert(r.clone());
        }
        self.running += 1;
    }

    fn release(&mut self, i: NodeIdx) {
        if self.state[i] != NodeState::Running {
            return;
        }
        let g = self.groups[i];
        if let Some(Some(_)) = self.group_limit.get(g) {
            self.group_running[g] = self.group_running[g].saturating_sub(1);
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
        self.unready(i);
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
        if self.added_waiters.is_empty() {
            return now_ready;
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
        self.unready(i);
        self.state[i] = NodeState::Done;
    }

    /// Nodes not yet done.
    pub(crate) fn unfinished(&self) -> Vec<NodeIdx> {
        (0..self.state.len())
            .filter(|&i| self.state[i] != NodeState::Done)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(chain: usize, order: usize) -> Key {
        (Reverse(chain), order, order)
    }

    #[test]
    fn the_ready_set_gives_the_best_first_whether_ready_at_the_start_or_later() {
        // Ready at the start, in plan order: chains 1, 3, 1, 2.
        let mut set = ReadySet::new(vec![
            Reverse(key(1, 0)),
            Reverse(key(3, 1)),
            Reverse(key(1, 2)),
            Reverse(key(2, 3)),
        ]);
        // Made ready later: a longer chain than any, and a tie in chain
        // with an earlier node.
        set.push(key(5, 4));
        set.push(key(1, 5));
        let mut order = Vec::new();
        while let Some(k) = set.peek() {
            order.push(k.2);
            set.pop();
        }
        assert_eq!(order, [4, 1, 3, 0, 2, 5]);
        assert_eq!(set.iter().count(), 0);
    }
}
