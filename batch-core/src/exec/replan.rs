//! Following the task file while the run goes on.
//!
//! People keep editing the task file during a batch. Before tasks are
//! launched the dispatcher re-reads the file when it changed
//! (`refresh_checked`) and hands the new document to [`Dispatcher::replan`]:
//!
//! - a task not started yet whose text changed gets a new spec (prompt,
//!   hints, hash): it runs as now written, and its box is checked for that
//!   text;
//! - a task not started yet that is gone from the file is not run: it is
//!   skipped as removed (its dependants go on, as after a box checked by
//!   hand: the user took it out);
//! - unchecked tasks added to the file are planned into the running batch:
//!   a plan of the new document says what each waits for (its wave's
//!   barrier, `after:`, its dependencies); those still to finish in this run
//!   hold it back, a failed one skips it, everything else is done. They start
//!   after the planned tasks that are ready at the same time.
//!
//! A [`RunEvent::PlanChanged`] says what changed. A task that has started is
//! never touched: its attempts keep the text they started with. A changed
//! task whose `verify:` command is not approved
//! ([`trust`](super::trust)) is not run either: an agent may have written it.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use super::dispatcher::{Dispatcher, NodeConfig, NodeRun};
use super::schedule::NodeState;
use super::spec::{Resolved, SpecPlace};
use crate::doc::Document;
use crate::events::RunEvent;
use crate::exec::Outcome;
use crate::exec::options::Launcher;
use crate::plan::{Plan, PlanOptions};
use crate::store::journal::text_hash;

impl Dispatcher {
    /// Follows `doc` (the task file as it is now) for the tasks not started yet.
    pub(super) fn replan(&mut self, doc: &Document) {
        let mut changed = Vec::new();
        let mut dropped = Vec::new();
        let mut unapproved = Vec::new();
        let mut refused = Vec::new();
        let (task_file, workdir, verify) = (
            self.task_file.clone(),
            self.options.workdir.clone(),
            self.options.verify.clone(),
        );
        let mut place = SpecPlace::new(&task_file);
        place.workdir = workdir.as_deref();
        place.verify = verify.as_deref();
        let mut place = Resolved::new(&place, doc, self.prompt.clone());
        for i in 0..self.nodes.len() {
            let not_started = self.runs[i].attempts == 0
                && self.runs[i].outcome.is_none()
                && matches!(self.sched.state(i), NodeState::Waiting | NodeState::Ready);
            if !not_started {
                continue;
            }
            let id = self.nodes[i].spec.id().to_string();
            let Some(task) = doc.task_by_id(&id) else {
                dropped.push(i);
                continue;
            };
            let hash = text_hash(&task.text);
            if hash == self.nodes[i].hash() {
                continue;
            }
            let spec = place.spec(doc, task);
            if self.options.launcher == Launcher::Slurm
                && let Some((arg, why)) = super::prepare::refused_task_launcher_hint(doc, task)
            {
                refused.push((i, format!("launcher-arg: {arg}: refused: {why}")));
                continue;
            }
            if let (Some(cmd), Some(state)) = (&task.hints.verify, &self.state_dir)
                && !self.options.trust_verify
                && super::trust::pending(state, &[(id.clone(), task.pos.line, cmd.clone())], true)
                    .is_ok_and(|p| !p.is_empty())
            {
                unapproved.push((i, cmd.clone()));
                continue;
            }
            let cfg = &mut self.nodes[i];
            cfg.spec = Arc::new(spec);
            cfg.hash = OnceLock::from(hash);
            if let Some(r) = task.hints.retries {
                cfg.retries = r;
            }
            if let Some(t) = task.hints.timeout {
                cfg.timeout = Some(t);
            }
            changed.push(id);
        }
        let (added, blocked) = self.add_new_tasks(doc, &mut place);
        if changed.is_empty()
            && dropped.is_empty()
            && unapproved.is_empty()
            && refused.is_empty()
            && added.is_empty()
        {
            return;
        }
        let dropped_ids: Vec<String> = dropped
            .iter()
            .chain(unapproved.iter().map(|(i, _)| i))
            .chain(refused.iter().map(|(i, _)| i))
            .map(|&i| self.nodes[i].spec.id().to_string())
            .collect();
        self.emit(RunEvent::PlanChanged {
            changed,
            dropped: dropped_ids,
            added,
        });
        for i in dropped {
            self.drop_node(i, "removed from the task file during the run".into(), true);
        }
        for (i, reason) in blocked {
            self.sched.finish(i);
            self.skip(i, reason);
        }
        for (i, why) in refused {
            self.drop_node(
                i,
                format!("its text changed during the run and its {why}"),
                false,
            );
        }
        for (i, cmd) in unapproved {
            self.drop_node(
                i,
                format!(
                    "its text changed during the run and its verify command `{cmd}` is not \
                     approved; review it, then run again with --trust-verify"
                ),
                false,
            );
        }
    }

