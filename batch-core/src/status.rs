//! The status of a task file: what is done and open per wave and group
//! (from the checkboxes), and what the journal knows: the last run, a run
//! in progress (its pid, its running attempts), failed tasks with their error
//! kind and message, flaky tasks, attempts, durations, tokens and cost.
//!
//! [`Status::read`] reads the state beside a parsed file; under it is a pure
//! function (the file, the journal summary, the lock holder and a liveness
//! check in, the report out) that the tests drive directly. The report serialises to the JSON
//! of `mdbatch status --json` (schema version [`STATUS_VERSION`]); front
//! ends render it as they like.

use std::path::Path;

use serde::Serialize;

use crate::doc::{Document, Task};
use crate::error::{ErrorKind, StoreError};
pub use crate::store::journal::{AttemptOutcome, RunInfo};
use crate::store::journal::{JournalEntry, JournalRecord, JournalSummary, TaskHistory};
use crate::usage::Usage;

/// Version of the `status --json` schema.
pub const STATUS_VERSION: u32 = 1;

/// Done and open tasks of a group.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct GroupStatus {
    /// Group title.
    pub title: String,
    /// Module, when the group has one.
    pub module: Option<String>,
    /// The tasks directly under the wave heading (no group heading).
    pub lead: bool,
    /// Checked leaf tasks.
    pub done: usize,
    /// Unchecked required leaf tasks.
    pub open: usize,
    /// Unchecked optional tasks (not counted in `open`).
    pub optional: usize,
    /// Ids of the open tasks.
    pub open_ids: Vec<String>,
}

/// Done and open tasks of a wave.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct WaveStatus {
    /// 1-based wave number.
    pub number: usize,
    /// Wave title.
    pub title: String,
    /// Checked leaf tasks.
    pub done: usize,
    /// Unchecked required leaf tasks.
    pub open: usize,
    /// Its groups.
    pub groups: Vec<GroupStatus>,
}

/// A run holding the lock now.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct RunningNow {
    /// mdbatch's pid (0 when the lock file did not say).
    pub pid: u32,
    /// Its run id, from the journal.
    pub run_id: Option<String>,
    /// Its attempts in progress.
    pub tasks: Vec<AttemptNow>,
}

/// An attempt started and not ended.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct AttemptNow {
    /// Task id.
    pub id: String,
    /// Attempt number in its run.
    pub attempt: u32,
    /// The subagent's pid, when recorded.
    pub pid: Option<u32>,
    /// Whether that pid is alive now.
    pub alive: bool,
    /// The run it belongs to.
    pub run_id: String,
}

/// A task whose last attempt failed.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct FailedTask {
    /// Task id.
    pub id: String,
    /// Task text.
    pub title: String,
    /// Error kind.
    pub kind: Option<ErrorKind>,
    /// Error message.
    pub message: Option<String>,
    /// Attempts over every run.
    pub attempts: u32,
    /// Summed attempt durations, ms.
    pub duration_ms: u64,
}

/// A task the last run did not run.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct SkippedTask {
    /// Task id.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// A task the last run interrupted (Ctrl-C, a stop) while it ran; still open.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct InterruptedTask {
    /// Task id.
    pub id: String,
    /// Task text.
    pub title: String,
    /// The attempt that was interrupted.
    pub attempt: u32,
}

/// An attempt the journal ended as interrupted: task id and attempt number.
pub type InterruptedAttempt = (String, u32);

/// The attempts the last run in `entries` ended as interrupted, in journal order.
#[doc(hidden)] // over journal internals; [`Status::read`] is the API
pub fn interrupted_in_last_run(entries: &[JournalEntry]) -> Vec<InterruptedAttempt> {
    let Some(last) = entries.iter().rev().find_map(|e| match &e.record {
        JournalRecord::RunStart { .. } => Some(e.run_id.as_str()),
        _ => None,
    }) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|e| e.run_id == last)
        .filter_map(|e| match &e.record {
            JournalRecord::AttemptEnd {
                id,
                attempt,
                outcome: AttemptOutcome::Interrupted,
                ..
            } => Some((id.clone(), *attempt)),
            _ => None,
        })
        .collect()
}

