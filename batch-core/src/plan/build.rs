//! Building the DAG.
//!
//! Architecture: every task is first classified (a node, or excluded with a
//! reason). Nodes are then linked in four passes, all in "candidate" indices
//! (document order): the dialect's order inside groups (`order_edges`, with
//! numbered lists and a task's subtasks in order in side-by-side groups),
//! the wave rule, strict or cross-wave (`wave_edges`; a section whose author
//! wrote its dependencies in prose waits for those instead of the whole
//! previous wave), `after:` hints and dependency text (`reference_edges`),
//! and dependencies read from prose (`prose_edges`, each recorded in
//! [`Plan::prose`]). Tasks under headings that are not work ("Success
//! criteria") are excluded as `not work`. Sets of nodes ("the whole previous
//! wave", "all of section Setup") are joined through barriers so that wide
//! waves cost a linear number of edges. Then cycles are looked for (Kahn's
//! algorithm, and Tarjan's on what is left, both iterative), `--only` keeps
//! what was selected plus everything it needs, and the nodes are renumbered
//! in topological order with their critical-path length.
//!
//! Pitfalls: nothing here may recurse (100,000-task chains); nothing may pair
//! every node of a wave with every node of the next.

use std::cell::OnceCell;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use super::model::{
    Barrier, Edge, EdgeReason, Excluded, Plan, PlanGroup, PlanNode, PlanOptions, ProseUse,
};
use crate::doc::fxhash::{FxHashMap, FxHashSet, map_with_capacity};
use crate::doc::{Dialect, Document, Parallelism, ProseWaiter, SectionIdx, TaskIdx};
use crate::error::{Diagnostic, Diagnostics};

/// Sets up to this size are waited for with direct edges; larger ones get a barrier.
const DIRECT_LIMIT: usize = 4;

pub(crate) fn build(doc: &Document, options: &PlanOptions) -> Result<Plan, Diagnostics> {
    let mut b = Builder::new(doc, options);
    b.prose_waiters = b.prose_waiters();
    b.order_edges();
    b.wave_edges();
    b.reference_edges();
    b.prose_edges();
    let selected = b.resolve_only();
    // Cycles are looked for even when other references are in error, so
    // `check` lists every problem of the file at once.
    let order = b.topo_order();
    if order.len() < b.cands.len() {
        b.report_cycles();
    }
    if !b.errors.is_empty() {
        return Err(Diagnostics(b.errors));
    }
    Ok(b.finish(order, selected))
}

/// A barrier before renumbering.
struct Draft {
    members: Vec<usize>,
    reason: EdgeReason,
    label: String,
}

/// What a dependency reference names.
enum Target {
    Tasks(Vec<TaskIdx>),
    Sections(Vec<SectionIdx>),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum SetKey {
    Step(usize),
    Wave(usize),
    Unit(usize),
    Section(SectionIdx),
    Task(TaskIdx),
    Prose(usize),
    Seq(usize),
}

struct Builder<'a> {
    doc: &'a Document,
    options: &'a PlanOptions,
    cross_wave: bool,
    /// Why each task is not a node (`None`: it is one).
    excluded: Vec<Option<&'static str>>,
    /// Candidate index → task.
    cands: Vec<TaskIdx>,
    /// Task → candidate index.
    cand_of: Vec<Option<usize>>,
    deps: Vec<Vec<Edge>>,
    node_barriers: Vec<Vec<usize>>,
    /// Order successors (for the sinks of a set).
    order_succ: Vec<Vec<usize>>,
    drafts: Vec<Draft>,
    draft_keys: FxHashMap<SetKey, usize>,
    /// Per section: the end offset of its extent (exclusive).
    section_end: Vec<usize>,
    /// Id → task, built on the first reference (most files have none).
    ids: OnceCell<FxHashMap<&'a str, TaskIdx>>,
    /// Case-folded id → task, built on the first reference that needs it.
    ids_folded: OnceCell<FxHashMap<String, TaskIdx>>,
    errors: Vec<Diagnostic>,
    /// The dependencies read from prose, and what became of each.
    prose: Vec<ProseUse>,
    /// Candidates whose section says in prose what it waits for: the
    /// author's dependencies replace the strict wave order for them.
    prose_waiters: FxHashSet<usize>,
    /// Scratch marks for set membership.
    stamp: Vec<u32>,
    stamp_now: u32,
}

impl<'a> Builder<'a> {
    fn new(doc: &'a Document, options: &'a PlanOptions) -> Self {
        let cross_wave = options.cross_wave.or(doc.hints.cross_wave).unwrap_or(false);
        let n = doc.tasks.len();
        let section_skip = section_flags(doc, |h| h.skip);
        let section_optional = section_flags(doc, |h| h.optional);
        let mut excluded: Vec<Option<&'static str>> = vec![None; n];
        // Tasks are in document order, so a parent is classified before its children.
        for (i, t) in doc.tasks.iter().enumerate() {
            let parent_reason = t.parent.and_then(|p| excluded.get(p).copied().flatten());
            let in_section =
                |flags: &[bool]| t.section.is_some_and(|s| flags.get(s) == Some(&true));
            let skip = t.skip || t.hints.skip == Some(true) || in_section(&section_skip);
            let optional =
                t.optional || t.hints.optional == Some(true) || in_section(&section_optional);
            excluded[i] = if t.is_parent() {
                Some(if t.checked { "done" } else { "parent" })
            } else if t.checked {
                Some("done")
            } else if skip || parent_reason == Some("skip") {
                Some("skip")
            } else if not_work(doc, i) {
                Some("not work")
            } else if (optional || parent_reason == Some("optional")) && !options.include_optional {
                Some("optional")
            } else if t.wave.is_none() || t.group.and_then(|g| doc.groups.get(g)).is_none() {
                Some("outside any wave")
            } else {
                None
            };
        }
        let mut cands = Vec::new();
        let mut cand_of = vec![None; n];
        for (i, e) in excluded.iter().enumerate() {
            if e.is_none() {
                cand_of[i] = Some(cands.len());
                cands.push(i);
            }
        }
        let c = cands.len();
        Self {
            doc,
            options,
            cross_wave,
            excluded,
            cands,
            cand_of,
            deps: vec![Vec::new(); c],
            node_barriers: vec![Vec::new(); c],
            order_succ: vec![Vec::new(); c],
            drafts: Vec::new(),
            draft_keys: FxHashMap::default(),
            section_end: section_ends(doc),
            ids: OnceCell::new(),
            ids_folded: OnceCell::new(),
            errors: Vec::new(),
            prose: Vec::new(),
            prose_waiters: FxHashSet::default(),
            stamp: vec![0; c],
            stamp_now: 0,
        }
    }

