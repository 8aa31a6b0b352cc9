//! Checking boxes, as a group commit: the successes that arrive while a
//! write is being gathered join it, and those that arrive while it is being
//! written wait for it and go out together in the next one.
//!
//! One write, off the runtime's workers (`spawn_blocking`): first every
//! journal line queued so far is made durable (the journal thread's
//! `fdatasync`), then the boxes are flipped in the task file under one
//! `fdatasync` ([`TaskFile::check`]). So a checked box always has its
//! journal line on disk, and a crash between the two leaves an open box
//! whose task the next run does again. Only after the write are the tasks
//! announced as succeeded and their dependants let go. The dispatcher keeps
//! launching and collecting other attempts while a write is in flight.
//!
//! While other attempts run, a write first gathers for [`GATHER`]: short
//! tasks finish every fraction of a millisecond, and without it each would
//! pay two `fdatasync` calls of its own (a write is usually done before the
//! next task ends). A task joins the batch only before the write takes it,
//! and its journal line was queued before it joined, so the journal sync
//! that follows covers it. With nothing else running the write starts at
//! once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::{JoinError, JoinHandle};

use super::dispatcher::{Dispatcher, Stop};
use crate::doc::ParseOptions;
use crate::error::{ErrorKind, RunError, StoreError};
use crate::events::{Outcome, RunEvent};
use crate::plan::NodeIdx;
use crate::store::journal::{AttemptOutcome, JournalRecord};
use crate::store::taskfile::{TaskFile, Want, WriteOutcome};

/// How long a write gathers successes while other attempts run.
const GATHER: Duration = Duration::from_millis(2);

/// What a finished write hands back to the dispatcher.
pub(super) struct WriteDone {
    /// The writer (`None` when it could not be opened).
    file: Option<TaskFile>,
    result: Result<WriteOutcome, StoreError>,
}

/// The write in flight.
pub(super) struct Writing {
    handle: JoinHandle<Result<WriteDone, JoinError>>,
    /// Its boxes while it still gathers (`None` once the write took them).
    gathering: Arc<Mutex<Option<Vec<Want>>>>,
}

/// Waits for the write in flight (never resolves when there is none).
pub(super) async fn written(w: &mut Option<Writing>) -> Result<WriteDone, JoinError> {
    match w {
        Some(w) => (&mut w.handle).await.and_then(|r| r),
        None => std::future::pending().await,
    }
}

/// Opens the writer if needed, then checks `wants`.
fn write(
    file: Option<TaskFile>,
    path: PathBuf,
    options: ParseOptions,
    wants: Vec<Want>,
) -> WriteDone {
    let mut file = match file {
        Some(f) => f,
        None => match TaskFile::open(&path, &options) {
            Ok(f) => f,
            Err(e) => {
                return WriteDone {
                    file: None,
                    result: Err(e),
                };
            }
        },
    };
    let result = file.check(&wants);
    WriteDone {
        file: Some(file),
        result,
    }
}

impl Dispatcher {
    /// Starts writing the boxes of the tasks that succeeded since the last
    /// write, or adds them to the write that still gathers; while a write
    /// is being written they wait for the next one.
    pub(super) fn flush_writes(&mut self) {
        if self.pending_writes.is_empty() {
            return;
        }
        if let Some(w) = &self.writing {
            let mut gathering = w.gathering.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(wants) = gathering.as_mut() {
                wants.extend(self.pending_writes.iter().map(|&i| self.want(i)));
                self.writing_batch.append(&mut self.pending_writes);
            }
            return;
        }
        let mut batch = std::mem::take(&mut self.pending_writes);
        if !self.write_back {
            // The host keeps its own record: nothing to write.
            for &i in &batch {
                self.announce_success(i, Vec::new());
            }
            // The list keeps its room for the next batch.
            batch.clear();
            if self.pending_writes.is_empty() {
                self.pending_writes = batch;
            }
            return;
        }
        let wants: Vec<Want> = batch.iter().map(|&i| self.want(i)).collect();
        let sync = self.journal.as_ref().and_then(|j| j.syncer());
        let (file, path, options) = (
            self.taskfile.take(),
            self.task_file.clone(),
            self.parse_options.clone(),
        );
        // Others may end meanwhile: gather them into this write.
        let gather = !self.attempts.is_empty() && self.stop.is_none();
        let gathering = Arc::new(Mutex::new(Some(wants)));
        let taken = gathering.clone();
        self.writing_batch = batch;
        let handle = tokio::spawn(async move {
            if gather {
                tokio::time::sleep(GATHER).await;
            }
            tokio::task::spawn_blocking(move || {
                // Nothing joins from here on: the journal sync below covers
                // every line queued before its task joined.
                let wants = taken
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                    .unwrap_or_default();
                // The journal lines first: a checked box always has its line.
                if let Some(s) = sync {
                    s.sync();
                }
                write(file, path, options, wants)
            })
            .await
        });
        self.writing = Some(Writing { handle, gathering });
    }

    /// The box of task `i` to check: found by id, checked only while its
    /// text is the one that ran.
    fn want(&self, i: NodeIdx) -> Want {
        let node = &self.nodes[i];
        Want::with_hash(node.spec.id(), node.hash())
    }