/// One task's journal history, as shown.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct TaskStatus {
    /// Task id.
    pub id: String,
    /// Its box is checked now.
    pub checked: bool,
    /// Attempts over every run.
    pub attempts: u32,
    /// How the last finished attempt ended.
    pub last_outcome: Option<AttemptOutcome>,
    /// Succeeded after a retry.
    pub flaky: bool,
    /// Summed attempt durations, ms.
    pub duration_ms: u64,
    /// Summed usage.
    pub usage: Option<Usage>,
    /// The task's text changed since its last attempt.
    pub text_changed: bool,
}

/// Totals over the journal.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
#[non_exhaustive]
pub struct Totals {
    /// Attempts over every run.
    pub attempts: u32,
    /// Summed attempt durations, ms.
    pub duration_ms: u64,
    /// Summed usage, when any was reported.
    pub usage: Option<Usage>,
}

/// The whole report (`status --json`).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct Status {
    /// [`STATUS_VERSION`].
    pub v: u32,
    /// The task file.
    pub file: String,
    /// The dialect.
    pub dialect: String,
    /// Checked leaf tasks.
    pub done: usize,
    /// Unchecked required leaf tasks.
    pub open: usize,
    /// Unchecked optional tasks.
    pub optional: usize,
    /// Per wave.
    pub waves: Vec<WaveStatus>,
    /// The last run in the journal.
    pub last_run: Option<RunInfo>,
    /// A run in progress.
    pub running: Option<RunningNow>,
    /// Tasks still open whose last attempt failed.
    pub failed: Vec<FailedTask>,
    /// Tasks that succeeded after a retry in their last run.
    pub flaky: Vec<TaskStatus>,
    /// Open tasks whose last record is a skip, with the reason.
    pub skipped: Vec<SkippedTask>,
    /// Attempts a killed run left unfinished (no run in progress).
    pub unfinished: Vec<AttemptNow>,
    /// Open tasks the last run interrupted while they ran.
    pub interrupted: Vec<InterruptedTask>,
    /// Every task the journal knows, in document order.
    pub tasks: Vec<TaskStatus>,
    /// Totals over the journal.
    pub totals: Totals,
    /// Journal lines that could not be read.
    pub journal_skipped_lines: usize,
    /// Git worktrees and branches runs left behind (failed tasks' kept for
    /// inspection, a killed run's): `mdbatch clean` removes them.
    pub kept_worktrees: Vec<KeptWorktree>,
}

/// A worktree or branch of mdbatch's still in the repository.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeptWorktree {
    /// The task it was made for, when its branch names one of the file's tasks.
    pub task: Option<String>,
    /// The worktree's folder (`None`: only the branch is left).
    pub path: Option<String>,
    /// The branch.
    pub branch: Option<String>,
    /// Disk space it takes, in bytes.
    pub bytes: u64,
}

/// mdbatch's worktrees and branches in the repository around `task_file`
/// (none outside git), matched to `doc`'s tasks by their branch names.
pub(crate) fn kept_worktrees(task_file: &Path, doc: &Document) -> Vec<KeptWorktree> {
    let Some(folder) = std::path::absolute(task_file)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    else {
        return Vec::new();
    };
    if !crate::land::is_git_repo(&folder).unwrap_or(false) {
        return Vec::new();
    }
    let Ok(repo) = crate::land::Repo::open(&folder) else {
        return Vec::new();
    };
    let Ok(leftovers) = crate::land::list_leftovers(&repo, None) else {
        return Vec::new();
    };
    let slugs: Vec<(String, &str)> = doc
        .tasks
        .iter()
        .map(|t| (crate::land::slug(&t.id), t.id.as_str()))
        .collect();
    leftovers
        .into_iter()
        .map(|l| {
            let task = l.branch.as_deref().and_then(|b| {
                let last = b.rsplit('/').next()?;
                let stem = last.rsplit_once("-a").map_or(last, |(s, _)| s);
                slugs
                    .iter()
                    .find(|(slug, _)| slug == stem)
                    .map(|(_, id)| (*id).to_string())
            });
            KeptWorktree {
                task,
                path: l.path.map(|p| p.display().to_string()),
                branch: l.branch,
                bytes: l.bytes,
            }
        })
        .collect()
}

