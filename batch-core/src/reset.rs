//! Resetting a task file: unchecking its boxes and forgetting the journal's
//! history of tasks, so they run again (`mdbatch reset`).
//!
//! [`ResetPlan::new`] says what a reset would touch, without changing
//! anything (a front end shows it and asks); [`ResetPlan::apply`] does it
//! under the run lock: one atomic write of the task file, then a
//! `task_reset` journal record per forgotten task.

use std::path::Path;

use crate::doc::{Document, ParseOptions};
use crate::error::{RunSetupError, StoreError};
use crate::store::journal::{AttemptOutcome, Journal, JournalRecord, JournalSummary};
use crate::store::{self, lock::RunLock, taskfile};

/// Which tasks a reset touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetScope {
    /// Uncheck every checked box and forget every task's history.
    All,
    /// Forget the history of open tasks whose last attempt failed, was
    /// interrupted or skipped, or never finished; uncheck nothing.
    Failed,
}

/// What a reset will do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ResetPlan {
    /// Checked boxes to uncheck (task ids).
    pub uncheck: Vec<String>,
    /// Tasks whose journal history to forget (task ids).
    pub forget: Vec<String>,
    /// Kept worktrees and branches to remove: those of the forgotten tasks
    /// (all of mdbatch's with [`ResetScope::All`]).
    pub worktrees: Vec<crate::status::KeptWorktree>,
}

/// What a reset did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ResetOutcome {
    /// Boxes unchecked, parents included.
    pub unchecked: usize,
    /// Tasks whose history was forgotten.
    pub forgotten: usize,
    /// Boxes that could not be unchecked (the task is gone, or its marker
    /// changed), each with why; the others were.
    pub problems: Vec<StoreError>,
    /// Kept worktrees removed.
    pub worktrees_removed: usize,
    /// Their branches removed.
    pub branches_removed: usize,
    /// Bytes freed by removing them.
    pub bytes_freed: u64,
}

impl ResetPlan {
    /// What resetting `doc` (parsed from `task_file`) in `scope` would touch,
    /// from its boxes and the journal beside it. Changes nothing.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the journal exists but cannot be read.
    pub fn new(task_file: &Path, doc: &Document, scope: ResetScope) -> Result<Self, StoreError> {
        let journal = JournalSummary::load(&store::state_dir(task_file))?;
        let mut plan = plan(doc, &journal, scope == ResetScope::All);
        plan.worktrees = crate::status::kept_worktrees(task_file, doc)
            .into_iter()
            .filter(|w| {
                scope == ResetScope::All || w.task.as_ref().is_some_and(|t| plan.forget.contains(t))
            })
            .collect();
        Ok(plan)
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.uncheck.is_empty() && self.forget.is_empty() && self.worktrees.is_empty()
    }

    /// Carries the reset out on `task_file`, holding the run lock.
    ///
    /// # Errors
    ///
    /// [`RunSetupError::Locked`] when a run holds the file; an I/O or store
    /// error when the file or the journal cannot be written.
    pub fn apply(
        &self,
        task_file: &Path,
        options: &ParseOptions,
    ) -> Result<ResetOutcome, RunSetupError> {
        let state = store::state_dir(task_file);
        let _lock = RunLock::acquire(&state, task_file)?;
        let mut outcome = ResetOutcome::default();
        if !self.uncheck.is_empty() {
            let written = taskfile::uncheck(task_file, options, &self.uncheck)?;
            outcome.unchecked = written.changed.len() + written.parents.len();
            outcome.problems = written.problems;
        }
        if !self.forget.is_empty() {
            let mut journal = Journal::open(&state, format!("reset-{}", run_id()))?;
            for id in &self.forget {
                journal.append(JournalRecord::TaskReset { id: id.clone() })?;
            }
            journal.sync()?;
            outcome.forgotten = self.forget.len();
        }
        if !self.worktrees.is_empty()
            && let Some(folder) = std::path::absolute(task_file)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
            && let Ok(repo) = crate::land::Repo::open(&folder)
        {
            let leftovers: Vec<crate::land::Leftover> = crate::land::list_leftovers(&repo, None)
                .unwrap_or_default()
                .into_iter()
                .filter(|l| {
                    self.worktrees.iter().any(|w| {
                        w.branch == l.branch
                            && w.path == l.path.as_ref().map(|p| p.display().to_string())
                    })
                })
                .collect();
            if let Ok(report) = crate::land::clean(&repo, &leftovers) {
                outcome.worktrees_removed = report.worktrees.len();
                outcome.branches_removed = report.branches.len();
                outcome.bytes_freed = report.bytes_freed;
            }
        }
        Ok(outcome)
    }
}

/// Which tasks `all` / failed-only touch, from the file and the journal summary.
#[doc(hidden)] // over journal internals; [`ResetPlan::new`] is the API
pub fn plan(doc: &Document, journal: &JournalSummary, all: bool) -> ResetPlan {
    if all {
        return ResetPlan {
            uncheck: doc
                .tasks
                .iter()
                .filter(|t| t.checked)
                .map(|t| t.id.clone())
                .collect(),
            forget: journal.tasks.keys().cloned().collect(),
            worktrees: Vec::new(),
        };
    }
    let forget = journal
        .tasks
        .iter()
        .filter(|(_, h)| {
            h.unfinished
                || matches!(
                    h.last_outcome,
                    Some(AttemptOutcome::Failed | AttemptOutcome::Interrupted)
                )
                || h.skipped.is_some()
        })
        .filter(|(id, _)| !doc.task_by_id(id).is_some_and(|t| t.checked))
        .map(|(id, _)| id.clone())
        .collect();
    ResetPlan {
        uncheck: Vec::new(),
        forget,
        worktrees: Vec::new(),
    }
}

/// A run id for the reset's journal lines: time and pid, unique enough for one machine.
fn run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{now:x}-{:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_all_unchecks_the_boxes_in_place_and_a_locked_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tasks.md");
        std::fs::write(
            &file,
            "- [x] one <!-- id: one -->\n- [ ] two <!-- id: two -->\n",
        )
        .unwrap();
        let options = ParseOptions::with_path(&file);
        let doc = Document::read(&file, &options).unwrap();
        let plan = ResetPlan::new(&file, &doc, ResetScope::All).unwrap();
        assert_eq!(plan.uncheck, ["one"]);
        assert!(plan.forget.is_empty(), "no journal yet");

        let state = store::state_dir(&file);
        let held = RunLock::acquire(&state, &file).unwrap();
        assert!(matches!(
            plan.apply(&file, &options),
            Err(RunSetupError::Locked { .. })
        ));
        drop(held);

        let done = plan.apply(&file, &options).unwrap();
        assert_eq!(done.unchecked, 1);
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "- [ ] one <!-- id: one -->\n- [ ] two <!-- id: two -->\n"
        );
        let doc = Document::read(&file, &options).unwrap();
        assert!(
            ResetPlan::new(&file, &doc, ResetScope::All)
                .unwrap()
                .is_empty()
        );
    }
}
