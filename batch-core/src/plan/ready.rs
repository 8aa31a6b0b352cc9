//! Which nodes may start now: the bookkeeping over deps and barriers.

use super::model::{BarrierIdx, NodeIdx, Plan};

/// Compressed adjacency lists: `items[start[i]..start[i + 1]]` belong to `i`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Csr {
    start: Vec<usize>,
    items: Vec<usize>,
}

impl Csr {
    /// Builds lists for `len` keys from `(key, item)` pairs; items keep pair order.
    pub(crate) fn from_pairs(len: usize, pairs: &[(usize, usize)]) -> Self {
        let mut start = vec![0usize; len + 1];
        for &(k, _) in pairs {
            start[k + 1] += 1;
        }
        for i in 0..len {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut items = vec![0usize; pairs.len()];
        for &(k, v) in pairs {
            items[fill[k]] = v;
            fill[k] += 1;
        }
        Self { start, items }
    }

    pub(crate) fn get(&self, key: usize) -> &[usize] {
        match (self.start.get(key), self.start.get(key + 1)) {
            (Some(&a), Some(&b)) => &self.items[a..b],
            _ => &[],
        }
    }
}

/// Tracks which nodes of a [`Plan`] may start as others finish.
///
/// A node is ready when every node in its `deps` has finished and every
/// barrier in its `barriers` has been passed (all members finished). The
/// tracker does this in time linear in the plan's size over a whole run,
/// however wide the waves are.
///
/// ```
/// # use batch_core::{Document, ParseOptions, Plan, PlanOptions};
/// # use batch_core::plan::ReadyTracker;
/// # fn demo(plan: &Plan) {
/// let mut ready = ReadyTracker::new(plan);
/// let mut queue = ready.initially_ready();
/// while let Some(node) = queue.pop() {
///     // … run plan.nodes[node] …
///     queue.extend(ready.finish(node));
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ReadyTracker {
    waiting: Vec<u32>,
    barrier_left: Vec<u32>,
    dependents: Csr,
    member_of: Csr,
    waiters: Csr,
    finished: Vec<bool>,
}

impl ReadyTracker {
    /// A tracker where nothing has finished yet.
    pub fn new(plan: &Plan) -> Self {
        let n = plan.nodes.len();
        let nb = plan.barriers.len();
        let mut dep_pairs = Vec::new();
        let mut wait_pairs = Vec::new();
        let mut waiting = vec![0u32; n];
        for node in &plan.nodes {
            for e in &node.deps {
                dep_pairs.push((e.on, node.index));
            }
            for &b in &node.barriers {
                wait_pairs.push((b, node.index));
            }
            waiting[node.index] = u32::try_from(node.deps.len() + node.barriers.len())
                .expect("fewer than 4 billion prerequisites per node");
        }
        let mut member_pairs = Vec::new();
        let mut barrier_left = vec![0u32; nb];
        for b in &plan.barriers {
            for &m in &b.members {
                member_pairs.push((m, b.index));
            }
            barrier_left[b.index] =
                u32::try_from(b.members.len()).expect("fewer than 4 billion members per barrier");
        }
        Self {
            waiting,
            barrier_left,
            dependents: Csr::from_pairs(n, &dep_pairs),
            member_of: Csr::from_pairs(n, &member_pairs),
            waiters: Csr::from_pairs(nb, &wait_pairs),
            finished: vec![false; n],
        }
    }

    /// Nodes that wait for nothing, in plan order.
    pub fn initially_ready(&self) -> Vec<NodeIdx> {
        (0..self.waiting.len())
            .filter(|&i| self.waiting[i] == 0)
            .collect()
    }

    /// Records that `node` finished successfully; returns the nodes that became
    /// ready because of it, in plan order. Finishing a node twice (or an
    /// unknown index) returns nothing.
    pub fn finish(&mut self, node: NodeIdx) -> Vec<NodeIdx> {
        if self.finished.get(node).copied().unwrap_or(true) {
            return Vec::new();
        }
        self.finished[node] = true;
        let mut out = Vec::new();
        for &d in self.dependents.get(node) {
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 {
                out.push(d);
            }
        }
        for &b in self.member_of.get(node) {
            self.barrier_left[b] -= 1;
            if self.barrier_left[b] == 0 {
                for &w in self.waiters.get(b) {
                    self.waiting[w] -= 1;
                    if self.waiting[w] == 0 {
                        out.push(w);
                    }
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// Whether `node` has been finished.
    pub fn is_finished(&self, node: NodeIdx) -> bool {
        self.finished.get(node).copied().unwrap_or(false)
    }

    /// Every node that waits for `node`, directly or not: what cannot run if it
    /// fails. Sorted in plan order; `node` itself is not included.
    pub fn blocked_by(&self, node: NodeIdx) -> Vec<NodeIdx> {
        let n = self.waiting.len();
        let mut seen = vec![false; n];
        let mut seen_barrier = vec![false; self.barrier_left.len()];
        let mut stack = vec![node];
        let mut out = Vec::new();
        while let Some(v) = stack.pop() {
            let mut push = |w: usize, out: &mut Vec<usize>, stack: &mut Vec<usize>| {
                if w < n && !seen[w] {
                    seen[w] = true;
                    out.push(w);
                    stack.push(w);
                }
            };
            for &d in self.dependents.get(v) {
                push(d, &mut out, &mut stack);
            }
            for &b in self.member_of.get(v) {
                let b: BarrierIdx = b;
                if !seen_barrier[b] {
                    seen_barrier[b] = true;
                    for &w in self.waiters.get(b) {
                        push(w, &mut out, &mut stack);
                    }
                }
            }
        }
        out.retain(|&w| w != node);
        out.sort_unstable();
        out
    }
}