    fn task_of(&self, cand: usize) -> &'a crate::doc::Task {
        &self.doc.tasks[self.cands[cand]]
    }

    fn add_edge(&mut self, from: usize, on: usize, reason: EdgeReason) {
        if from == on || self.deps[from].iter().any(|e| e.on == on) {
            return;
        }
        if reason == EdgeReason::Order {
            self.order_succ[on].push(from);
        }
        self.deps[from].push(Edge { on, reason });
    }

    fn add_barrier(&mut self, from: usize, barrier: usize) {
        let mine = &mut self.node_barriers[from];
        if !mine.contains(&barrier) {
            // Most nodes wait for one barrier (the wave before): room for
            // one, not the four a first push makes (85,000 nodes of a
            // 100k plan).
            if mine.is_empty() {
                mine.reserve_exact(1);
            }
            mine.push(barrier);
        }
    }

    /// The members of `set` nothing else in `set` waits for (by order edges).
    fn sinks(&mut self, set: &[usize]) -> Vec<usize> {
        self.stamp_now += 1;
        let now = self.stamp_now;
        for &m in set {
            self.stamp[m] = now;
        }
        set.iter()
            .copied()
            .filter(|&m| !self.order_succ[m].iter().any(|&s| self.stamp[s] == now))
            .collect()
    }

    /// A barrier over the sinks of `set`, made once per key.
    fn barrier(
        &mut self,
        key: SetKey,
        set: &[usize],
        reason: EdgeReason,
        label: String,
    ) -> Option<usize> {
        if let Some(&b) = self.draft_keys.get(&key) {
            return Some(b);
        }
        if set.is_empty() {
            return None;
        }
        let members = self.sinks(set);
        self.drafts.push(Draft {
            members,
            reason,
            label,
        });
        let b = self.drafts.len() - 1;
        self.draft_keys.insert(key, b);
        Some(b)
    }

    /// `from` waits for every node of `set`: direct edges when small, else a barrier.
    fn wait_on_set(
        &mut self,
        from: usize,
        key: SetKey,
        set: &[usize],
        reason: EdgeReason,
        label: impl FnOnce() -> String,
    ) {
        if set.len() <= DIRECT_LIMIT && !self.draft_keys.contains_key(&key) {
            for &on in set {
                self.add_edge(from, on, reason.clone());
            }
        } else if let Some(b) = self.barrier(key, set, reason, label()) {
            self.add_barrier(from, b);
        }
    }

    /// How a group's tasks are ordered among themselves.
    fn group_mode(&self, g: usize) -> Mode {
        let group = &self.doc.groups[g];
        if group.parallel_from_hint || self.doc.dialect == Dialect::Waves {
            match group.parallel {
                Parallelism::Sequential => Mode::Chain,
                _ => Mode::Together,
            }
        } else {
            Mode::Runs
        }
    }

    /// Candidates of each group, in document order.
    fn group_cands(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.doc.groups.len()];
        for (c, &t) in self.cands.iter().enumerate() {
            if let Some(g) = self.doc.tasks[t].group {
                out[g].push(c);
            }
        }
        out
    }

    /// The dialect's order inside groups (and between the groups of a wave in
    /// spec-kit and kiro files).
    fn order_edges(&mut self) {
        let doc = self.doc;
        let sequential_groups = doc.dialect != Dialect::Waves;
        // Leaves and parents of each group, in document order, excluding
        // tasks that are not work at all (skip, optional): they are transparent.
        let mut members: Vec<Vec<TaskIdx>> = vec![Vec::new(); doc.groups.len()];
        for t in &doc.tasks {
            if let Some(g) = t.group.filter(|&g| g < doc.groups.len()) {
                // Parents are transparent too: their children are the work,
                // and an unmarked grouping parent does not break a run of
                // `(P)` tasks around it.
                match self.excluded[t.index] {
                    Some("skip" | "optional" | "outside any wave" | "not work" | "parent") => {}
                    _ => members[g].push(t.index),
                }
            }
        }
        for wave in &doc.waves {
            let mut prev: Vec<usize> = Vec::new();
            let mut prev_key = SetKey::Step(usize::MAX);
            for &g in &wave.groups {
                if g >= doc.groups.len() {
                    continue;
                }
                if !sequential_groups {
                    prev.clear();
                }
                let mode = self.group_mode(g);
                if mode == Mode::Together && !doc.groups[g].parallel_from_hint {
                    self.numbered_sequences(&members[g]);
                }
                let mut step: Vec<usize> = Vec::new();
                let mut step_first = usize::MAX;
                let mut in_run = false;
                let mut started = false;
                for &t in &members[g] {
                    let task = &doc.tasks[t];
                    let joins = match mode {
                        Mode::Together => started,
                        Mode::Chain => false,
                        Mode::Runs => in_run && task.parallel_marker && !task.is_parent(),
                    };
                    if !joins {
                        if !step.is_empty() {
                            prev = std::mem::take(&mut step);
                            prev_key = SetKey::Step(step_first);
                        }
                        step_first = t;
                        in_run = task.parallel_marker && !task.is_parent();
                    }
                    started = true;
                    if let Some(c) = self.cand_of[t] {
                        let set = prev.clone();
                        self.wait_on_set(c, prev_key, &set, EdgeReason::Order, || {
                            format!("tasks before {}", task.id)
                        });
                        step.push(c);
                    }
                }
                if !step.is_empty() {
                    prev = step;
                    prev_key = SetKey::Step(step_first);
                }
            }
        }
    }

    /// Side-by-side groups still honour the author's numbering and nesting:
    /// the tasks of one numbered list run in the order of their numbers
    /// (tasks under one numbered item side by side), and the subtasks of
    /// one parent task run one after another, in document order.
    fn numbered_sequences(&mut self, members: &[TaskIdx]) {
        let doc = self.doc;
        // Sequence → (current number, its step, the step before).
        let mut seqs: FxHashMap<(u8, usize), Sequence> = FxHashMap::default();
        for (n, &t) in members.iter().enumerate() {
            let task = &doc.tasks[t];
            let Some(c) = self.cand_of[t] else {
                continue;
            };
            let key = match (top_parent(doc, t), task.list_step()) {
                (Some(p), _) => ((0u8, p), n),
                (None, Some((list, number))) => ((1u8, list), number),
                (None, None) => continue,
            };
            let state = seqs
                .entry(key.0)
                .or_insert_with(|| (usize::MAX, Vec::new(), Vec::new()));
            if state.0 != key.1 {
                if !state.1.is_empty() {
                    state.2 = std::mem::take(&mut state.1);
                }
                state.0 = key.1;
            }
            state.1.push(c);
            let prev = state.2.clone();
            if let Some(&first) = prev.first() {
                let label = format!("tasks before {}", task.id);
                self.wait_on_set(c, SetKey::Seq(first), &prev, EdgeReason::Order, || label);
            }
        }
    }

    /// Strict waves, or cross-wave by module / user story.
    fn wave_edges(&mut self) {
        let doc = self.doc;
        let group_cands = self.group_cands();
        let mut wave_cands: Vec<Vec<usize>> = vec![Vec::new(); doc.waves.len()];
        for wave in &doc.waves {
            for &g in &wave.groups {
                if let Some(cs) = group_cands.get(g) {
                    wave_cands[wave.index].extend_from_slice(cs);
                }
            }
            wave_cands[wave.index].sort_unstable();
        }
        // Waves are numbered as `plan` shows them: those with work to run.
        let mut wave_no = vec![0usize; doc.waves.len()];
        let mut k = 0;
        for (w, cs) in wave_cands.iter().enumerate() {
            if !cs.is_empty() {
                k += 1;
            }
            wave_no[w] = k;
        }
        if !self.cross_wave {
            let mut prev: Option<usize> = None;
            for w in 0..doc.waves.len() {
                if wave_cands[w].is_empty() {
                    continue;
                }
                let set = wave_cands[w].clone();
                if let Some(p) = prev {
                    let prev_set = wave_cands[p].clone();
                    let b = self.barrier(
                        SetKey::Wave(p),
                        &prev_set,
                        EdgeReason::Wave,
                        format!("wave {}", wave_no[p]),
                    );
                    if let Some(b) = b {
                        for &c in &set {
                            if self.deps[c].is_empty()
                                && self.node_barriers[c].is_empty()
                                && !self.prose_waiters.contains(&c)
                            {
                                self.add_barrier(c, b);
                            }
                        }
                    }
                }
                prev = Some(w);
            }
            return;
        }
        // Cross-wave. Units are (wave, key): a module (or user story), or the
        // wave's join part (lead group / non-story phase, key `None`).
        let story_mode = doc.dialect == Dialect::SpecKit;
        let mut units: Vec<(usize, Option<String>, Vec<usize>)> = Vec::new();
        for wave in &doc.waves {
            if wave_cands[wave.index].is_empty() {
                continue;
            }
            if story_mode {
                let key = story_of_wave(doc, wave.index, &wave_cands[wave.index], &self.cands);
                units.push((wave.index, key, wave_cands[wave.index].clone()));
            } else {
                let mut by_key: Vec<(Option<String>, Vec<usize>)> = Vec::new();
                for &g in &wave.groups {
                    let Some(cs) = group_cands.get(g).filter(|cs| !cs.is_empty()) else {
                        continue;
                    };
                    let key = doc.groups[g].module.clone();
                    match by_key.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, v)) => v.extend_from_slice(cs),
                        None => by_key.push((key, cs.clone())),
                    }
                }
                for (k, v) in by_key {
                    units.push((wave.index, k, v));
                }
            }
        }
        let mut last_join: Option<usize> = None; // barrier
        // The latest unit of each key since the last join.
        let mut frontier: Vec<(String, usize)> = Vec::new();
        let mut latest: FxHashMap<String, usize> = FxHashMap::default(); // key -> barrier
        let mut prev_wave: Option<usize> = None; // wave index
        let mut i = 0;
        while i < units.len() {
            let w = units[i].0;
            let mut j = i;
            while j < units.len() && units[j].0 == w {
                j += 1;
            }
            let prev_wave_barrier = prev_wave.and_then(|p| {
                let set = wave_cands[p].clone();
                self.barrier(
                    SetKey::Wave(p),
                    &set,
                    EdgeReason::Wave,
                    format!("wave {}", wave_no[p]),
                )
            });
            let mut new_join = None;
            let mut new_keyed = Vec::new();
            for (u, (_, key, set)) in units.iter().enumerate().take(j).skip(i) {
                let set = set.clone();
                let label = match key {
                    None if story_mode => format!("wave {}", wave_no[w]),
                    None => format!("lead of wave {}", wave_no[w]),
                    Some(k) if story_mode => format!("{k} (wave {})", wave_no[w]),
                    Some(k) => format!("module {k} (wave {})", wave_no[w]),
                };
                let mine = self.barrier(SetKey::Unit(u), &set, EdgeReason::Module, label);
                let mut waits: Vec<usize> = Vec::new();
                match key {
                    None => {
                        waits.extend(last_join);
                        waits.extend(frontier.iter().map(|(_, b)| *b));
                        new_join = mine;
                    }
                    Some(k) => {
                        waits.extend(last_join);
                        match latest.get(k) {
                            Some(&b) => waits.push(b),
                            None if !story_mode => waits.extend(prev_wave_barrier),
                            None => {}
                        }
                        if let Some(b) = mine {
                            new_keyed.push((k.clone(), b));
                        }
                    }
                }
                for &c in &set {
                    if self.deps[c].is_empty() && self.node_barriers[c].is_empty() {
                        for &b in &waits {
                            self.add_barrier(c, b);
                        }
                    }
                }
            }
            if let Some(b) = new_join {
                last_join = Some(b);
                frontier.clear();
            }
            for (k, b) in new_keyed {
                frontier.retain(|(fk, _)| *fk != k);
                frontier.push((k.clone(), b));
                latest.insert(k, b);
            }
            prev_wave = Some(w);
            i = j;
        }
    }

    /// Candidates whose task lies inside section `s`.
    fn section_cands(&self, s: SectionIdx) -> Vec<usize> {
        let Some(sec) = self.doc.sections.get(s) else {
            return Vec::new();
        };
        let start = sec.pos.offset;
        let end = self.section_end.get(s).copied().unwrap_or(usize::MAX);
        // Candidates are in document order, so their offsets are sorted.
        let lo = self
            .cands
            .partition_point(|&t| self.doc.tasks[t].pos.offset < start);
        let hi = self
            .cands
            .partition_point(|&t| self.doc.tasks[t].pos.offset < end);
        (lo..hi).collect()
    }

    /// Leaf tasks under `t` (itself when it is a leaf).
    fn leaves_of(&self, t: TaskIdx) -> Vec<TaskIdx> {
        let mut out = Vec::new();
        let mut stack = vec![t];
        let mut guard = 0usize;
        while let Some(x) = stack.pop() {
            guard += 1;
            if guard > self.doc.tasks.len() + 1 {
                break; // a malformed parent loop; never loop forever
            }
            let Some(task) = self.doc.tasks.get(x) else {
                continue;
            };
            if task.is_parent() {
                stack.extend(task.children().iter().rev().copied());
            } else {
                out.push(x);
            }
        }
        out
    }

    /// What a reference (`T012`, `T012-T015`, `1.2`, `Setup`) names.
    fn resolve(&self, r: &str) -> Option<Target> {
        let r = r.trim().trim_matches('`').trim();
        if r.is_empty() {
            return None;
        }
        let ids = self.ids.get_or_init(|| {
            let mut m = map_with_capacity(self.doc.tasks.len());
            for t in &self.doc.tasks {
                m.entry(t.id.as_str()).or_insert(t.index);
            }
            m
        });
        if let Some(&t) = ids.get(r) {
            return Some(Target::Tasks(vec![t]));
        }
        let folded_ids = self.ids_folded.get_or_init(|| {
            let mut m = FxHashMap::default();
            for t in &self.doc.tasks {
                m.entry(t.id.to_lowercase()).or_insert(t.index);
            }
            m
        });
        if let Some(&t) = folded_ids.get(&r.to_lowercase()) {
            return Some(Target::Tasks(vec![t]));
        }
        if let Some(ts) = self.resolve_range(r) {
            return Some(Target::Tasks(ts));
        }
        // `Task 11`: a task numbered 11, else a heading "Task 11: …".
        if r.len() > 5 && r.is_char_boundary(5) && r[..5].eq_ignore_ascii_case("task ") {
            let num = r[5..].trim();
            if let Some(&t) = ids.get(num) {
                return Some(Target::Tasks(vec![t]));
            }
        }
        let mut name = r;
        for prefix in ["all of ", "group ", "section "] {
            if name.len() > prefix.len()
                && name.is_char_boundary(prefix.len())
                && name[..prefix.len()].eq_ignore_ascii_case(prefix)
            {
                name = name[prefix.len()..].trim();
            }
        }
        let folded = name.to_lowercase();
        let exact: Vec<SectionIdx> = self
            .doc
            .sections
            .iter()
            .filter(|s| s.title.trim().to_lowercase() == folded)
            .map(|s| s.index)
            .collect();
        if !exact.is_empty() {
            return Some(Target::Sections(exact));
        }
        let before_colon: Vec<SectionIdx> = self
            .doc
            .sections
            .iter()
            .filter(|s| {
                s.title
                    .split_once(':')
                    .is_some_and(|(head, _)| head.trim().to_lowercase() == folded)
            })
            .map(|s| s.index)
            .collect();
        if !before_colon.is_empty() {
            return Some(Target::Sections(before_colon));
        }
        // `Phase 2` for "Phase 2 – Core", `Task 11` for "Task 11 (API)".
        let prefixed: Vec<SectionIdx> = self
            .doc
            .sections
            .iter()
            .filter(|s| title_starts_with(&s.title, &folded))
            .map(|s| s.index)
            .collect();
        if !prefixed.is_empty() {
            return Some(Target::Sections(prefixed));
        }
        let modules: Vec<SectionIdx> = self
            .doc
            .groups
            .iter()
            .filter(|g| {
                g.module
                    .as_deref()
                    .is_some_and(|m| m.to_lowercase() == folded)
            })
            .filter_map(|g| g.section)
            .collect();
        if !modules.is_empty() {
            return Some(Target::Sections(modules));
        }
        None
    }

    /// `T004-T010`, `1.2-1.5`: ids with the same prefix and a number in range.
    fn resolve_range(&self, r: &str) -> Option<Vec<TaskIdx>> {
        let (a, b) = r.split_once('-')?;
        let (pa, na) = split_number(a.trim())?;
        let (pb, nb) = split_number(b.trim())?;
        if !pb.is_empty() && !pa.eq_ignore_ascii_case(pb) {
            return None;
        }
        let (lo, hi) = (na.min(nb), na.max(nb));
        let found: Vec<TaskIdx> = self
            .doc
            .tasks
            .iter()
            .filter(|t| {
                split_number(&t.id)
                    .is_some_and(|(p, n)| p.eq_ignore_ascii_case(pa) && n >= lo && n <= hi)
            })
            .map(|t| t.index)
            .collect();
        (!found.is_empty()).then_some(found)
    }

    /// The nearest id or section title, for "did you mean".
    fn suggest(&self, r: &str) -> Option<String> {
        let r = r.trim();
        let max = (r.chars().count().div_ceil(3)).clamp(1, 3);
        let mut best: Option<(usize, String)> = None;
        let names = self
            .doc
            .tasks
            .iter()
            .map(|t| t.id.as_str())
            .chain(self.doc.sections.iter().map(|s| s.title.as_str()));
        for name in names.take(200_000) {
            if name.len().abs_diff(r.len()) > max {
                continue;
            }
            let d = edit_distance(&r.to_lowercase(), &name.to_lowercase());
            if d <= max && best.as_ref().is_none_or(|(bd, _)| d < *bd) {
                best = Some((d, name.to_string()));
            }
        }
        best.map(|(_, n)| n)
    }

    fn diag_at_task(&self, t: TaskIdx, message: String) -> Diagnostic {
        let task = &self.doc.tasks[t];
        Diagnostic::error(task.pos.line, task.pos.col, message).with_path(self.doc.path.clone())
    }

    /// `after:` hints and dependency text.
    fn reference_edges(&mut self) {
        let doc = self.doc;
        let mut reported: FxHashSet<(usize, usize, String)> = FxHashSet::default();
        for c in 0..self.cands.len() {
            let t = self.cands[c];
            let task = &doc.tasks[t];
            // (reference, reason, where it was written: task or section)
            let mut refs: Vec<(&str, EdgeReason, Origin)> = Vec::new();
            let mut cur = Some(t);
            while let Some(x) = cur {
                let tx = &doc.tasks[x];
                for a in &tx.hints.after {
                    refs.push((a, EdgeReason::After, Origin::Task(x)));
                }
                for a in tx.depends_on() {
                    refs.push((a, EdgeReason::DependsOn, Origin::Task(x)));
                }
                cur = tx.parent.filter(|&p| p != x);
            }
            let mut sec = task.section;
            let mut depth = 0;
            while let Some(s) = sec {
                let Some(section) = doc.sections.get(s) else {
                    break;
                };
                for a in &section.hints.after {
                    refs.push((a, EdgeReason::After, Origin::Section(s)));
                }
                sec = section.parent;
                depth += 1;
                if depth > 64 {
                    break;
                }
            }
            if let Some(g) = task.group.and_then(|g| doc.groups.get(g)) {
                let origin = g.section.map_or(Origin::Task(t), Origin::Section);
                for a in &g.after {
                    refs.push((a, EdgeReason::After, origin));
                }
            }
            let mut seen_refs: FxHashSet<&str> = FxHashSet::default();
            for (r, reason, origin) in refs {
                if !seen_refs.insert(r) {
                    continue;
                }
                let what = if reason == EdgeReason::After {
                    "`after:`"
                } else {
                    "the dependency text"
                };
                let report_key = match origin {
                    Origin::Task(x) => (0, x, r.to_string()),
                    Origin::Section(s) => (1, s, r.to_string()),
                };
                match self.resolve(r) {
                    None => {
                        if reported.insert(report_key) {
                            let mut d = self.diag_at_origin(
                                origin,
                                format!(
                                    "{what} names `{}`, which is no task id or section here",
                                    r.trim()
                                ),
                            );
                            d = match self.suggest(r) {
                                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                                None => d.with_help(
                                    "write a task id (`T012`, `1.2`), a range (`T012-T015`) or a section title",
                                ),
                            };
                            self.errors.push(d);
                        }
                    }
                    Some(Target::Tasks(ts)) => {
                        for x in ts {
                            let leaves = self.leaves_of(x);
                            if leaves.contains(&t) {
                                if reported.insert(report_key.clone()) {
                                    let msg = if x == t {
                                        format!("task `{}` depends on itself", task.id)
                                    } else {
                                        format!(
                                            "task `{}` depends on `{}`, which contains it",
                                            task.id, doc.tasks[x].id
                                        )
                                    };
                                    self.errors.push(self.diag_at_origin(origin, msg).with_help(
                                        "remove this dependency: a task cannot wait for itself",
                                    ));
                                }
                                continue;
                            }
                            let set: Vec<usize> =
                                leaves.iter().filter_map(|&l| self.cand_of[l]).collect();
                            let label = doc.tasks[x].id.clone();
                            self.wait_on_set(c, SetKey::Task(x), &set, reason.clone(), || label);
                        }
                    }
                    Some(Target::Sections(ss)) => {
                        for s in ss {
                            if self.task_in_section(t, s) {
                                if reported.insert(report_key.clone()) {
                                    let title = &doc.sections[s].title;
                                    self.errors.push(
                                        self.diag_at_origin(
                                            origin,
                                            format!(
                                                "task `{}` waits for section `{title}`, which contains it",
                                                task.id
                                            ),
                                        )
                                        .with_help("name an earlier section or task instead"),
                                    );
                                }
                                continue;
                            }
                            let set = self.section_cands(s);
                            let title = doc.sections[s].title.clone();
                            self.wait_on_set(c, SetKey::Section(s), &set, reason.clone(), || {
                                format!("section {title}")
                            });
                        }
                    }
                }
            }
        }
    }

    /// The candidates a prose reference names: `US3` (the phases of user
    /// story 3, else headings naming it), or anything [`resolve`] knows.
    fn prose_cands(&self, r: &str) -> Vec<usize> {
        let doc = self.doc;
        let upper = r.trim().to_uppercase();
        if let Some(n) = upper
            .strip_prefix("US")
            .filter(|n| n.bytes().all(|c| c.is_ascii_digit()))
        {
            let mut out: Vec<usize> = Vec::new();
            if doc.dialect == Dialect::SpecKit {
                let mut by_wave: Vec<Vec<usize>> = vec![Vec::new(); doc.waves.len()];
                for (c, &t) in self.cands.iter().enumerate() {
                    if let Some(w) = doc.tasks[t].wave.filter(|&w| w < by_wave.len()) {
                        by_wave[w].push(c);
                    }
                }
                for (w, cs) in by_wave.iter().enumerate() {
                    if !cs.is_empty()
                        && story_of_wave(doc, w, cs, &self.cands).as_deref() == Some(upper.as_str())
                    {
                        out.extend_from_slice(cs);
                    }
                }
            }
            if out.is_empty() {
                let name = format!("user story {n}");
                for sec in &doc.sections {
                    let t = sec.title.to_lowercase();
                    if let Some(at) = t.find(&name)
                        && !t[at + name.len()..].starts_with(|c: char| c.is_ascii_digit())
                    {
                        out.extend(self.section_cands(sec.index));
                    }
                }
            }
            out.sort_unstable();
            out.dedup();
            return out;
        }
        let mut out = match self.resolve(r) {
            None => Vec::new(),
            Some(Target::Tasks(ts)) => ts
                .into_iter()
                .flat_map(|t| self.leaves_of(t))
                .filter_map(|l| self.cand_of[l])
                .collect(),
            Some(Target::Sections(ss)) => {
                ss.into_iter().flat_map(|s| self.section_cands(s)).collect()
            }
        };
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The candidates of sections (and named tasks) whose author wrote what
    /// they wait for: `**Dependencies:** Task 9` (or `None`) under a
    /// heading, an item of an "Implementation order" list. User stories are
    /// left out: their phases keep the strict order unless `--cross-wave`.
    fn prose_waiters(&self) -> FxHashSet<usize> {
        let mut out = FxHashSet::default();
        for dep in &self.doc.prose_deps {
            let waiters = match &dep.waiter {
                // A line under the title speaks of the whole file, not of
                // one section's place in the order.
                ProseWaiter::Section(s)
                    if self
                        .doc
                        .sections
                        .get(*s)
                        .is_none_or(|sec| sec.level < self.doc.wave_level) =>
                {
                    continue;
                }
                ProseWaiter::Section(s) => self.section_cands(*s),
                ProseWaiter::Named(r) if !is_story_ref(r) => {
                    if dep.on.iter().all(|o| self.prose_cands(o).is_empty()) {
                        continue;
                    }
                    self.prose_cands(r)
                }
                ProseWaiter::Named(_) => continue,
            };
            if let ProseWaiter::Section(_) = dep.waiter
                && !dep.on.is_empty()
                && dep.on.iter().all(|o| self.prose_cands(o).is_empty())
            {
                continue;
            }
            out.extend(waiters);
        }
        out
    }

    /// Whether some node of `from` waits, directly or not, for a node of `to`.
    fn reaches(&self, from: &[usize], to: &[usize]) -> bool {
        let target: FxHashSet<usize> = to.iter().copied().collect();
        let mut seen = vec![false; self.cands.len()];
        let mut seen_barrier = vec![false; self.drafts.len()];
        let mut stack: Vec<usize> = from.to_vec();
        while let Some(v) = stack.pop() {
            if target.contains(&v) {
                return true;
            }
            if std::mem::replace(&mut seen[v], true) {
                continue;
            }
            stack.extend(self.deps[v].iter().map(|e| e.on));
            for &b in &self.node_barriers[v] {
                if !std::mem::replace(&mut seen_barrier[b], true) {
                    stack.extend_from_slice(&self.drafts[b].members);
                }
            }
        }
        false
    }

    /// Dependencies read from prose: each waiter waits for what it names,
    /// unless that would turn the document's own order around (then the
    /// prose is reported as not followed rather than made a cycle).
    fn prose_edges(&mut self) {
        let doc = self.doc;
        for (i, dep) in doc.prose_deps.iter().enumerate() {
            let (waiter_label, waiters) = match &dep.waiter {
                ProseWaiter::Section(s) => match doc.sections.get(*s) {
                    Some(sec) => (sec.title.clone(), self.section_cands(*s)),
                    None => continue,
                },
                ProseWaiter::Named(r) => (r.clone(), self.prose_cands(r)),
            };
            if dep.on.is_empty() {
                continue;
            }
            let mut on: Vec<usize> = dep.on.iter().flat_map(|r| self.prose_cands(r)).collect();
            on.sort_unstable();
            on.dedup();
            let waiter_set: FxHashSet<usize> = waiters.iter().copied().collect();
            on.retain(|c| !waiter_set.contains(c));
            let mut use_ = ProseUse {
                line: dep.line,
                source: dep.source.clone(),
                waiter: waiter_label,
                on: dep.on.clone(),
                followed: false,
                note: None,
            };
            if waiters.is_empty() || on.is_empty() {
                // Prose that names nothing open here (all done, or no such
                // task): nothing to follow, nothing to say.
                if waiters.is_empty() && on.is_empty() {
                    continue;
                }
                use_.note = Some(if waiters.is_empty() {
                    "nothing left to run waits".to_string()
                } else {
                    "what it waits for is done or not found".to_string()
                });
                self.prose.push(use_);
                continue;
            }
            if self.reaches(&on, &waiters) {
                use_.note = Some(
                    "not followed: the document's order already runs it the other way".to_string(),
                );
                self.prose.push(use_);
                continue;
            }
            let label = format!("{} (line {})", dep.on.join(", "), dep.line);
            for &c in &waiters {
                // A task that already waits for another of the waiters (its
                // group's order) gets the dependency through it.
                let inside = self.deps[c].iter().any(|e| waiter_set.contains(&e.on))
                    || self.node_barriers[c].iter().any(|&b| {
                        self.drafts[b]
                            .members
                            .iter()
                            .any(|m| waiter_set.contains(m))
                    });
                if inside {
                    continue;
                }
                let label = label.clone();
                self.wait_on_set(c, SetKey::Prose(i), &on, EdgeReason::Prose, || label);
            }
            use_.followed = true;
            self.prose.push(use_);
        }
    }

    fn task_in_section(&self, t: TaskIdx, s: SectionIdx) -> bool {
        let Some(sec) = self.doc.sections.get(s) else {
            return false;
        };
        let off = self.doc.tasks[t].pos.offset;
        off >= sec.pos.offset && off < self.section_end.get(s).copied().unwrap_or(usize::MAX)
    }

    fn diag_at_origin(&self, origin: Origin, message: String) -> Diagnostic {
        match origin {
            Origin::Task(t) => self.diag_at_task(t, message),
            Origin::Section(s) => {
                let sec = &self.doc.sections[s];
                Diagnostic::error(sec.pos.line, sec.pos.col, message)
                    .with_path(self.doc.path.clone())
            }
        }
    }

    /// `--only`: the selected candidates, or `None` for everything.
    fn resolve_only(&mut self) -> Option<Vec<bool>> {
        if self.options.only.is_empty() {
            return None;
        }
        let mut chosen = vec![false; self.cands.len()];
        for (i, sel) in self.options.only.iter().enumerate() {
            if sel.trim().is_empty() {
                continue;
            }
            match self.resolve(sel) {
                None => {
                    // The problem is on the command line, not in the file: show
                    // that line, with the caret under the selector.
                    let line = format!("--only {}", self.options.only.join(","));
                    let col = "--only ".len()
                        + self.options.only[..i]
                            .iter()
                            .map(|x| x.chars().count() + 1)
                            .sum::<usize>()
                        + 1;
                    let mut d = Diagnostic::error(
                        1,
                        col,
                        format!(
                            "`--only` names `{}`, which is no task id or section here",
                            sel.trim()
                        ),
                    )
                    .with_path(self.doc.path.clone())
                    .with_source_line(line);
                    d = match self.suggest(sel) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help("give task ids (`T004`), ranges (`T004-T010`) or section titles, comma-separated"),
                    };
                    self.errors.push(d);
                }
                Some(Target::Tasks(ts)) => {
                    for t in ts {
                        for l in self.leaves_of(t) {
                            if let Some(c) = self.cand_of[l] {
                                chosen[c] = true;
                            }
                        }
                    }
                }
                Some(Target::Sections(ss)) => {
                    for s in ss {
                        for c in self.section_cands(s) {
                            chosen[c] = true;
                        }
                    }
                }
            }
        }
        // Close over everything the chosen nodes wait for.
        let mut stack: Vec<usize> = (0..chosen.len()).filter(|&c| chosen[c]).collect();
        let mut barrier_seen = vec![false; self.drafts.len()];
        while let Some(c) = stack.pop() {
            for e in &self.deps[c] {
                if !chosen[e.on] {
                    chosen[e.on] = true;
                    stack.push(e.on);
                }
            }
            for &b in &self.node_barriers[c] {
                if !barrier_seen[b] {
                    barrier_seen[b] = true;
                    for &m in &self.drafts[b].members {
                        if !chosen[m] {
                            chosen[m] = true;
                            stack.push(m);
                        }
                    }
                }
            }
        }
        Some(chosen)
    }

    /// Kahn's algorithm over nodes and barriers; ties go to document order.
    /// Returns the candidates in order (fewer than all when there is a cycle).
    fn topo_order(&self) -> Vec<usize> {
        let n = self.cands.len();
        let nb = self.drafts.len();
        let mut indeg = vec![0usize; n];
        let mut bleft = vec![0usize; nb];
        let mut dep_pairs = Vec::new();
        let mut wait_pairs = Vec::new();
        let mut member_pairs = Vec::new();
        for (c, deg) in indeg.iter_mut().enumerate() {
            *deg = self.deps[c].len() + self.node_barriers[c].len();
            for e in &self.deps[c] {
                dep_pairs.push((e.on, c));
            }
            for &b in &self.node_barriers[c] {
                wait_pairs.push((b, c));
            }
        }
        for (b, d) in self.drafts.iter().enumerate() {
            bleft[b] = d.members.len();
            for &m in &d.members {
                member_pairs.push((m, b));
            }
        }
        let dependents = super::ready::Csr::from_pairs(n, &dep_pairs);
        let waiters = super::ready::Csr::from_pairs(nb, &wait_pairs);
        let member_of = super::ready::Csr::from_pairs(n, &member_pairs);
        let mut heap: BinaryHeap<Reverse<usize>> =
            (0..n).filter(|&c| indeg[c] == 0).map(Reverse).collect();
        let mut out = Vec::with_capacity(n);
        while let Some(Reverse(c)) = heap.pop() {
            out.push(c);
            for &d in dependents.get(c) {
                indeg[d] -= 1;
                if indeg[d] == 0 {
                    heap.push(Reverse(d));
                }
            }
            for &b in member_of.get(c) {
                bleft[b] -= 1;
                if bleft[b] == 0 {
                    for &w in waiters.get(b) {
                        indeg[w] -= 1;
                        if indeg[w] == 0 {
                            heap.push(Reverse(w));
                        }
                    }
                }
            }
        }
        out
    }

    /// Reports each strongly connected component with more than one member,
    /// with one concrete cycle through it.
    fn report_cycles(&mut self) {
        let n = self.cands.len();
        let total = n + self.drafts.len();
        // Vertex v waits for its successors: nodes → deps and barriers, barriers → members.
        let succ = |v: usize| -> Vec<usize> {
            if v < n {
                self.deps[v]
                    .iter()
                    .map(|e| e.on)
                    .chain(self.node_barriers[v].iter().map(|&b| n + b))
                    .collect()
            } else {
                self.drafts[v - n].members.clone()
            }
        };
        let sccs = tarjan(total, &succ);
        let mut found = Vec::new();
        for comp in sccs {
            if comp.len() < 2 {
                continue;
            }
            let in_comp: FxHashSet<usize> = comp.iter().copied().collect();
            let Some(&start) = comp.iter().filter(|&&v| v < n).min() else {
                continue;
            };
            // BFS from start back to start inside the component.
            let mut parent: FxHashMap<usize, usize> = FxHashMap::default();
            let mut queue = std::collections::VecDeque::from([start]);
            let mut closing = None;
            'bfs: while let Some(v) = queue.pop_front() {
                for w in succ(v) {
                    if !in_comp.contains(&w) {
                        continue;
                    }
                    if w == start {
                        closing = Some(v);
                        break 'bfs;
                    }
                    if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(w) {
                        e.insert(v);
                        queue.push_back(w);
                    }
                }
            }
            let mut path = vec![start];
            if let Some(mut v) = closing {
                let mut back = Vec::new();
                while v != start {
                    back.push(v);
                    v = parent[&v];
                }
                back.reverse();
                path.extend(back);
            }
            path.push(start);
            found.push((comp, path));
        }
        let found_none = found.is_empty();
        for (comp, path) in found {
            let name = |v: usize| -> String {
                if v < n {
                    self.task_of(v).id.clone()
                } else {
                    format!("[{}]", self.drafts[v - n].label)
                }
            };
            let shown: Vec<String> = path.iter().map(|&v| name(v)).collect();
            let mut steps = Vec::new();
            for w in path.windows(2) {
                let (a, b) = (w[0], w[1]);
                if a < n {
                    let t = self.task_of(a);
                    let why = if b < n {
                        match self.deps[a].iter().find(|e| e.on == b).map(|e| &e.reason) {
                            Some(EdgeReason::After) => "an `after:` hint",
                            Some(EdgeReason::DependsOn) => "its dependency text",
                            Some(EdgeReason::Prose) => "a dependency written in prose",
                            Some(EdgeReason::Order) => "the group's order",
                            _ => "the wave order",
                        }
                    } else {
                        "the wave order"
                    };
                    steps.push(format!(
                        "`{}` (line {}) waits for {} ({why})",
                        t.id,
                        t.pos.line,
                        name(b)
                    ));
                } else if b < n {
                    steps.push(format!("{} includes `{}`", name(a), name(b)));
                }
            }
            let mut members: Vec<usize> = comp.iter().copied().filter(|&v| v < n).collect();
            members.sort_unstable();
            let on_path: FxHashSet<usize> = path.iter().copied().collect();
            let others: Vec<String> = members
                .iter()
                .filter(|v| !on_path.contains(v))
                .take(20)
                .map(|&v| {
                    format!(
                        "`{}` (line {})",
                        self.task_of(v).id,
                        self.task_of(v).pos.line
                    )
                })
                .collect();
            let first = path[0];
            let mut help = format!("remove one of these dependencies: {}", steps.join("; "));
            if !others.is_empty() {
                help.push_str(&format!(
                    "; also caught in the cycle: {}",
                    others.join(", ")
                ));
            }
            let d = self
                .diag_at_task(
                    self.cands[first],
                    format!("dependency cycle: {}", shown.join(" → ")),
                )
                .with_help(help);
            self.errors.push(d);
        }
        if found_none {
            // Kahn stalled but no component was found: cannot happen, say so plainly.
            self.errors.push(
                Diagnostic::error(1, 1, "the tasks' dependencies form a cycle")
                    .with_path(self.doc.path.clone()),
            );
        }
    }

    /// Renumbers in topological order, keeps `--only`'s selection, computes chains.
    fn finish(mut self, order: Vec<usize>, selected: Option<Vec<bool>>) -> Plan {
        let doc = self.doc;
        let keep = |c: usize| selected.as_ref().is_none_or(|s| s[c]);
        let order: Vec<usize> = order.into_iter().filter(|&c| keep(c)).collect();
        let mut node_of = vec![usize::MAX; self.cands.len()];
        for (i, &c) in order.iter().enumerate() {
            node_of[c] = i;
        }
        // Barriers that some kept node waits for, renumbered in creation order.
        let mut used = vec![false; self.drafts.len()];
        for &c in &order {
            for &b in &self.node_barriers[c] {
                used[b] = true;
            }
        }
        let mut barrier_of = vec![usize::MAX; self.drafts.len()];
        let mut barriers = Vec::new();
        for (b, d) in self.drafts.iter().enumerate() {
            if !used[b] {
                continue;
            }
            let mut members: Vec<usize> = d
                .members
                .iter()
                .map(|&m| node_of[m])
                .filter(|&m| m != usize::MAX)
                .collect();
            if members.is_empty() {
                continue;
            }
            members.sort_unstable();
            barrier_of[b] = barriers.len();
            // "tasks before T128" does not say which: name them.
            let label = if d.reason == EdgeReason::Order {
                let ids: Vec<&str> = members
                    .iter()
                    .map(|&m| doc.tasks[self.cands[order[m]]].id.as_str())
                    .collect();
                if ids.len() <= 4 {
                    ids.join(", ")
                } else {
                    format!("{} … {} ({} tasks)", ids[0], ids[ids.len() - 1], ids.len())
                }
            } else {
                d.label.clone()
            };
            barriers.push(Barrier {
                index: barriers.len(),
                members,
                reason: d.reason.clone(),
                label,
            });
        }
        let mut excluded = Vec::new();
        for (t, reason) in self.excluded.iter().enumerate() {
            let reason = match reason {
                Some(r) => *r,
                None => match self.cand_of[t] {
                    Some(c) if !keep(c) => "not selected by --only",
                    _ => continue,
                },
            };
            excluded.push(Excluded {
                task: t,
                id: doc.tasks[t].id.clone(),
                reason: reason.to_string(),
            });
        }
        // What the nodes no longer need goes before they are made (100,000
        // nodes: the peak of a plan is here).
        drop(std::mem::take(&mut self.excluded));
        drop(std::mem::take(&mut self.cand_of));
        drop(std::mem::take(&mut self.order_succ));
        drop(std::mem::take(&mut self.stamp));
        drop(std::mem::take(&mut self.section_end));
        drop(std::mem::take(&mut self.draft_keys));
        drop(std::mem::take(&mut self.ids));
        drop(std::mem::take(&mut self.ids_folded));
        drop(std::mem::take(&mut self.drafts));
        let mut nodes: Vec<PlanNode> = Vec::with_capacity(order.len());
        for (i, &c) in order.iter().enumerate() {
            let t = self.cands[c];
            let task = &doc.tasks[t];
            // Renumbered in place: the builder's vectors become the node's.
            let mut deps = std::mem::take(&mut self.deps[c]);
            deps.retain_mut(|e| {
                e.on = node_of[e.on];
                e.on != usize::MAX
            });
            let mut node_barriers = std::mem::take(&mut self.node_barriers[c]);
            node_barriers.retain_mut(|b| {
                *b = barrier_of[*b];
                *b != usize::MAX
            });
            let group = task.group.unwrap_or(0);
            nodes.push(PlanNode {
                index: i,
                task: t,
                wave: doc.groups.get(group).map_or(0, |g| g.wave),
                group,
                order: i,
                deps,
                chain: 1,
                resources: resources_of(doc, t),
                barriers: node_barriers,
            });
        }
        compute_chains(&mut nodes, &barriers);
        let groups = doc
            .groups
            .iter()
            .map(|g| {
                let mode_limit = match (self.group_mode(g.index), g.parallel) {
                    (Mode::Runs, _) => None,
                    (_, Parallelism::Max(n)) => Some(n.max(1)),
                    (_, Parallelism::Sequential) => Some(1),
                    _ => None,
                };
                PlanGroup {
                    group: g.index,
                    limit: mode_limit,
                    parallel: g.parallel,
                }
            })
            .collect();
        Plan {
            nodes,
            groups,
            excluded,
            dialect: doc.dialect,
            dialect_reason: doc.dialect_reason.clone(),
            cross_wave: self.cross_wave,
            barriers,
            prose: self.prose,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// All side by side.
    Together,
    /// One at a time.
    Chain,
    /// One at a time, except runs of `[P]` / `(P)` tasks side by side.
    Runs,
}

#[derive(Clone, Copy)]
enum Origin {
    Task(TaskIdx),
    Section(SectionIdx),
}

/// A numbered sequence being laid out: its current number, the tasks of
/// that number, and the tasks of the number before.
type Sequence = (usize, Vec<usize>, Vec<usize>);

/// `US3`: a user story.
fn is_story_ref(r: &str) -> bool {
    let u = r.trim().to_uppercase();
    u.strip_prefix("US")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// The outermost parent task of `t`, if it has one.
fn top_parent(doc: &Document, t: TaskIdx) -> Option<TaskIdx> {
    let mut cur = doc.tasks[t].parent?;
    let mut guard = 0;
    while let Some(p) = doc.tasks.get(cur).and_then(|x| x.parent) {
        cur = p;
        guard += 1;
        if guard > 1000 {
            break;
        }
    }
    Some(cur)
}

/// The section that makes task `t` no work item ("Success criteria", …),
/// unless a `skip: false` hint on the task or on a section between says
/// it is work.
pub(crate) fn not_work_section(doc: &Document, t: TaskIdx) -> Option<SectionIdx> {
    let task = doc.tasks.get(t)?;
    if task.hints.skip == Some(false) {
        return None;
    }
    let mut s = task.section;
    let mut guard = 0;
    while let Some(i) = s {
        let sec = doc.sections.get(i)?;
        if sec.hints.skip == Some(false) {
            return None;
        }
        if sec.not_work {
            return Some(i);
        }
        s = sec.parent;
        guard += 1;
        if guard > 64 {
            return None;
        }
    }
    None
}

fn not_work(doc: &Document, t: TaskIdx) -> bool {
    not_work_section(doc, t).is_some()
}

/// Per section: whether it or an enclosing section has the flag hint set.
fn section_flags(doc: &Document, flag: impl Fn(&crate::doc::Hints) -> Option<bool>) -> Vec<bool> {
    let mut out = vec![false; doc.sections.len()];
    for (i, s) in doc.sections.iter().enumerate() {
        let inherited = s.parent.filter(|&p| p < i).is_some_and(|p| out[p]);
        out[i] = inherited || flag(&s.hints) == Some(true);
    }
    out
}

/// Per section: the offset where its extent ends (the next heading at its
/// level or shallower, or the end of the file).
fn section_ends(doc: &Document) -> Vec<usize> {
    let mut end = vec![usize::MAX; doc.sections.len()];
    let mut stack: Vec<usize> = Vec::new();
    for (i, s) in doc.sections.iter().enumerate() {
        while let Some(&top) = stack.last() {
            if doc.sections[top].level >= s.level {
                end[top] = s.pos.offset;
                stack.pop();
            } else {
                break;
            }
        }
        stack.push(i);
    }
    end
}

/// The user-story key of a spec-kit phase: "User Story 2" in the title, or
/// every node tagged with the same `[USn]`. `None`: a non-story phase.
fn story_of_wave(
    doc: &Document,
    w: usize,
    cands: &[usize],
    cand_tasks: &[TaskIdx],
) -> Option<String> {
    let title = doc.waves[w].title.to_lowercase();
    if let Some(pos) = title.find("user story") {
        let digits: String = title[pos + "user story".len()..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        if !digits.is_empty() {
            return Some(format!("US{digits}"));
        }
    }
    let mut story: Option<&str> = None;
    for &c in cands {
        match (doc.tasks[cand_tasks[c]].story(), story) {
            (None, _) => return None,
            (Some(s), None) => story = Some(s),
            (Some(s), Some(prev)) if s != prev => return None,
            _ => {}
        }
    }
    story.map(str::to_string)
}

/// Resource names of a task: its hints, its parents', its sections'.
fn resources_of(doc: &Document, t: TaskIdx) -> Vec<String> {
    let mut any = false;
    walk_resource_hints(doc, t, |r| any |= !r.is_empty());
    if !any {
        // Nearly every task: nothing to collect.
        return Vec::new();
    }
    let mut set: BTreeSet<String> = BTreeSet::new();
    walk_resource_hints(doc, t, |r| set.extend(r.iter().cloned()));
    set.into_iter().collect()
}

/// Calls `each` with the `resource:` hints of task `t`, its parents and its
/// sections.
fn walk_resource_hints(doc: &Document, t: TaskIdx, mut each: impl FnMut(&[String])) {
    let mut cur = Some(t);
    let mut guard = 0;
    while let Some(x) = cur {
        let task = &doc.tasks[x];
        each(&task.hints.resource);
        cur = task.parent.filter(|&p| p != x);
        guard += 1;
        if guard > 1000 {
            break;
        }
    }
    let mut sec = doc.tasks[t].section;
    guard = 0;
    while let Some(s) = sec {
        let Some(section) = doc.sections.get(s) else {
            break;
        };
        each(&section.hints.resource);
        sec = section.parent;
        guard += 1;
        if guard > 64 {
            break;
        }
    }
}

/// `chain` = 1 + the longest chain among the nodes waiting for it, directly
/// or through a barrier. Nodes are in topological order, so one reverse pass.
fn compute_chains(nodes: &mut [PlanNode], barriers: &[Barrier]) {
    let n = nodes.len();
    let mut best = vec![0usize; n];
    let mut bval = vec![0usize; barriers.len()];
    let mut member_pairs = Vec::new();
    for b in barriers {
        for &m in &b.members {
            member_pairs.push((m, b.index));
        }
    }
    let member_of = super::ready::Csr::from_pairs(n, &member_pairs);
    for i in (0..n).rev() {
        let mut m = best[i];
        for &b in member_of.get(i) {
            m = m.max(bval[b]);
        }
        let chain = m + 1;
        nodes[i].chain = chain;
        for e in &nodes[i].deps {
            best[e.on] = best[e.on].max(chain);
        }
        for &b in &nodes[i].barriers {
            bval[b] = bval[b].max(chain);
        }
    }
}

/// Whether `title` starts with `prefix` (already lowercase) and the next
/// character ends the name: `Phase 2` is in "Phase 2: Core" but not in
/// "Phase 20" or "Phase 2.1".
fn title_starts_with(title: &str, prefix: &str) -> bool {
    let t = title.trim().to_lowercase();
    let Some(rest) = t.strip_prefix(prefix) else {
        return false;
    };
    let mut chars = rest.chars();
    match chars.next() {
        None => true,
        Some('.') => !chars.next().is_some_and(|c| c.is_ascii_digit()),
        Some(c) => !c.is_alphanumeric(),
    }
}

/// Splits `T012` into (`T`, 12) and `1.2` into (`1.`, 2).
fn split_number(s: &str) -> Option<(&str, u64)> {
    let digits = s.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 18 {
        return None;
    }
    let (head, tail) = s.split_at(s.len() - digits);
    Some((head, tail.parse().ok()?))
}

/// Levenshtein distance over chars (short strings only).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 200 || b.len() > 200 {
        return usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Tarjan's strongly connected components, iteratively.
fn tarjan(total: usize, succ: &dyn Fn(usize) -> Vec<usize>) -> Vec<Vec<usize>> {
    const UNSET: usize = usize::MAX;
    let mut index = vec![UNSET; total];
    let mut low = vec![0usize; total];
    let mut on_stack = vec![false; total];
    let mut stack = Vec::new();
    let mut next = 0usize;
    let mut out = Vec::new();
    for root in 0..total {
        if index[root] != UNSET {
            continue;
        }
        // (vertex, its successors, position in them)
        let mut call: Vec<(usize, Vec<usize>, usize)> = vec![(root, succ(root), 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some((v, ws, pos)) = call.last_mut() {
            let v = *v;
            if *pos < ws.len() {
                let w = ws[*pos];
                *pos += 1;
                if index[w] == UNSET {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    let sw = succ(w);
                    call.push((w, sw, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some((parent, _, _)) = call.last() {
                    low[*parent] = low[*parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    out.push(comp);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::plan::testdoc::DocBuilder;

    /// A plan with the document it was built from (a node's id is read
    /// from its task).
    #[derive(Debug)]
    struct Planned {
        doc: Document,
        plan: Plan,
    }

    impl std::ops::Deref for Planned {
        type Target = Plan;
        fn deref(&self) -> &Plan {
            &self.plan
        }
    }

    impl Planned {
        fn node_by_id(&self, id: &str) -> Option<&PlanNode> {
            self.plan.node_by_id(&self.doc, id)
        }
    }

    fn plan(b: &DocBuilder) -> Planned {
        let doc = b.build();
        match build(&doc, &PlanOptions::default()) {
            Ok(plan) => Planned { doc, plan },
            Err(e) => panic!("plan failed:\n{e}"),
        }
    }

    fn plan_with(b: &DocBuilder, f: impl FnOnce(&mut PlanOptions)) -> Result<Planned, Diagnostics> {
        let mut o = PlanOptions::default();
        f(&mut o);
        let doc = b.build();
        build(&doc, &o).map(|plan| Planned { doc, plan })
    }

    /// Ids a node waits for directly (deps + barrier members), sorted.
    fn waits(p: &Planned, id: &str) -> Vec<String> {
        let n = p.node_by_id(id).unwrap_or_else(|| panic!("no node {id}"));
        let mut v: Vec<String> = p
            .waits_for(n.index)
            .into_iter()
            .map(|i| p.nodes[i].id(&p.doc).to_string())
            .collect();
        v.sort();
        v
    }

    fn needs(p: &Planned, a: &str, b: &str) -> bool {
        let (Some(a), Some(b)) = (p.node_by_id(a), p.node_by_id(b)) else {
            panic!("missing node {a} or {b}");
        };
        p.depends_on(a.index, b.index)
    }

    fn ids(p: &Planned) -> Vec<&str> {
        p.nodes.iter().map(|n| n.id(&p.doc)).collect()
    }

    fn two_waves_two_modules() -> DocBuilder {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("Wave 1");
        b.group("API");
        b.task("a1", "api one");
        b.task("a2", "api two");
        b.group("Web");
        b.task("w1", "web one");
        b.wave("Wave 2");
        b.group("API");
        b.task("a3", "api three");
        b.group("Web");
        b.task("w2", "web two");
        b.group("Docs");
        b.task("d1", "docs");
        b
    }

    #[test]
    fn strict_waves_make_every_task_of_the_next_wave_wait_for_the_whole_previous_wave() {
        let p = plan(&two_waves_two_modules());
        assert_eq!(ids(&p), ["a1", "a2", "w1", "a3", "w2", "d1"]);
        for later in ["a3", "w2", "d1"] {
            assert_eq!(waits(&p, later), ["a1", "a2", "w1"], "{later}");
        }
        for first in ["a1", "a2", "w1"] {
            assert!(waits(&p, first).is_empty(), "{first} side by side");
        }
        assert_eq!(p.node_by_id("a1").map(|n| n.chain), Some(2));
        assert_eq!(p.node_by_id("d1").map(|n| n.chain), Some(1));
        assert!(!p.cross_wave);
    }

    #[test]
    fn cross_wave_lets_a_module_wait_only_for_its_own_earlier_tasks() {
        let p = plan_with(&two_waves_two_modules(), |o| o.cross_wave = Some(true)).unwrap();
        assert!(p.cross_wave);
        assert_eq!(waits(&p, "a3"), ["a1", "a2"]);
        assert_eq!(waits(&p, "w2"), ["w1"]);
        // A module's first appearance waits for the whole previous wave.
        assert_eq!(waits(&p, "d1"), ["a1", "a2", "w1"]);
    }

    #[test]
    fn cross_wave_document_hint_is_honoured_and_the_flag_overrides_it() {
        let mut b = two_waves_two_modules();
        b.edit_doc(|d| d.hints.cross_wave = Some(true));
        assert!(plan(&b).cross_wave);
        let p = plan_with(&b, |o| o.cross_wave = Some(false)).unwrap();
        assert!(!p.cross_wave);
        assert_eq!(waits(&p, "a3"), ["a1", "a2", "w1"]);
    }

    #[test]
    fn cross_wave_modules_wait_for_earlier_lead_groups_and_lead_groups_join_everything() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("Setup");
        b.task("s1", "lead of wave 1");
        b.group("API");
        b.task("a1", "api");
        b.group("Web");
        b.task("w1", "web");
        b.wave("Build");
        b.group("API");
        b.task("a2", "api again");
        b.wave("Release");
        b.task("r1", "lead of wave 3");
        b.group("Web");
        b.task("w2", "web later");
        let p = plan_with(&b, |o| o.cross_wave = Some(true)).unwrap();
        assert!(waits(&p, "s1").is_empty());
        assert!(
            waits(&p, "a1").is_empty(),
            "same wave as the lead group: side by side"
        );
        assert_eq!(waits(&p, "a2"), ["a1", "s1"]);
        // The lead group of wave 3 joins: the latest API and Web work and the earlier lead.
        assert_eq!(waits(&p, "r1"), ["a2", "s1", "w1"]);
        assert_eq!(waits(&p, "w2"), ["s1", "w1"]);
    }

    #[test]
    fn checked_tasks_are_not_nodes_and_satisfy_what_waits_for_them() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("One");
        let done = b.task("t1", "done already");
        b.task("t2", "open");
        b.wave("Two");
        let t3 = b.task("t3", "needs t1");
        b.edit(done, |t| t.checked = true);
        b.edit(t3, |t| {
            Arc::make_mut(&mut t.hints).after = vec!["t1".into()]
        });
        let p = plan(&b);
        assert_eq!(ids(&p), ["t2", "t3"]);
        assert_eq!(waits(&p, "t3"), ["t2"]);
        assert_eq!(p.excluded.len(), 1);
        assert_eq!(p.excluded[0].id, "t1");
        assert_eq!(p.excluded[0].reason, "done");
    }

    #[test]
    fn a_wave_with_nothing_left_passes_the_wait_to_the_latest_wave_with_work() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("One");
        b.task("t1", "open");
        b.wave("Two");
        let t2 = b.task("t2", "done");
        b.wave("Three");
        b.task("t3", "open");
        b.edit(t2, |t| t.checked = true);
        let p = plan(&b);
        assert_eq!(waits(&p, "t3"), ["t1"]);
    }

    #[test]
    fn parallel_false_chains_a_group_and_parallel_n_sets_its_limit() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("One");
        let g1 = b.group("Seq");
        b.task("s1", "a");
        b.task("s2", "b");
        b.task("s3", "c");
        let g2 = b.group("Limited");
        b.task("l1", "a");
        b.task("l2", "b");
        b.edit_group(g1, |g| {
            g.parallel = Parallelism::Sequential;
            g.parallel_from_hint = true;
        });
        b.edit_group(g2, |g| {
            g.parallel = Parallelism::Max(2);
            g.parallel_from_hint = true;
        });
        let p = plan(&b);
        assert_eq!(waits(&p, "s2"), ["s1"]);
        assert_eq!(waits(&p, "s3"), ["s2"]);
        assert!(waits(&p, "l2").is_empty());
        assert_eq!(p.groups[g2].limit, Some(2));
        assert_eq!(p.groups[g1].limit, Some(1));
        assert_eq!(p.node_by_id("s1").map(|n| n.chain), Some(3));
    }

    #[test]
    fn spec_kit_runs_consecutive_p_tasks_side_by_side_between_sequential_ones() {
        let mut b = DocBuilder::new(Dialect::SpecKit);
        b.wave("Phase 1: Setup");
        b.task("T001", "first");
        let t2 = b.task("T002", "p a");
        let t3 = b.task("T003", "p b");
        b.task("T004", "after the run");
        let t5 = b.task("T005", "p c");
        for t in [t2, t3, t5] {
            b.edit(t, |t| t.parallel_marker = true);
        }
        let p = plan(&b);
        assert!(waits(&p, "T001").is_empty());
        assert_eq!(waits(&p, "T002"), ["T001"]);
        assert_eq!(waits(&p, "T003"), ["T001"]);
        assert_eq!(waits(&p, "T004"), ["T002", "T003"]);
        assert_eq!(waits(&p, "T005"), ["T004"]);
        assert_eq!(p.groups[0].limit, None);
    }

    #[test]
    fn spec_kit_subsections_wait_for_the_earlier_ones_of_their_phase() {
        let mut b = DocBuilder::new(Dialect::SpecKit);
        b.wave("Phase 3: User Story 1");
        b.group("Tests for User Story 1");
        let a = b.task("T010", "test a");
        let c = b.task("T011", "test b");
        b.group("Implementation for User Story 1");
        let d = b.task("T012", "model");
        b.task("T013", "service");
        for t in [a, c, d] {
            b.edit(t, |t| t.parallel_marker = true);
        }
        let p = plan(&b);
        assert!(waits(&p, "T011").is_empty(), "a [P] run starting the phase");
        assert_eq!(waits(&p, "T012"), ["T010", "T011"]);
        assert_eq!(waits(&p, "T013"), ["T012"]);
    }

    #[test]
    fn spec_kit_cross_wave_runs_user_stories_side_by_side_after_the_foundation() {
        let mut b = DocBuilder::new(Dialect::SpecKit);
        b.wave("Phase 1: Setup");
        b.task("T001", "setup");
        b.wave("Phase 2: Foundational");
        b.task("T002", "foundation");
        b.wave("Phase 3: User Story 1 - Login (Priority: P1)");
        b.task("T003", "us1 a");
        b.task("T004", "us1 b");
        b.wave("Phase 4: User Story 2 - Logout");
        let t5 = b.task("T005", "us2");
        b.wave("Phase 5: Polish");
        b.task("T006", "polish");
        b.edit(t5, |t| t.set_story(Some("US2".into())));
        let strict = plan(&b);
        assert_eq!(waits(&strict, "T005"), ["T004"]);
        let p = plan_with(&b, |o| o.cross_wave = Some(true)).unwrap();
        assert_eq!(waits(&p, "T003"), ["T002"]);
        assert_eq!(waits(&p, "T005"), ["T002"]);
        assert!(!needs(&p, "T005", "T003"));
        assert_eq!(waits(&p, "T006"), ["T002", "T004", "T005"]);
    }

    #[test]
    fn kiro_is_a_chain_of_leaves_with_p_runs_and_parents_never_run() {
        let mut b = DocBuilder::new(Dialect::Kiro);
        b.wave("Tasks");
        let p1 = b.task("1", "parent one");
        let c11 = b.child(p1, "1.1", "a");
        let c12 = b.child(p1, "1.2", "b");
        let p2 = b.task("2", "parent two");
        let c21 = b.child(p2, "2.1", "c");
        b.child(p2, "2.2", "d");
        for t in [c11, c12, c21] {
            b.edit(t, |t| t.parallel_marker = true);
        }
        let p = plan(&b);
        assert_eq!(ids(&p), ["1.1", "1.2", "2.1", "2.2"]);
        assert!(waits(&p, "1.2").is_empty(), "(P) run");
        assert!(
            waits(&p, "2.1").is_empty(),
            "an unmarked grouping parent does not end a (P) run"
        );
        assert_eq!(waits(&p, "2.2"), ["1.1", "1.2", "2.1"]);
        let parents: Vec<_> = p
            .excluded
            .iter()
            .filter(|e| e.reason == "parent")
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(parents, ["1", "2"]);
    }

    #[test]
    fn a_dependency_on_a_parent_waits_for_all_its_children() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("One");
        let p1 = b.task("1", "parent");
        b.child(p1, "1.1", "a");
        b.child(p1, "1.2", "b");
        let t = b.task("x", "needs 1");
        b.edit(t, |t| t.set_depends_on(vec!["1".into()]));
        let p = plan(&b);
        assert_eq!(waits(&p, "x"), ["1.1", "1.2"]);
        let n = p.node_by_id("x").unwrap();
        assert!(n.deps.iter().all(|e| e.reason == EdgeReason::DependsOn));
    }

    #[test]
    fn after_a_section_name_joins_every_task_of_that_section() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("One");
        b.group("Setup");
        for i in 0..6 {
            b.task(&format!("s{i}"), "setup");
        }
        b.group("Rest");
        let r = b.task("r", "after setup");
        b.edit(r, |t| {
            Arc::make_mut(&mut t.hints).after = vec!["all of group setup".into()]
        });
        let p = plan(&b);
        assert_eq!(waits(&p, "r"), ["s0", "s1", "s2", "s3", "s4", "s5"]);
        let n = p.node_by_id("r").unwrap();
        assert_eq!(
            n.barriers.len(),
            1,
            "a large join is one barrier, not six edges"
        );
        assert_eq!(p.barriers[n.barriers[0]].label, "section Setup");
    }

    #[test]
    fn group_after_hint_applies_to_every_task_of_the_group() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("One");
        b.group("A");
        b.task("a", "a");
        let g = b.group("B");
        b.task("b1", "b");
        b.task("b2", "b");
        b.edit_group(g, |g| g.after = vec!["a".into()]);
        let p = plan(&b);
        assert_eq!(waits(&p, "b1"), ["a"]);
        assert_eq!(waits(&p, "b2"), ["a"]);
    }

    #[test]
    fn unknown_ids_are_errors_at_the_task_with_the_nearest_id_suggested() {
        let mut b = DocBuilder::new(Dialect::SpecKit);
        b.wave("Phase 1");
        b.task("T001", "a");
        let t = b.task("T002", "b");
        b.edit(t, |t| {
            t.set_depends_on(vec!["T00l".into(), "nothing-like-it-at-all".into()])
        });
        let err = plan_with(&b, |_| {}).unwrap_err();
        assert_eq!(err.error_count(), 2);
        let d = &err.0[0];
        assert_eq!((d.line, d.col), (4, 1));
        assert!(d.message.contains("`T00l`"), "{}", d.message);
        assert_eq!(d.help.as_deref(), Some("did you mean `T001`?"));
        assert_eq!(d.path.as_deref(), Some(std::path::Path::new("tasks.md")));
    }

    #[test]
    fn self_dependencies_are_errors() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("One");
        let t = b.task("a", "a");
        let p1 = b.task("p", "parent");
        let c = b.child(p1, "p.1", "child");
        b.edit(t, |t| Arc::make_mut(&mut t.hints).after = vec!["a".into()]);
        b.edit(c, |t| t.set_depends_on(vec!["p".into()]));
        let err = plan_with(&b, |_| {}).unwrap_err();
        let msgs: Vec<&str> = err.0.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "task `a` depends on itself",
                "task `p.1` depends on `p`, which contains it"
            ]
        );
    }

    #[test]
    fn a_cycle_is_reported_once_with_every_task_in_it_and_their_lines() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("One");
        let a = b.task("a", "a");
        let c = b.task("b", "b");
        let d = b.task("c", "c");
        b.task("free", "not in the cycle");
        b.edit(a, |t| Arc::make_mut(&mut t.hints).after = vec!["c".into()]);
        b.edit(c, |t| Arc::make_mut(&mut t.hints).after = vec!["a".into()]);
        b.edit(d, |t| t.set_depends_on(vec!["b".into()]));
        let err = plan_with(&b, |_| {}).unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        let d = &err.0[0];
        assert_eq!(d.message, "dependency cycle: a → c → b → a");
        let help = d.help.as_deref().unwrap_or_default();
        for needle in ["`a` (line 3)", "`c` (line 5)", "`b` (line 4)"] {
            assert!(help.contains(needle), "{needle} in {help}");
        }
        assert!(!help.contains("free"));
    }

    #[test]
    fn a_cycle_through_a_wave_barrier_is_found() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("One");
        let a = b.task("a", "a");
        b.wave("Two");
        b.task("b", "b");
        b.edit(a, |t| Arc::make_mut(&mut t.hints).after = vec!["b".into()]);
        let err = plan_with(&b, |_| {}).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].message, "dependency cycle: a → b → [wave 1] → a");
    }

    #[test]
    fn only_keeps_the_selection_and_everything_it_needs_that_is_still_open() {
        let mut b = DocBuilder::new(Dialect::SpecKit);
        b.wave("Phase 1");
        b.task("T001", "a");
        let done = b.task("T002", "b");
        b.wave("Phase 2");
        b.task("T003", "c");
        b.task("T004", "d");
        b.task("T005", "e");
        b.task("T006", "f");
        b.edit(done, |t| t.checked = true);
        let p = plan_with(&b, |o| o.only = vec!["T004-T005".into()]).unwrap();
        assert_eq!(ids(&p), ["T001", "T003", "T004", "T005"]);
        let not_selected: Vec<_> = p
            .excluded
            .iter()
            .filter(|e| e.reason == "not selected by --only")
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(not_selected, ["T006"]);
        let p = plan_with(&b, |o| o.only = vec!["phase 1".into()]).unwrap();
        assert_eq!(ids(&p), ["T001"]);
    }

    #[test]
    fn only_with_an_unknown_name_is_an_error() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("One");
        b.task("alpha", "a");
        let err = plan_with(&b, |o| o.only = vec!["alpha".into(), "alhpa".into()]).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert!(err.0[0].message.contains("`--only` names `alhpa`"));
        assert_eq!(err.0[0].source_line, "--only alpha,alhpa");
        assert_eq!(err.0[0].col, 14, "the caret is under the bad selector");
        assert_eq!(err.0[0].help.as_deref(), Some("did you mean `alpha`?"));
    }

    #[test]
    fn optional_skipped_and_stray_tasks_are_excluded_with_their_reason() {
        let mut b = DocBuilder::new(Dialect::Kiro);
        b.heading(1, "Intro");
        b.task("stray", "outside any wave");
        b.wave("Work");
        b.task("1", "real");
        let o = b.task("2", "optional");
        let s = b.task("3", "skipped");
        b.edit(o, |t| t.optional = true);
        b.edit(s, |t| Arc::make_mut(&mut t.hints).skip = Some(true));
        let p = plan(&b);
        assert_eq!(ids(&p), ["1"]);
        let reasons: Vec<(&str, &str)> = p
            .excluded
            .iter()
            .map(|e| (e.id.as_str(), e.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("stray", "outside any wave"),
                ("2", "optional"),
                ("3", "skip")
            ]
        );
        let p = plan_with(&b, |o| o.include_optional = true).unwrap();
        assert_eq!(ids(&p), ["1", "2"]);
        assert_eq!(waits(&p, "2"), ["1"]);
    }

    #[test]
    fn a_skip_hint_on_a_section_skips_its_tasks() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("Work");
        b.task("w", "work");
        let s = b.wave("Validation Checklist");
        b.task("v", "looks good");
        b.edit_section(s, |s| s.hints.skip = Some(true));
        let p = plan(&b);
        assert_eq!(ids(&p), ["w"]);
    }

    #[test]
    fn resources_come_from_the_task_and_its_sections() {
        let mut b = DocBuilder::new(Dialect::Waves);
        let w = b.wave("One");
        let t = b.task("a", "a");
        b.edit(t, |t| {
            Arc::make_mut(&mut t.hints).resource = vec!["db".into()]
        });
        let s = b.build().waves[w].section.unwrap_or(0);
        b.edit_section(s, |s| s.hints.resource = vec!["build".into()]);
        let p = plan(&b);
        assert_eq!(p.nodes[0].resources, ["build", "db"]);
    }

    #[test]
    fn order_is_topological_and_document_order_among_ties() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("One");
        let a = b.task("a", "a");
        b.task("b", "b");
        b.task("c", "c");
        b.edit(a, |t| Arc::make_mut(&mut t.hints).after = vec!["c".into()]);
        let p = plan(&b);
        assert_eq!(ids(&p), ["b", "c", "a"]);
        for (i, n) in p.nodes.iter().enumerate() {
            assert_eq!(n.order, i);
            assert_eq!(n.index, i);
            assert!(n.deps.iter().all(|e| e.on < i));
        }
    }

    #[test]
    fn wide_waves_cost_a_linear_number_of_edges() {
        let mut b = DocBuilder::new(Dialect::Waves);
        let (waves, per_wave) = (100, 300);
        for w in 0..waves {
            b.wave(&format!("Wave {w}"));
            b.group("mod");
            for i in 0..per_wave {
                b.task(&format!("t{w}-{i}"), "x");
            }
        }
        let p = plan(&b);
        let n = waves * per_wave;
        assert_eq!(p.nodes.len(), n);
        let edges: usize = p
            .nodes
            .iter()
            .map(|x| x.deps.len() + x.barriers.len())
            .sum();
        let members: usize = p.barriers.iter().map(|b| b.members.len()).sum();
        assert!(edges + members <= 3 * n, "{edges} edges, {members} members");
        assert_eq!(p.nodes[0].chain, waves);
        let last = p.node_by_id("t99-0").unwrap().index;
        assert!(p.depends_on(last, 0));
    }

    #[test]
    fn a_100k_chain_plans_without_recursion() {
        let mut b = DocBuilder::new(Dialect::Kiro);
        b.wave("All");
        for i in 0..100_000 {
            b.task(&format!("{i}"), "x");
        }
        let p = plan(&b);
        assert_eq!(p.nodes[0].chain, 100_000);
        // A cycle over the whole chain is found and reported without recursion too.
        let mut b2 = b;
        b2.edit(0, |t| t.set_depends_on(vec!["99999".into()]));
        let err = plan_with(&b2, |_| {}).unwrap_err();
        assert!(
            err.0[0]
                .message
                .starts_with("dependency cycle: 0 → 99999 → 99998")
        );
    }
}
