//! Landing a task commit on a branch: merge without a checkout, verify the
//! merged result, compare-and-swap the ref.
//!
//! One landing is: read the target's tip; merge the task commit onto it
//! with `git merge-tree --write-tree` (the task commit's parent as merge
//! base: a cherry-pick, touching no working tree); on conflict stop and
//! report the files and the tasks that landed there since the task's base;
//! else make the commit with `commit-tree` (one parent, the task's message
//! and author); let the caller verify it; move the ref with
//! `update-ref <ref> <new> <old>`. If the ref moved meanwhile, start over
//! from the new tip. A tree with conflict markers is never committed: a
//! conflicted merge-tree result is dropped, and a task commit that itself
//! adds marker lines is refused before merging.

use std::convert::Infallible;

use super::commit::{TaskCommit, task_commits};
use super::error::{GitError, Result};
use super::git::{Git, GitVersion, split_nul};
use super::repo::{Identity, Repo, full_branch_ref};

/// Options of [`land`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LandOptions {
    /// How many times to recompute when the target moved under us.
    pub max_attempts: u32,
    /// Committer of the landed commit (the author is the task commit's).
    pub committer: Identity,
    /// Reflog message of the ref update.
    pub reflog_message: String,
}

impl LandOptions {
    /// Defaults: 16 attempts, the given committer.
    pub fn new(committer: Identity) -> Self {
        LandOptions {
            max_attempts: 16,
            committer,
            reflog_message: "mdbatch: land task".into(),
        }
    }
}

/// A merged result, committed but not yet on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The target's tip the merge was computed on.
    pub old_tip: String,
    /// The new commit (parent `old_tip`).
    pub commit: String,
}

/// A task change that does not apply on the target's tip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The tip it was merged onto.
    pub tip: String,
    /// Conflicted paths, sorted.
    pub files: Vec<String>,
    /// Commits between the task's base and `tip` that touched those paths,
    /// newest first, with their task ids: what the task collided with.
    pub collided: Vec<TaskCommit>,
}

/// The result of [`land`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LandOutcome<V = Infallible> {
    /// The target now points at `commit`.
    Landed {
        /// The tip before.
        old_tip: String,
        /// The landed commit (the target's new tip).
        commit: String,
    },
    /// The change conflicts with the tip; nothing was moved.
    Conflict(Conflict),
    /// The merge changes nothing (the same change is already there);
    /// nothing was moved.
    NoChange {
        /// The tip.
        tip: String,
    },
    /// The task's own change adds conflict markers (`<<<<<<< `,
    /// `>>>>>>> ` lines, e.g. from a merge the agent ran and left half
    /// done); nothing was moved. Retry it like a conflict.
    MarkersInChange {
        /// The files with added marker lines, sorted.
        files: Vec<String>,
    },
    /// The caller's verification rejected the merged result; nothing was
    /// moved.
    VerifyFailed {
        /// What was verified.
        candidate: Candidate,
        /// The caller's verdict.
        failure: V,
    },
}

/// What merging a task commit onto a tip gives, before anything moves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prepared {
    /// A commit ready to land.
    Ready(Candidate),
    /// A conflict.
    Conflict(Conflict),
    /// Nothing would change.
    NoChange {
        /// The tip.
        tip: String,
    },
    /// The task's change adds conflict markers in these files.
    MarkersInChange {
        /// The files, sorted.
        files: Vec<String>,
    },
}