/// Builds the report. `interrupted` are the attempts the last run
/// interrupted ([`interrupted_in_last_run`]); `holder` is the pid holding the
/// run lock (if any); `alive` says whether a pid is alive.
#[doc(hidden)] // over journal internals; [`Status::read`] is the API
pub fn build(
    doc: &Document,
    journal: &JournalSummary,
    interrupted: &[InterruptedAttempt],
    skipped_lines: usize,
    holder: Option<u32>,
    alive: &dyn Fn(u32) -> bool,
) -> Status {
    let mut waves: Vec<WaveStatus> = doc
        .waves
        .iter()
        .map(|w| WaveStatus {
            number: w.index + 1,
            title: w.title.clone(),
            done: 0,
            open: 0,
            groups: w
                .groups
                .iter()
                .filter_map(|&g| doc.groups.get(g))
                .map(|g| GroupStatus {
                    title: g.title.clone(),
                    module: g.module.clone(),
                    lead: g.section.is_none(),
                    done: 0,
                    open: 0,
                    optional: 0,
                    open_ids: Vec::new(),
                })
                .collect(),
        })
        .collect();
    // Each group's place in its wave, found once (a wave of 100,000
    // one-task groups made a search per task quadratic).
    let mut place_in_wave: Vec<Option<usize>> = vec![None; doc.groups.len()];
    for wave in &doc.waves {
        for (p, &g) in wave.groups.iter().enumerate() {
            if let Some(slot) = place_in_wave.get_mut(g) {
                slot.get_or_insert(p);
            }
        }
    }
    let (mut done, mut open, mut optional) = (0, 0, 0);
    for t in doc.leaves().filter(|t| !t.skip) {
        let (d, o, opt) = match (t.checked, t.optional) {
            (true, _) => (1, 0, 0),
            (false, false) => (0, 1, 0),
            (false, true) => (0, 0, 1),
        };
        done += d;
        open += o;
        optional += opt;
        let Some(w) = t.wave.and_then(|w| waves.get_mut(w)) else {
            continue;
        };
        w.done += d;
        w.open += o;
        let pos = t
            .group
            .and_then(|g| place_in_wave.get(g).copied().flatten());
        if let Some(g) = pos.and_then(|p| w.groups.get_mut(p)) {
            g.done += d;
            g.open += o;
            g.optional += opt;
            if o == 1 {
                g.open_ids.push(t.id.clone());
            }
        }
    }

    let attempt_now = |u: &crate::store::journal::UnfinishedAttempt| AttemptNow {
        id: u.id.clone(),
        attempt: u.attempt,
        pid: u.pid,
        alive: u.pid.is_some_and(alive),
        run_id: u.run_id.clone(),
    };

    let last_run = journal.last_run().cloned();
    let running = holder.map(|pid| {
        // The run holding the lock is the latest run that has not ended.
        let run_id = journal
            .runs
            .iter()
            .rev()
            .find(|r| r.ended.is_none())
            .map(|r| r.run_id.clone());
        let tasks = journal
            .unfinished
            .iter()
            .filter(|u| Some(&u.run_id) == run_id.as_ref())
            .map(attempt_now)
            .collect();
        RunningNow { pid, run_id, tasks }
    });
    let unfinished = if running.is_some() {
        Vec::new()
    } else {
        journal.unfinished.iter().map(attempt_now).collect()
    };

    // Tasks the journal knows, in document order, then any the file no
    // longer has; each looked up once (in the journal and by id in the file).
    struct Known<'a> {
        id: &'a str,
        /// The file's task of this id (the first, if several share it).
        task: Option<&'a Task>,
        history: &'a TaskHistory,
    }
    // Ids of the journal found in the file (a task counted at its first
    // occurrence): when that is all of them, none is left to look for.
    let mut found = 0;
    let mut known: Vec<Known<'_>> = doc
        .tasks
        .iter()
        .filter_map(|t| {
            let history = journal.tasks.get(&t.id)?;
            let task = doc.task_by_id(&t.id);
            if task.is_some_and(|first| std::ptr::eq(first, t)) {
                found += 1;
            }
            Some(Known {
                id: &t.id,
                task,
                history,
            })
        })
        .collect();
    if found < journal.tasks.len() {
        for (id, history) in &journal.tasks {
            if doc.task_by_id(id).is_none() {
                known.push(Known {
                    id,
                    task: None,
                    history,
                });
            }
        }
    }
    let checked = |k: &Known<'_>| k.task.is_some_and(|t| t.checked);
    let title = |k: &Known<'_>| k.task.map(|t| first_line(&t.text)).unwrap_or_default();
    let tasks: Vec<TaskStatus> = known
        .iter()
        .map(|k| {
            let h = k.history;
            TaskStatus {
                id: k.id.to_string(),
                checked: checked(k),
                attempts: h.attempts,
                last_outcome: h.last_outcome,
                flaky: h.flaky,
                duration_ms: h.duration_ms,
                usage: h.usage,
                text_changed: match (k.task, &h.text_hash) {
                    (Some(t), Some(hash)) => crate::store::journal::text_hash(&t.text) != *hash,
                    _ => false,
                },
            }
        })
        .collect();
    let failed = known
        .iter()
        .filter(|k| {
            k.history.last_outcome == Some(AttemptOutcome::Failed)
                && !k.history.unfinished
                && !checked(k)
        })
        .map(|k| FailedTask {
            id: k.id.to_string(),
            title: title(k),
            kind: k.history.last_kind,
            message: k.history.last_message.clone(),
            attempts: k.history.attempts,
            duration_ms: k.history.duration_ms,
        })
        .collect();
    let flaky = tasks.iter().filter(|t| t.flaky).cloned().collect();
    let interrupted = interrupted
        .iter()
        .filter_map(|(id, attempt)| {
            let task = doc.task_by_id(id).filter(|t| !t.checked)?;
            let h = journal.tasks.get(id)?;
            (h.last_outcome == Some(AttemptOutcome::Interrupted) && !h.unfinished).then(|| {
                InterruptedTask {
                    id: id.clone(),
                    title: first_line(&task.text),
                    attempt: *attempt,
                }
            })
        })
        .collect();
    let skipped = known
        .iter()
        .filter(|k| !checked(k))
        .filter_map(|k| {
            Some(SkippedTask {
                id: k.id.to_string(),
                reason: k.history.skipped.clone()?,
            })
        })
        .collect();
    let mut totals = Totals::default();
    for h in journal.tasks.values() {
        totals.attempts += h.attempts;
        totals.duration_ms += h.duration_ms;
        if let Some(u) = &h.usage {
            totals.usage.get_or_insert_with(Usage::default).add(u);
        }
    }
    Status {
        v: STATUS_VERSION,
        file: doc
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        dialect: doc.dialect.to_string(),
        done,
        open,
        optional,
        waves,
        last_run,
        running,
        failed,
        flaky,
        skipped,
        unfinished,
        interrupted,
        tasks,
        totals,
        journal_skipped_lines: skipped_lines,
        kept_worktrees: Vec::new(),
    }
}

