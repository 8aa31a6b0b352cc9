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
//! - unchecked tasks added to the file are reported; this run does not run
//!   them (the scheduler's graph is fixed for the run), the next run does.
//!
//! A [`RunEvent::PlanChanged`] says what changed. A task that has started is
//! never touched: its attempts keep the text they started with. A changed
//! task whose `verify:` command is not approved
//! ([`trust`](super::trust)) is not run either: an agent may have written it.

use std::sync::Arc;

use super::dispatcher::Dispatcher;
use super::schedule::NodeState;
use super::spec::{SpecPlace, task_spec};
use crate::doc::Document;
use crate::events::RunEvent;
use crate::exec::Outcome;
use crate::store::journal::text_hash;

impl Dispatcher {
    /// Follows `doc` (the task file as it is now) for the tasks not started yet.
    pub(super) fn replan(&mut self, doc: &Document) {
        let mut changed = Vec::new();
        let mut dropped = Vec::new();
        let mut unapproved = Vec::new();
        let mut place = SpecPlace::new(&self.task_file);
        place.workdir = self.options.workdir.as_deref();
        place.verify = self.options.verify.as_deref();
        for i in 0..self.nodes.len() {
            let not_started = self.runs[i].attempts == 0
                && self.runs[i].outcome.is_none()
                && matches!(self.sched.state(i), NodeState::Waiting | NodeState::Ready);
            if !not_started {
                continue;
            }
            let id = self.nodes[i].spec.id.clone();
            let Some(task) = doc.task_by_id(&id) else {
                dropped.push(i);
                continue;
            };
            let hash = text_hash(&task.text);
            if hash == self.nodes[i].hash {
                continue;
            }
            let spec = task_spec(doc, task, &place, &self.prompt);
            if let (Some(cmd), Some(state)) = (&task.hints.verify, &self.state_dir)
                && !self.options.trust_verify
                && super::trust::pending(state, &[(id.clone(), task.pos.line, cmd.clone())])
                    .is_ok_and(|p| !p.is_empty())
            {
                unapproved.push((i, cmd.clone()));
                continue;
            }
            let cfg = &mut self.nodes[i];
            cfg.spec = Arc::new(spec);
            cfg.hash = hash;
            if let Some(r) = task.hints.retries {
                cfg.retries = r;
            }
            if let Some(t) = task.hints.timeout {
                cfg.timeout = Some(t);
            }
            changed.push(id);
        }
        let added: Vec<String> = doc
            .tasks
            .iter()
            .filter(|t| !t.checked && !t.is_parent() && !self.id_to_node.contains_key(&t.id))
            .filter(|t| self.added_seen.insert(t.id.clone()))
            .map(|t| t.id.clone())
            .collect();
        if changed.is_empty() && dropped.is_empty() && unapproved.is_empty() && added.is_empty() {
            return;
        }
        let dropped_ids: Vec<String> = dropped
            .iter()
            .chain(unapproved.iter().map(|(i, _)| i))
            .map(|&i| self.nodes[i].spec.id.clone())
            .collect();
        self.emit(RunEvent::PlanChanged {
            changed,
            dropped: dropped_ids,
            added,
        });
        for i in dropped {
            self.drop_node(i, "removed from the task file during the run".into(), true);
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

    /// Takes a node that has not started out of the run: skipped with
    /// `reason`; its dependants go on when the user `removed` it, and are
    /// skipped otherwise.
    fn drop_node(&mut self, i: usize, reason: String, removed: bool) {
        self.sched.start(i);
        self.runs[i].removed = removed;
        self.skip(i, reason);
        if removed {
            self.sched.succeed(i);
        } else {
            let id = self.nodes[i].spec.id.clone();
            self.fail_node(i, format!("dependency `{id}` was not run"));
        }
        debug_assert!(matches!(self.runs[i].outcome, Some(Outcome::Skipped)));
    }
}