/// Files in which `commit` adds lines that start like a conflict marker
/// (`<<<<<<< ` or `>>>>>>> `; the `=======` separator alone is also a
/// Markdown heading underline and is not counted).
pub fn added_conflict_markers(repo: &Repo, commit: &str) -> Result<Vec<String>> {
    let out = repo
        .git()
        .args([
            "show",
            "--format=",
            "--patch",
            "-U0",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            "--end-of-options",
            commit,
        ])
        .output()?;
    let text = String::from_utf8_lossy(&out);
    let mut files = Vec::new();
    let mut current: Option<&str> = None;
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("+++ ") {
            current = path.strip_prefix("b/");
        } else if (line.starts_with("+<<<<<<< ") || line.starts_with("+>>>>>>> "))
            && let Some(path) = current
            && files.last().map(String::as_str) != Some(path)
        {
            files.push(path.to_string());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

struct Author {
    name: String,
    email: String,
    date: String,
}

fn commit_parts(repo: &Repo, commit: &str) -> Result<(Author, String)> {
    let git = repo.git().args(["cat-file", "commit", commit]);
    let raw = git.output()?;
    let text = String::from_utf8_lossy(&raw);
    let (headers, message) = text
        .split_once("\n\n")
        .ok_or_else(|| git.parse_error("commit without a message"))?;
    let line = headers
        .lines()
        .find_map(|l| l.strip_prefix("author "))
        .ok_or_else(|| git.parse_error("commit without an author"))?;
    let (ident, date) = line
        .rsplit_once('>')
        .ok_or_else(|| git.parse_error(format!("bad author line {line:?}")))?;
    let (name, email) = ident
        .split_once('<')
        .ok_or_else(|| git.parse_error(format!("bad author line {line:?}")))?;
    Ok((
        Author {
            name: name.trim().to_string(),
            email: email.trim().to_string(),
            date: format!("@{}", date.trim()),
        },
        message.to_string(),
    ))
}

/// Merges `task_commit` (whose first parent is its base) onto the current
/// tip of `target` and commits the result, without moving anything.
pub fn prepare(
    repo: &Repo,
    target: &str,
    task_commit: &str,
    committer: &Identity,
) -> Result<Prepared> {
    let target = full_branch_ref(target);
    let tip = repo.commit_id(&target)?;
    let task = repo.commit_id(task_commit)?;
    let base = repo.commit_id(&format!("{task}^1"))?;
    let markers = added_conflict_markers(repo, &task)?;
    if !markers.is_empty() {
        return Ok(Prepared::MarkersInChange { files: markers });
    }
    if tip == base {
        // Nothing landed since the task's base: the task commit itself is
        // the result (same id as on the task's branch).
        return Ok(Prepared::Ready(Candidate {
            old_tip: tip,
            commit: task,
        }));
    }
    let mut git = repo.git().args([
        "merge-tree",
        "--write-tree",
        "-z",
        "--name-only",
        "--no-messages",
    ]);
    if repo.version() >= GitVersion::MERGE_BASE_OPTION {
        git = git.arg(format!("--merge-base={base}"));
    }
    let git = git.args([&tip, &task]);
    let raw = git.raw()?;
    let mut fields = split_nul(&raw.stdout).into_iter();
    match raw.code {
        Some(0) => {}
        Some(1) => {
            let _tree = fields.next();
            let mut files: Vec<String> = fields.collect();
            files.sort();
            files.dedup();
            let collided = task_commits(repo, &format!("{base}..{tip}"), &files)?;
            return Ok(Prepared::Conflict(Conflict {
                tip,
                files,
                collided,
            }));
        }
        _ => return Err(git.fail(&raw)),
    }
    let tree = fields
        .next()
        .ok_or_else(|| git.parse_error("no tree id in the output"))?;
    let tip_tree = repo
        .git()
        .args(["rev-parse", &format!("{tip}^{{tree}}")])
        .line()?;
    if tree == tip_tree {
        return Ok(Prepared::NoChange { tip });
    }
    let (author, message) = commit_parts(repo, &task)?;
    let commit = repo
        .git()
        .env("GIT_AUTHOR_NAME", &author.name)
        .env("GIT_AUTHOR_EMAIL", &author.email)
        .env("GIT_AUTHOR_DATE", &author.date)
        .env("GIT_COMMITTER_NAME", &committer.name)
        .env("GIT_COMMITTER_EMAIL", &committer.email)
        .args(["commit-tree", &tree, "-p", &tip, "-F", "-"])
        .input(message)
        .line()?;
    Ok(Prepared::Ready(Candidate {
        old_tip: tip,
        commit,
    }))
}

/// Moves `target` from `candidate.old_tip` to `candidate.commit` if it
/// still points at `old_tip`. `Ok(false)` when it moved meanwhile.
pub fn publish(repo: &Repo, target: &str, candidate: &Candidate, reflog: &str) -> Result<bool> {
    let target = full_branch_ref(target);
    let git = repo.git().args([
        "update-ref",
        "-m",
        reflog,
        &target,
        &candidate.commit,
        &candidate.old_tip,
    ]);
    let raw = git.raw()?;
    if raw.code == Some(0) {
        return Ok(true);
    }
    match repo.resolve_commit(&target)? {
        Some(now) if now != candidate.old_tip => Ok(false),
        _ => Err(git.fail(&raw)),
    }
}

/// Lands `task_commit` on branch `target` (see the module docs). Refuses a
/// branch checked out in any worktree ([`GitError::BranchCheckedOut`]):
/// land on an integration branch and bring checkouts along with
/// [`super::checkout::fast_forward_checkout`].
pub fn land(
    repo: &Repo,
    target: &str,
    task_commit: &str,
    opts: &LandOptions,
) -> Result<LandOutcome> {
    land_verified(repo, target, task_commit, opts, |_| Ok(()))
}

/// [`land`] with a verification of each merged result before it moves the
/// ref (run it in a [`super::worktree::ScratchWorktree`] of
/// `candidate.commit`). When the ref moved during the verification, the
/// merge is recomputed and verified again.
pub fn land_verified<V>(
    repo: &Repo,
    target: &str,
    task_commit: &str,
    opts: &LandOptions,
    mut verify: impl FnMut(&Candidate) -> std::result::Result<(), V>,
) -> Result<LandOutcome<V>> {
    let full = full_branch_ref(target);
    if let Some(worktree) = repo.checked_out_in(&full)? {
        return Err(GitError::BranchCheckedOut {
            branch: full
                .strip_prefix("refs/heads/")
                .unwrap_or(&full)
                .to_string(),
            worktree,
        });
    }
    for _ in 0..opts.max_attempts.max(1) {
        let candidate = match prepare(repo, &full, task_commit, &opts.committer)? {
            Prepared::Ready(c) => c,
            Prepared::Conflict(c) => return Ok(LandOutcome::Conflict(c)),
            Prepared::NoChange { tip } => return Ok(LandOutcome::NoChange { tip }),
            Prepared::MarkersInChange { files } => {
                return Ok(LandOutcome::MarkersInChange { files });
            }
        };
        if let Err(failure) = verify(&candidate) {
            // Verified against a stale tip? Then the verdict is stale too.
            if repo.commit_id(&full)? != candidate.old_tip {
                continue;
            }
            return Ok(LandOutcome::VerifyFailed { candidate, failure });
        }
        if publish(repo, &full, &candidate, &opts.reflog_message)? {
            return Ok(LandOutcome::Landed {
                old_tip: candidate.old_tip,
                commit: candidate.commit,
            });
        }
    }
    Err(GitError::Contention {
        ref_name: full,
        attempts: opts.max_attempts.max(1),
    })
}

/// Creates branch `name` at `commit` (the integration branch of a run).
/// Fails when it exists and points elsewhere; succeeds when it already
/// points at `commit` (a resumed run).
pub fn create_branch(repo: &Repo, name: &str, commit: &str) -> Result<()> {
    let full = full_branch_ref(name);
    let commit = repo.commit_id(commit)?;
    if repo.resolve_commit(&full)?.as_deref() == Some(commit.as_str()) {
        return Ok(());
    }
    Git::new(repo.root())
        .args([
            "update-ref",
            "-m",
            "mdbatch: integration branch",
            &full,
            &commit,
            "",
        ])
        .output()?;
    Ok(())
}