    /// Plans the unchecked tasks added to `doc` into the running batch: each
    /// waits for what its wave and dependencies in a plan of `doc` say, as far
    /// as those are still to finish in this run (a prerequisite that failed
    /// skips it). Returns their ids and the ones to skip (with why).
    fn add_new_tasks(
        &mut self,
        doc: &Document,
        place: &mut Resolved,
    ) -> (Vec<String>, Vec<(usize, String)>) {
        let mut added = Vec::new();
        let mut blocked = Vec::new();
        self.id_index();
        let new = |t: &crate::doc::Task, d: &Dispatcher| {
            !t.checked
                && !t.is_parent()
                && !d.id_to_node.contains_key(t.id.as_str())
                && !d.added_seen.contains(&t.id)
        };
        if !doc.tasks.iter().any(|t| new(t, self)) {
            return (added, blocked);
        }
        let plan = match Plan::build(
            doc,
            &PlanOptions {
                cross_wave: self.options.cross_wave,
                only: self.options.only.clone(),
                include_optional: self.options.include_optional,
            },
        ) {
            Ok(p) => p,
            Err(e) => {
                for t in &doc.tasks {
                    self.added_seen.insert(t.id.clone());
                }
                self.emit(RunEvent::Warning {
                    message: format!(
                        "tasks were added to the task file, but it cannot be planned now, so this run does not run them: {e}"
                    ),
                });
                return (added, blocked);
            }
        };
        for node in &plan.nodes {
            let Some(task) = doc.tasks.get(node.task) else {
                continue;
            };
            if !new(task, self) {
                continue;
            }
            self.added_seen.insert(task.id.clone());
            if self.options.launcher == Launcher::Slurm
                && let Some((arg, why)) = super::prepare::refused_task_launcher_hint(doc, task)
            {
                self.emit(RunEvent::Warning {
                    message: format!(
                        "task `{}` was added to the task file with `launcher-arg: {arg}`, which is refused ({why}); it is not run",
                        task.id
                    ),
                });
                continue;
            }
            if let (Some(cmd), Some(state)) = (&task.hints.verify, &self.state_dir)
                && !self.options.trust_verify
                && super::trust::pending(
                    state,
                    &[(task.id.clone(), task.pos.line, cmd.clone())],
                    true,
                )
                .is_ok_and(|p| !p.is_empty())
            {
                self.emit(RunEvent::Warning {
                    message: format!(
                        "task `{}` was added to the task file with a verify command that is not approved (`{cmd}`); \
                         it is not run: review it, then run again with --trust-verify",
                        task.id
                    ),
                });
                continue;
            }
            let mut waits = HashSet::new();
            let mut failed = None;
            let prereqs = node.deps.iter().map(|e| e.on).chain(
                node.barriers
                    .iter()
                    .flat_map(|&b| plan.barriers[b].members.iter().copied()),
            );
            for p in prereqs {
                let Some(pid) = plan
                    .nodes
                    .get(p)
                    .and_then(|n| doc.tasks.get(n.task))
                    .map(|t| &t.id)
                else {
                    continue;
                };
                // Not in this run: checked before it, so done.
                let Some(&j) = self.id_to_node.get(pid.as_str()) else {
                    continue;
                };
                match self.runs[j].outcome {
                    Some(Outcome::Succeeded) => {}
                    Some(Outcome::Skipped)
                        if self.runs[j].removed || self.runs[j].checked_by_hand => {}
                    Some(_) => {
                        failed = Some(pid.clone());
                        break;
                    }
                    None => {
                        waits.insert(j);
                    }
                }
            }
            let spec = place.spec(doc, task);
            let id = spec.shared_id().clone();
            let i = self.sched.add(node.resources.clone(), waits);
            self.nodes.push(NodeConfig {
                hash: OnceLock::new(),
                spec: Arc::new(spec),
                retries: task.hints.retries.unwrap_or(self.options.retries),
                timeout: task.hints.timeout.or(self.options.timeout),
                launcher_args: match self.options.launcher {
                    crate::exec::Launcher::Slurm => {
                        super::prepare::launcher_args(doc, task, &self.options.launcher_args)
                    }
                    _ => Vec::new(),
                },
                wave: node.wave,
                group: doc
                    .groups
                    .get(node.group)
                    .map_or_else(|| Arc::from(""), |g| Arc::from(g.title.as_str())),
            });
            self.runs.push(NodeRun::default());
            // The plan's node list keeps one entry per node; this one has no
            // task in the document the run started from.
            let mut planned = node.clone();
            planned.index = i;
            planned.task = usize::MAX;
            planned.deps.clear();
            planned.barriers.clear();
            self.plan.nodes.push(planned);
            self.id_to_node.insert(id, i);
            added.push(task.id.clone());
            if let Some(dep) = failed {
                blocked.push((i, format!("dependency `{dep}` did not succeed")));
            }
        }
        (added, blocked)
    }

    /// Takes a node that has not started out of the run: skipped with
    /// `reason`; its dependants go on when the user `removed` it, and are
    /// skipped otherwise.
    fn drop_node(&mut self, i: usize, reason: String, removed: bool) {
        // A ready node is taken from the ready set; a waiting one has no
        // slot or place to give back.
        if self.sched.state(i) == NodeState::Ready {
            self.sched.start(i);
        }
        self.runs[i].removed = removed;
        self.skip(i, reason);
        if removed {
            self.sched.succeed(i);
        } else {
            let id = self.nodes[i].spec.id().to_string();
            self.fail_node(i, format!("dependency `{id}` was not run"));
        }
        debug_assert!(matches!(self.runs[i].outcome, Some(Outcome::Skipped)));
    }
}
