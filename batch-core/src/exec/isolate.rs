//! Worktree isolation and the merge queue: each attempt in a git worktree of
//! its own, each finished task landed as one commit.
//!
//! Lifecycle of a run with isolation on ([`Isolation::setup`]):
//! 1. The run lands on an integration branch `mdbatch/<run>/integration`,
//!    created at the tip of the target (the user's branch, or `--into`). It
//!    is never checked out, so the compare-and-swap that moves it can never
//!    leave a checkout's index stale.
//! 2. Each attempt gets a fresh worktree from the integration tip
//!    ([`Isolation::open_worktree`]): it sees everything landed so far.
//! 3. When the runner succeeds, the worktree's change becomes one commit
//!    ([`Isolation::land`]): squashed over the attempt's base, the task file
//!    and `.mdbatch/` left out, then landed through the queue (one landing at
//!    a time, in the order tasks finish) with `git merge-tree`, `commit-tree`
//!    and a compare-and-swap `update-ref`. The verify command runs on the
//!    merged result in a throwaway worktree before the ref moves.
//! 4. A change that no longer applies, or that fails verify only once
//!    merged, is an error of kind [`ErrorKind::Conflict`]: the next attempt
//!    starts from the new tip with the collision in its prompt.
//! 5. After each landing the user's checkout is fast-forwarded when that
//!    cannot touch a local change ([`Isolation::finish`] does it a last time
//!    and deletes the integration branch, or keeps it and names the command
//!    that brings it in).
//!
//! Every git call blocks: the executor calls these from `spawn_blocking`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, RunError};
use crate::land::{
    self, CheckoutUpdate, GitError, Identity, IncludeMode, LandOptions, LandOutcome, Repo,
    ScratchWorktree, SquashSpec, TaskMessage, TaskWorktree, TaskWorktreeSpec,
};

/// How subagents are isolated from each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Isolate {
    /// A worktree per attempt inside a git repository, none outside one.
    #[default]
    Auto,
    /// A git worktree per attempt, each task landed as one commit through a
    /// merge queue; an error outside a git repository.
    Worktree,
    /// Every subagent works in the same folder.
    None,
}

impl std::str::FromStr for Isolate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Isolate::Auto),
            "worktree" => Ok(Isolate::Worktree),
            "none" => Ok(Isolate::None),
            other => Err(format!(
                "unknown isolation `{other}`: use worktree, none or auto"
            )),
        }
    }
}

/// Why worktree isolation cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IsolateError {
    /// `worktree` was asked for outside a git repository.
    #[error(
        "{}: not inside a git repository (or ignored by git), so tasks cannot run in worktrees; run `git init` and commit, or run without isolation (--isolate none)",
        .folder.display()
    )]
    NotARepository {
        /// The folder the subagents would run in.
        folder: PathBuf,
    },
    /// HEAD is detached and no branch to land on was given.
    #[error(
        "{}: HEAD is detached, so there is no branch to land the tasks' commits on; check out a branch or pass --into BRANCH",
        .root.display()
    )]
    DetachedHead {
        /// The repository.
        root: PathBuf,
    },
    /// The branch to land on does not exist.
    #[error("branch `{branch}` does not exist; create it first (git branch {branch})")]
    NoSuchBranch {
        /// The branch.
        branch: String,
    },
    /// `--commit` with several tasks at once.
    #[error(
        "--commit commits in the shared folder, one task at a time, but {jobs} may run at once; add -j 1, or let each task run in its own worktree (--isolate worktree)"
    )]
    CommitNeedsOneJob {
        /// The concurrency asked for.
        jobs: u32,
    },
    /// `--commit` in a checkout with the user's uncommitted work.
    #[error(
        "--commit would sweep your uncommitted changes ({}) into a task's commit; commit or stash them first (git stash -u)",
        .files.join(", ")
    )]
    DirtyForCommit {
        /// The changed files.
        files: Vec<String>,
    },
    /// A git command failed.
    #[error(transparent)]
    Git(#[from] GitError),
}

/// What a landed task left behind, for events and the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Landing {
    /// The commit now on the integration branch (`None`: the task changed nothing).
    pub(crate) commit: Option<String>,
    /// Whether the user's checkout shows it.
    pub(crate) checkout_updated: bool,
}