    /// A write finished: announce its tasks (or end them unchecked).
    pub(super) fn on_written(&mut self, done: Result<WriteDone, JoinError>) {
        self.writing = None;
        let batch = std::mem::take(&mut self.writing_batch);
        let written = match done {
            Ok(d) => {
                self.taskfile = d.file;
                d.result
            }
            Err(e) => Err(StoreError::io(
                &self.task_file,
                "the write-back did not finish",
                std::io::Error::other(e.to_string()),
            )),
        };
        if let Some(f) = &self.taskfile {
            // Our own write is not a change by the user.
            self.file_stamp = f.stamp();
        }
        if self.journal.as_ref().is_some_and(|j| j.take_restored()) {
            let state = self.state_dir.clone();
            self.emit(RunEvent::Warning {
                message: format!(
                    "{}: the state folder was deleted during the run; its journal was written \
                     back whole (logs of attempts that had ended are gone)",
                    state.as_deref().unwrap_or(&self.task_file).display()
                ),
            });
        }
        let ids: Vec<String> = batch
            .iter()
            .map(|&i| self.nodes[i].spec.id().to_string())
            .collect();
        let mut parents_of: HashMap<NodeIdx, Vec<String>> = HashMap::new();
        // Tasks whose box could not be checked, with why.
        let mut unchecked: HashMap<String, String> = HashMap::new();
        match written {
            Ok(out) => {
                if out.reparsed
                    && let Some(f) = &self.taskfile
                {
                    // Someone else changed the file: boxes checked by hand,
                    // tasks added, changed or removed.
                    self.checked_in_file = f.checked_ids().into_iter().collect();
                    let doc = f.shared_document();
                    self.replan(&doc);
                }
                for p in &out.problems {
                    if let StoreError::TaskGone { id, .. }
                    | StoreError::MarkerMismatch { id, .. }
                    | StoreError::TextChanged { id, .. }
                    | StoreError::Ambiguous { id, .. } = p
                    {
                        unchecked.insert(id.clone(), p.to_string());
                    }
                    self.emit(RunEvent::Warning {
                        message: p.to_string(),
                    });
                }
                self.warn_rechecked(&out.rechecked);
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
                let why = crate::util::with_causes(&e);
                for id in &ids {
                    unchecked.insert(id.clone(), why.clone());
                }
                self.emit(RunEvent::Warning {
                    message: format!("{why}; the boxes of {} were not checked", ids.join(", ")),
                });
                if !self.task_file.exists() && self.stop.is_none() {
                    self.stop_run(Stop::Fatal(format!(
                        "{} was deleted or moved; no further task starts",
                        self.task_file.display()
                    )));
                }
            }
        }
        for i in batch {
            if let Some(why) = unchecked.remove(self.nodes[i].spec.id()) {
                self.succeeded_unchecked(i, why);
                continue;
            }
            self.announce_success(i, parents_of.remove(&i).unwrap_or_default());
        }
    }

    /// At the end of a run: if someone changed the file since our last
    /// write, parse it once more and check again the boxes of this run that
    /// an editor's save of an older copy opened.
    pub(super) async fn recheck_at_end(&mut self) {
        if !self.write_back || self.taskfile.is_none() {
            return;
        }
        if crate::store::taskfile::Stamp::at(&self.task_file) == self.file_stamp {
            return;
        }
        let sync = self.journal.as_ref().and_then(|j| j.syncer());
        let (file, path, options) = (
            self.taskfile.take(),
            self.task_file.clone(),
            self.parse_options.clone(),
        );
        let done = tokio::task::spawn_blocking(move || {
            if let Some(s) = sync {
                s.sync();
            }
            write(file, path, options, Vec::new())
        })
        .await;
        if let Ok(d) = done {
            self.taskfile = d.file;
            if let Ok(out) = d.result {
                self.warn_rechecked(&out.rechecked);
            }
        }
    }

    /// Says which boxes an editor's save of an older copy had opened again
    /// (and were checked again), if any.
    fn warn_rechecked(&mut self, rechecked: &[String]) {
        if rechecked.is_empty() {
            return;
        }
        self.emit(RunEvent::Warning {
            message: format!(
                "{}: the box{} of {} had been opened again by a save of an older copy of the file; checked again",
                self.task_file.display(),
                if rechecked.len() == 1 { "" } else { "es" },
                rechecked.join(", ")
            ),
        });
    }

    /// Ends a task as succeeded and lets its dependants go.
    fn announce_success(&mut self, i: NodeIdx, parents_checked: Vec<String>) {
        self.end_task(i, Outcome::Succeeded, None, String::new());
        self.runs[i].message = None;
        if self.listened() {
            let r = &self.runs[i];
            let event = RunEvent::TaskSucceeded {
                id: self.nodes[i].spec.id().to_string(),
                attempt: r.attempt,
                duration_ms: self.task_ms(i),
                flaky: r.had_failure,
                usage: r.usage,
                parents_checked,
            };
            self.emit(event);
        }
        self.sched.succeed(i);
    }

    /// The task's work succeeded but its box is not checked, so the file does
    /// not show it done: it ends as failed (the next run runs it again), and
    /// the tasks waiting for it go on, its work being done.
    pub(super) fn succeeded_unchecked(&mut self, i: NodeIdx, why: String) {
        let id = self.nodes[i].spec.id().to_string();
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
            text_hash: self.nodes[i].hash().to_string(),
        });
        self.emit(RunEvent::TaskFailed {
            id,
            attempt: self.runs[i].attempt,
            kind: e.kind,
            message: e.message.clone(),
            duration_ms: self.task_ms(i),
        });
        self.runs[i].last_error = Some(Box::new(e));
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
