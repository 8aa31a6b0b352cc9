//! Checking boxes: the successes of one turn of the loop are written to the
//! task file together ([`taskfile::check_boxes`]), and only then announced.

use std::collections::HashMap;

use super::dispatcher::Dispatcher;
use crate::error::{ErrorKind, RunError, StoreError};
use crate::events::{Outcome, RunEvent};
use crate::plan::NodeIdx;
use crate::store::journal::{AttemptOutcome, JournalRecord};
use crate::store::taskfile;

impl Dispatcher {
    /// Checks the boxes of the tasks that succeeded since the last call, in
    /// one write off the runtime's workers, then announces them.
    pub(super) async fn flush_writes(&mut self) {
        if self.pending_writes.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending_writes);
        let ids: Vec<String> = batch
            .iter()
            .map(|&i| self.nodes[i].spec.id.clone())
            .collect();
        let mut parents_of: HashMap<NodeIdx, Vec<String>> = HashMap::new();
        // Tasks whose box could not be checked, with why.
        let mut unchecked: HashMap<String, String> = HashMap::new();
        if !self.write_back {
            // The host keeps its own record: nothing to write.
            for i in batch {
                self.announce_success(i, Vec::new());
            }
            return;
        }
        let (path, options, asked) = (
            self.task_file.clone(),
            self.parse_options.clone(),
            ids.clone(),
        );
        let written =
            tokio::task::spawn_blocking(move || taskfile::check_boxes(&path, &options, &asked))
                .await
                .unwrap_or_else(|e| {
                    Err(StoreError::io(
                        &self.task_file,
                        "the write-back did not finish",
                        std::io::Error::other(e.to_string()),
                    ))
                });
        match written {
            Ok(out) => {
                for p in &out.problems {
                    if let StoreError::TaskGone { id, .. } | StoreError::MarkerMismatch { id, .. } =
                        p
                    {
                        unchecked.insert(id.clone(), p.to_string());
                    }
                    self.emit(RunEvent::Warning {
                        message: p.to_string(),
                    });
                }
                for parent in out.parents {
                    // Credit the parent to the task of this batch below it.
                    let owner = batch
                        .iter()
                        .copied()
                        .find(|&i| self.is_ancestor(&parent, i));
                    if let Some(o) = owner {
                        parents_of.entry(o).or_default().push(parent);
                    }
                }
            }
            Err(e) => {
                for id in &ids {
                    unchecked.insert(id.clone(), e.to_string());
                }
                self.emit(RunEvent::Warning {
                    message: format!("{e}; the boxes of {} were not checked", ids.join(", ")),
                })
            }
        }
        for i in batch {
            if let Some(why) = unchecked.remove(&self.nodes[i].spec.id) {
                self.succeeded_unchecked(i, why);
                continue;
            }
            self.announce_success(i, parents_of.remove(&i).unwrap_or_default());
        }
    }

    /// Ends a task as succeeded and lets its dependants go.
    fn announce_success(&mut self, i: NodeIdx, parents_checked: Vec<String>) {
        self.end_task(i, Outcome::Succeeded, None, String::new());
        self.runs[i].message = None;
        let r = &self.runs[i];
        let event = RunEvent::TaskSucceeded {
            id: self.nodes[i].spec.id.clone(),
            attempt: r.attempt,
            duration_ms: self.task_ms(i),
            flaky: r.had_failure,
            usage: r.usage,
            parents_checked,
        };
        self.emit(event);
        self.sched.succeed(i);
    }

    /// The task's work succeeded but its box is not checked, so the file does
    /// not show it done: it ends as failed (the next run runs it again), and
    /// the tasks waiting for it go on, its work being done.
    pub(super) fn succeeded_unchecked(&mut self, i: NodeIdx, why: String) {
        let id = self.nodes[i].spec.id.clone();
        let e = RunError::new(
            ErrorKind::Failed,
            format!("succeeded, but its box could not be checked: {why}"),
        );
        self.end_task(i, Outcome::Failed, Some(e.kind), e.message.clone());
        let r = &self.runs[i];
        self.journal(JournalRecord::AttemptEnd {
            id: id.clone(),
            attempt: r.attempt,
            outcome: AttemptOutcome::Failed,
            kind: Some(e.kind),
            message: Some(e.message.clone()),
            duration_ms: 0,
            pid: None,
            session_id: None,
            usage: None,
            text_hash: self.nodes[i].hash.clone(),
        });
        self.emit(RunEvent::TaskFailed {
            id,
            attempt: self.runs[i].attempt,
            kind: e.kind,
            message: e.message.clone(),
            duration_ms: self.task_ms(i),
        });
        self.runs[i].last_error = Some(e);
        self.sched.succeed(i);
    }

    pub(super) fn is_ancestor(&self, parent_id: &str, node: NodeIdx) -> bool {
        let mut cur = self
            .doc
            .tasks
            .get(self.plan.nodes[node].task)
            .and_then(|t| t.parent);
        while let Some(p) = cur {
            if self.doc.tasks[p].id == parent_id {
                return true;
            }
            cur = self.doc.tasks[p].parent;
        }
        false
    }
}