/// A run's isolation: the repository, the integration branch, the queue.
#[derive(Debug)]
pub(crate) struct Isolation {
    repo: Repo,
    run: String,
    pub(crate) integration: String,
    /// The branch the run lands on at the end.
    pub(crate) target: String,
    /// The user's checkout to keep up to date, when it has `target` checked out.
    checkout: Option<PathBuf>,
    worktree_dir: PathBuf,
    /// The subagents' folder relative to the repository root.
    rel_workdir: PathBuf,
    exclude: Vec<String>,
    identity: Identity,
    task_file_rel: String,
    /// One landing at a time, in the order tasks finish (tokio's mutex is fair).
    queue: tokio::sync::Mutex<()>,
    /// One `git worktree add` or `remove` at a time: git reads every other
    /// worktree's metadata while it adds one, and fails on one being made
    /// beside it ("failed to read .git/worktrees/…/commondir").
    worktrees: std::sync::Mutex<()>,
    /// Each task's latest worktree: removed when the task lands or its next
    /// attempt starts; a failed task's last one is kept for inspection.
    latest: std::sync::Mutex<std::collections::HashMap<String, TaskWorktree>>,
    /// What killed runs left, by task id ([`Isolation::recover`]).
    recovered: std::sync::Mutex<std::collections::HashMap<String, Recovery>>,
}

/// What a killed run left of a task's change, found when the next run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// Its commit had landed: check its box without running it again.
    Landed(String),
    /// Its commit was made but had not landed: land it without running the
    /// agent again (on a conflict, the task runs again from the new head).
    Committed {
        /// The task commit.
        commit: String,
        /// The attempt's branch (removed once landed).
        branch: String,
    },
}

/// A task a killed run may have left half-landed.
#[derive(Debug, Clone)]
pub(crate) struct RecoverCandidate {
    /// Task id.
    pub(crate) id: String,
    /// The killed run.
    pub(crate) run_id: String,
    /// Its last attempt in that run, when it never ended.
    pub(crate) attempt: Option<u32>,
}

/// What [`Isolation::setup`] found that the user should hear before the run.
#[derive(Debug, Default)]
pub(crate) struct SetupNotes {
    /// Uncommitted changes of the user's, which the tasks do not see.
    pub(crate) dirty: Vec<String>,
}