/// The first line of a task text, control characters made spaces.
fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// What the state folder beside a task file says for its status: the
/// journal's summary and the run lock's holder. Read it on another thread
/// while the task file parses ([`Status::with_journal`]); on a large journal
/// the two take about as long.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StatusJournal {
    summary: JournalSummary,
    interrupted: Vec<InterruptedAttempt>,
    skipped_lines: usize,
    holder: Option<u32>,
}

impl StatusJournal {
    /// Reads the journal and the lock in the state folder beside `task_file`.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the journal or the lock exists but cannot be read.
    pub fn read(task_file: &Path) -> Result<StatusJournal, StoreError> {
        let state = crate::store::state_dir(task_file);
        let read = crate::store::journal::summarize(&state)?;
        let holder = crate::store::lock::holder(&state)?;
        Ok(StatusJournal {
            summary: read.summary,
            interrupted: read.interrupted,
            skipped_lines: read.skipped_lines,
            holder,
        })
    }
}

impl Status {
    /// The status of `doc` (parsed from `task_file`) with the journal and
    /// lock in the state folder beside it.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the journal or the lock exists but cannot be read.
    pub fn read(task_file: &Path, doc: &Document) -> Result<Status, StoreError> {
        Ok(Self::with_journal(
            task_file,
            doc,
            StatusJournal::read(task_file)?,
        ))
    }

    /// The status of `doc` (parsed from `task_file`) with its state folder's
    /// journal and lock, read already.
    pub fn with_journal(task_file: &Path, doc: &Document, journal: StatusJournal) -> Status {
        let mut status = build(
            doc,
            &journal.summary,
            &journal.interrupted,
            journal.skipped_lines,
            journal.holder,
            &crate::util::pid_alive,
        );
        status.kept_worktrees = kept_worktrees(task_file, doc);
        status
    }
}