impl Isolation {
    /// Sets isolation up for a run, or returns `None` when it is off.
    pub(crate) fn setup(
        mode: Isolate,
        workdir: &Path,
        task_file: &Path,
        state_dir: &Path,
        run_id: &str,
        worktree_dir: Option<&Path>,
        into: Option<&str>,
    ) -> Result<Option<(Isolation, SetupNotes)>, IsolateError> {
        // Git is asked only where it could answer yes: a run outside any
        // repository (the common `--isolate auto` case) starts no process.
        let in_repo = (mode != Isolate::None && could_be_in_git(workdir))
            && land::is_git_repo(workdir).unwrap_or(false);
        match (mode, in_repo) {
            (Isolate::None, _) | (Isolate::Auto, false) => return Ok(None),
            (Isolate::Worktree, false) => {
                return Err(IsolateError::NotARepository {
                    folder: workdir.to_path_buf(),
                });
            }
            _ => {}
        }
        land::check_git_version()?;
        let repo = Repo::open(workdir)?;
        if repo.is_ignored(workdir)? {
            // A folder git ignores is as good as outside git.
            if mode == Isolate::Auto {
                return Ok(None);
            }
            return Err(IsolateError::NotARepository {
                folder: workdir.to_path_buf(),
            });
        }
        let user_branch = repo.head().branch().map(str::to_string);
        let target = match (into, &user_branch) {
            (Some(b), _) => b.to_string(),
            (None, Some(b)) => b.clone(),
            (None, None) => {
                return Err(IsolateError::DetachedHead {
                    root: repo.root().to_path_buf(),
                });
            }
        };
        let Some(tip) = repo.resolve_commit(&format!("refs/heads/{target}"))? else {
            return Err(IsolateError::NoSuchBranch { branch: target });
        };
        let checkout = repo.checked_out_in(&format!("refs/heads/{target}"))?;
        let run = short_run_id(run_id);
        let integration = format!("mdbatch/{run}/integration");
        // A killed run's integration branch that is ahead of the target holds
        // landed work not yet brought in: this run continues from it.
        let base = adoptable_integration(&repo, &tip)?.unwrap_or(tip);
        land::create_branch(&repo, &integration, &base)?;

        let task_file_rel = repo.relative_path(task_file)?;
        let state_rel = repo.relative_path(state_dir)?;
        let exclude = vec![task_file_rel.clone(), state_rel];
        hide_from_git(state_dir);
        let excluded: Vec<&str> = exclude.iter().map(String::as_str).collect();
        let dirty = repo
            .uncommitted_changes(&excluded)?
            .into_iter()
            .map(|e| e.path)
            .collect();
        let rel_workdir = PathBuf::from(repo.relative_path(workdir)?);
        let identity = repo.identity()?;
        let worktree_dir = worktree_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| land::default_worktree_dir(&repo));
        Ok(Some((
            Isolation {
                repo,
                run,
                integration,
                target,
                checkout,
                worktree_dir,
                rel_workdir,
                exclude,
                identity,
                task_file_rel,
                queue: tokio::sync::Mutex::new(()),
                worktrees: std::sync::Mutex::new(()),
                latest: Default::default(),
                recovered: Default::default(),
            },
            SetupNotes { dirty },
        )))
    }

    /// Finds what killed runs left of `candidates`' changes, removes their
    /// stale worktrees, and keeps the result for [`Isolation::take_recovery`].
    pub(crate) fn recover(&self, candidates: &[RecoverCandidate]) {
        let mut by_run: std::collections::BTreeMap<&str, Vec<&RecoverCandidate>> =
            Default::default();
        for c in candidates {
            by_run.entry(c.run_id.as_str()).or_default().push(c);
        }
        let mut found = std::collections::HashMap::new();
        for (run_id, cands) in by_run {
            let run8 = short_run_id(run_id);
            let refs = vec![
                format!("refs/heads/{}", self.integration),
                format!("refs/heads/mdbatch/{run8}/integration"),
                format!("refs/heads/{}", self.target),
            ];
            let landed = land::run_task_commits(&self.repo, &refs, run_id).unwrap_or_default();
            for c in cands {
                if let Some((commit, _)) = landed.iter().find(|(_, id)| id == &c.id) {
                    found.insert(c.id.clone(), Recovery::Landed(commit.clone()));
                } else if let Some(attempt) = c.attempt
                    && let Ok(branch) = land::task_branch_name(&run8, &c.id, attempt)
                {
                    let committed = land::run_task_commits(
                        &self.repo,
                        &[format!("refs/heads/{branch}")],
                        run_id,
                    )
                    .unwrap_or_default();
                    if let Some((commit, _)) = committed.into_iter().find(|(_, id)| id == &c.id) {
                        found.insert(c.id.clone(), Recovery::Committed { commit, branch });
                        continue;
                    }
                    // Nothing worth keeping: the killed attempt's worktree goes.
                    self.remove_branch_worktree(&branch);
                }
            }
            if let Ok(rd) = std::fs::read_dir(self.worktree_dir.join(&run8)) {
                // The killed run's verify worktrees are never worth keeping.
                for e in rd.flatten() {
                    if e.file_name().to_string_lossy().starts_with("verify-") {
                        let _ = land::remove_worktree(&self.repo, &e.path());
                    }
                }
            }
            let old = format!("mdbatch/{run8}/integration");
            if old != self.integration {
                let _ = land::delete_branch(&self.repo, &old);
            }
            let _ = std::fs::remove_dir(self.worktree_dir.join(&run8));
        }
        if let Ok(mut r) = self.recovered.lock() {
            r.extend(found);
        }
    }

    /// What a killed run left of task `id`'s change (taken once).
    pub(crate) fn take_recovery(&self, id: &str) -> Option<Recovery> {
        self.recovered.lock().ok().and_then(|mut r| r.remove(id))
    }

    fn remove_branch_worktree(&self, branch: &str) {
        let _one = self.worktrees.lock();
        if let Ok(wts) = self.repo.worktrees() {
            for wt in wts {
                if wt.branch.as_deref() == Some(&format!("refs/heads/{branch}")) {
                    let _ = land::remove_worktree(&self.repo, &wt.path);
                }
            }
        }
        let _ = land::delete_branch(&self.repo, branch);
    }

    /// Lands a commit a killed run made but did not land (the agent does not
    /// run again). Blocking.
    pub(crate) fn land_recovered(
        &self,
        id: &str,
        commit: &str,
        branch: &str,
        verify: &mut dyn FnMut(&Path) -> Result<(), RunError>,
    ) -> Result<Landing, RunError> {
        let r = self.land_commit(id, commit, verify);
        if r.is_ok() {
            self.remove_branch_worktree(branch);
        }
        r
    }

    /// The integration tip.
    fn tip(&self) -> Result<String, GitError> {
        self.repo
            .commit_id(&format!("refs/heads/{}", self.integration))
    }

    /// A fresh worktree for `attempt` of task `id`, from the integration tip.
    /// Returns it and the folder the subagent runs in (the same place inside
    /// the worktree as the workdir inside the checkout).
    pub(crate) fn open_worktree(
        &self,
        id: &str,
        attempt: u32,
    ) -> Result<(TaskWorktree, PathBuf), RunError> {
        let previous = self.latest_of(id);
        if let Some(old) = previous {
            self.discard(&old);
        }
        let tip = self.tip().map_err(git_failed)?;
        let spec = TaskWorktreeSpec {
            worktree_dir: &self.worktree_dir,
            run: &self.run,
            task: id,
            attempt,
            base: &tip,
            include: IncludeMode::Copy,
        };
        let wt = {
            let _one = self.worktrees.lock();
            land::create_task_worktree(&self.repo, &spec).map_err(git_failed)?
        };
        let workdir = self.workdir_in(&wt.path);
        if let Ok(mut latest) = self.latest.lock() {
            latest.insert(id.to_string(), wt.clone());
        }
        Ok((wt, workdir))
    }

    /// The subagents' folder inside a checkout of the repository at `root`
    /// (a worktree): the same place the workdir has in the user's checkout.
    fn workdir_in(&self, root: &Path) -> PathBuf {
        if self.rel_workdir.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(&self.rel_workdir)
        }
    }

    fn latest_of(&self, id: &str) -> Option<TaskWorktree> {
        self.latest.lock().ok().and_then(|mut l| l.remove(id))
    }

    /// Removes task `id`'s worktree and branch once its change has landed.
    pub(crate) fn landed(&self, id: &str) {
        if let Some(wt) = self.latest_of(id) {
            self.discard(&wt);
        }
    }

    /// Removes a worktree and its branch (a landed task, or a retried attempt).
    pub(crate) fn discard(&self, wt: &TaskWorktree) {
        let _one = self.worktrees.lock();
        let _ = land::remove_worktree(&self.repo, &wt.path);
        let _ = land::delete_branch(&self.repo, &wt.branch);
    }

    /// The retry prompt's account of a collision: what landed in the way and
    /// the attempt's own previous diff.
    pub(crate) fn conflict_note(previous: &RunError) -> Option<String> {
        if previous.kind != ErrorKind::Conflict {
            return None;
        }
        let mut note = format!(
            "Your previous attempt at this task finished, but its change could not land: {}.\n\
             Start again from the current state of the repository in this folder (it now \
             includes the other tasks' work) and make the change so that it fits with theirs.",
            previous.message
        );
        if let Some(diff) = &previous.output_tail {
            note.push_str("\n\nYour previous change was:\n\n```diff\n");
            note.push_str(diff);
            note.push_str("\n```");
        }
        Some(note)
    }

    /// Squashes the worktree's change into one commit and lands it through
    /// the queue, verifying the merged result first when `verify` is given.
    /// Blocking; holds the queue for the whole landing.
    pub(crate) fn land_blocking(
        &self,
        wt: &TaskWorktree,
        message: &TaskMessage,
        verify: &mut dyn FnMut(&Path) -> Result<(), RunError>,
    ) -> Result<Landing, RunError> {
        let excluded: Vec<&str> = self.exclude.iter().map(String::as_str).collect();
        let commit = land::squash(&SquashSpec {
            worktree: &wt.path,
            base: &wt.base,
            exclude: &excluded,
            message,
            identity: &self.identity,
        })
        .map_err(git_failed)?;
        let Some(commit) = commit else {
            return Ok(Landing {
                commit: None,
                checkout_updated: false,
            });
        };
        self.land_commit(&message.task_id, &commit, verify)
    }

    /// Lands `commit` (a task commit over its base) through the queue.
    fn land_commit(
        &self,
        id: &str,
        commit: &str,
        verify: &mut dyn FnMut(&Path) -> Result<(), RunError>,
    ) -> Result<Landing, RunError> {
        let commit = commit.to_string();
        let _queue = self.queue.blocking_lock();
        let mut opts = LandOptions::new(self.identity.clone());
        opts.reflog_message = format!("mdbatch: land {id}");
        let outcome = land::land_verified(
            &self.repo,
            &self.integration,
            &commit,
            &opts,
            |candidate| -> Result<(), RunError> {
                let dir = self.worktree_dir.join(&self.run).join(format!(
                    "verify-{}",
                    &candidate.commit[..12.min(candidate.commit.len())]
                ));
                let scratch = {
                    let _one = self.worktrees.lock();
                    ScratchWorktree::create(&self.repo, &candidate.commit, &dir, IncludeMode::Copy)
                        .map_err(git_failed)?
                };
                // Not held while the verify command runs.
                let r = verify(&self.workdir_in(scratch.path()));
                let _one = self.worktrees.lock();
                let _ = scratch.remove();
                r
            },
        )
        .map_err(git_failed)?;
        match outcome {
            LandOutcome::Landed { commit, .. } => {
                let updated = self.update_checkout(&commit);
                Ok(Landing {
                    commit: Some(commit),
                    checkout_updated: updated,
                })
            }
            LandOutcome::NoChange { .. } => Ok(Landing {
                commit: None,
                checkout_updated: false,
            }),
            LandOutcome::Conflict(c) => {
                let with: Vec<String> = c
                    .collided
                    .iter()
                    .map(|t| match &t.task_id {
                        Some(id) => format!("`{id}` ({})", t.subject),
                        None => format!("commit {} ({})", short(&t.commit), t.subject),
                    })
                    .collect();
                let diff = land::commit_diff(&self.repo, &commit).unwrap_or_default();
                let msg = format!(
                    "conflict in {} with {}",
                    c.files.join(", "),
                    if with.is_empty() {
                        "work landed meanwhile".to_string()
                    } else {
                        with.join(", ")
                    }
                );
                // The retry prompt shows the attempt's own previous diff.
                let tail = (!diff.is_empty()).then(|| truncate(&diff, 8000));
                Err(RunError::new(ErrorKind::Conflict, msg).with_output_tail(tail))
            }
            LandOutcome::MarkersInChange { files } => Err(RunError::new(
                ErrorKind::Failed,
                format!(
                    "the change adds conflict markers in {}; they never land",
                    files.join(", ")
                ),
            )),
            LandOutcome::VerifyFailed { failure, .. } => {
                let mut e = RunError::new(
                    ErrorKind::Conflict,
                    format!(
                        "verify failed on the merged result (this task's change on top of the work landed meanwhile): {}",
                        failure.message
                    ),
                );
                e.output_tail = failure.output_tail;
                Err(e)
            }
        }
    }

    /// Fast-forwards the user's checkout to `commit` when that cannot touch a
    /// local change. Returns whether it did.
    fn update_checkout(&self, commit: &str) -> bool {
        let Some(checkout) = &self.checkout else {
            return false;
        };
        matches!(
            land::fast_forward_checkout(checkout, &self.target, commit, &self.integration),
            Ok(CheckoutUpdate::Updated { .. } | CheckoutUpdate::UpToDate)
        )
    }

    /// The end of the run: brings the target and the user's checkout up to
    /// the integration tip. Returns a message for the user when the work was
    /// left on the integration branch, with the command that brings it in.
    pub(crate) fn finish(&self) -> Option<String> {
        let tip = match self.tip() {
            Ok(t) => t,
            Err(e) => return Some(format!("cannot read `{}`: {e}", self.integration)),
        };
        let result = match &self.checkout {
            Some(checkout) => {
                land::fast_forward_checkout(checkout, &self.target, &tip, &self.integration)
                    .map(|u| match u {
                        CheckoutUpdate::Updated { .. } | CheckoutUpdate::UpToDate => None,
                        CheckoutUpdate::Refused { files, command } => Some(format!(
                            "the tasks' commits are on branch `{}`: bringing them into your checkout would overwrite your local changes to {}; when ready: {command}",
                            self.integration,
                            files.join(", ")
                        )),
                        other => Some(format!(
                            "the tasks' commits are on branch `{}` ({other:?}); bring them in with: {}",
                            self.integration,
                            land::bring_in_command(&self.integration, false)
                        )),
                    })
            }
            None => {
                // The target is checked out nowhere: fast-forward it directly
                // (compare-and-swap), unless it moved meanwhile.
                let target_ref = format!("refs/heads/{}", self.target);
                let moved = |reason: String| {
                    Some(format!(
                        "the tasks' commits are on branch `{}` ({reason}); bring them into `{}` with: git checkout {} && {}",
                        self.integration,
                        self.target,
                        self.target,
                        land::bring_in_command(&self.integration, false)
                    ))
                };
                match self.repo.commit_id(&target_ref) {
                    Ok(old) if old == tip => Ok(None),
                    Ok(old) => match self.repo.is_ancestor(&old, &tip) {
                        Ok(true) => {
                            let candidate = land::Candidate {
                                old_tip: old,
                                commit: tip.clone(),
                            };
                            match land::publish(&self.repo, &target_ref, &candidate, "mdbatch: bring in the run") {
                                Ok(true) => Ok(None),
                                Ok(false) => Ok(moved(format!("`{}` moved meanwhile", self.target))),
                                Err(e) => Err(e),
                            }
                        }
                        Ok(false) => Ok(moved(format!("`{}` moved meanwhile", self.target))),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                }
            }
        };
        // The run's folder of worktrees goes when empty (failed tasks' kept
        // worktrees keep it).
        let run_dir = self.worktree_dir.join(&self.run);
        let _ = std::fs::remove_dir(&run_dir);
        let _ = std::fs::remove_dir(&self.worktree_dir);
        match result {
            Ok(None) => {
                let _ = land::delete_branch(&self.repo, &self.integration);
                None
            }
            Ok(Some(msg)) => Some(msg),
            Err(e) => Some(format!(
                "the tasks' commits are on branch `{}` ({e}); bring them in with: {}",
                self.integration,
                land::bring_in_command(&self.integration, false)
            )),
        }
    }

    /// The task file's path in the repository (left out of every commit).
    pub(crate) fn task_file_rel(&self) -> &str {
        &self.task_file_rel
    }
}

/// The newest integration branch of a killed run that is ahead of `tip`
/// (so the run can continue from it), if any.
fn adoptable_integration(repo: &Repo, tip: &str) -> Result<Option<String>, GitError> {
    let mut best: Option<(i64, String)> = None;
    for (name, commit) in repo.branches_matching("refs/heads/mdbatch/*/integration")? {
        let _ = name;
        if commit == tip || !repo.is_ancestor(tip, &commit)? {
            continue;
        }
        let when = repo.commit_time(&commit)?;
        if best.as_ref().is_none_or(|(t, _)| when > *t) {
            best = Some((when, commit));
        }
    }
    Ok(best.map(|(_, c)| c))
}

/// `--commit` without isolation: each finished task becomes one commit in
/// the shared folder, on the branch checked out there. Only for one task at
/// a time (`-j 1`), in a checkout with no uncommitted work of the user's (it
/// would be swept into a task's commit).
#[derive(Debug)]
pub(crate) struct CommitOnly {
    repo: Repo,
    exclude: Vec<String>,
    identity: Identity,
    task_file_rel: String,
    branch: String,
}

impl CommitOnly {
    /// Checks the folder and the checkout.
    pub(crate) fn setup(
        workdir: &Path,
        task_file: &Path,
        state_dir: &Path,
        jobs: u32,
    ) -> Result<CommitOnly, IsolateError> {
        if jobs > 1 {
            return Err(IsolateError::CommitNeedsOneJob { jobs });
        }
        if !land::is_git_repo(workdir).unwrap_or(false) {
            return Err(IsolateError::NotARepository {
                folder: workdir.to_path_buf(),
            });
        }
        land::check_git_version()?;
        let repo = Repo::open(workdir)?;
        let Some(branch) = repo.head().branch().map(str::to_string) else {
            return Err(IsolateError::DetachedHead {
                root: repo.root().to_path_buf(),
            });
        };
        let task_file_rel = repo.relative_path(task_file)?;
        let exclude = vec![task_file_rel.clone(), repo.relative_path(state_dir)?];
        let excluded: Vec<&str> = exclude.iter().map(String::as_str).collect();
        let dirty: Vec<String> = repo
            .uncommitted_changes(&excluded)?
            .into_iter()
            .map(|e| e.path)
            .collect();
        if !dirty.is_empty() {
            return Err(IsolateError::DirtyForCommit { files: dirty });
        }
        hide_from_git(state_dir);
        let identity = repo.identity()?;
        Ok(CommitOnly {
            repo,
            exclude,
            identity,
            task_file_rel,
            branch,
        })
    }

    /// Commits what the task changed in the shared folder. Blocking.
    pub(crate) fn commit(&self, message: &TaskMessage) -> Result<Landing, RunError> {
        let head = self.repo.commit_id("HEAD").map_err(git_failed)?;
        let excluded: Vec<&str> = self.exclude.iter().map(String::as_str).collect();
        let commit = land::squash(&SquashSpec {
            worktree: self.repo.root(),
            base: &head,
            exclude: &excluded,
            message,
            identity: &self.identity,
        })
        .map_err(git_failed)?;
        Ok(Landing {
            commit,
            checkout_updated: true,
        })
    }

    /// The task file's path in the repository.
    pub(crate) fn task_file_rel(&self) -> &str {
        &self.task_file_rel
    }

    /// The branch the commits go on.
    pub(crate) fn branch(&self) -> &str {
        &self.branch
    }
}

/// The short form of a run id that names its branches, worktree folder and
/// cluster jobs: its first 8 hex digits.
pub(crate) fn short_run_id(run_id: &str) -> String {
    run_id.chars().filter(|c| *c != '-').take(8).collect()
}

/// Keeps mdbatch's state folder out of the user's `git status`.
/// Whether `folder` could be inside a git work tree: git's own environment
/// points somewhere, or some folder from it up to the root has a `.git`
/// (folder or file). Without either, git's discovery finds no work tree.
fn could_be_in_git(folder: &Path) -> bool {
    if std::env::var_os("GIT_DIR").is_some() || std::env::var_os("GIT_WORK_TREE").is_some() {
        return true;
    }
    // Git discovers from the real folder (symlinks resolved), as here.
    let Ok(abs) = std::fs::canonicalize(folder) else {
        return true;
    };
    abs.ancestors()
        .any(|d| std::fs::symlink_metadata(d.join(".git")).is_ok())
}

fn hide_from_git(state_dir: &Path) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if crate::store::make_state_dir(state_dir).is_err() {
        return;
    }
    // Made new, never through a symlink planted at its name.
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(state_dir.join(".gitignore"))
    {
        let _ = f.write_all(b"*\n");
    }
}

/// A task's commit message.
pub(crate) fn task_message(
    id: &str,
    text: &str,
    task_file: &str,
    attempt: u32,
    agent: &str,
    run_id: &str,
) -> TaskMessage {
    let subject: String = text.lines().next().unwrap_or(id).chars().take(72).collect();
    TaskMessage {
        subject,
        body: vec![
            format!("Task {id} of {task_file}, attempt {attempt}, by {agent}."),
            format!("Mdbatch-Run: {run_id}"),
        ],
        task_id: id.to_string(),
    }
}

fn git_failed(e: GitError) -> RunError {
    RunError::new(ErrorKind::Fatal, format!("git: {e}"))
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n… ({} more bytes)", &s[..end], s.len() - end)
}
