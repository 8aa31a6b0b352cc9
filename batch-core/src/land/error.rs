//! The error type of the landing layer.

use std::io;
use std::path::PathBuf;

use super::git::GitVersion;

/// Everything that can go wrong while driving git.
///
/// Every variant that comes from a git invocation names the command line
/// (without the program name) and carries git's own stderr, trimmed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    /// The `git` program could not be started (not installed, not on `PATH`).
    #[error("cannot run `git {args}`: {source}; is git installed and on PATH?")]
    Spawn {
        /// The arguments git was given.
        args: String,
        /// Why the process could not be started.
        #[source]
        source: io::Error,
    },
    /// git ran and exited unsuccessfully.
    #[error("`git {args}` failed ({status}): {stderr}")]
    Command {
        /// The arguments git was given.
        args: String,
        /// The exit status as text (`exit status: 128`, `signal: 9`).
        status: String,
        /// git's stderr, trimmed.
        stderr: String,
    },
    /// The installed git is older than the landing layer needs.
    #[error(
        "git {found} is too old: worktree isolation needs git {required} or newer \
         (for `git merge-tree --write-tree`); upgrade git or run with `--isolate none`"
    )]
    TooOld {
        /// The version found.
        found: GitVersion,
        /// The minimum version.
        required: GitVersion,
    },
    /// The folder is not inside a git work tree.
    #[error("{}: not inside a git work tree; use `--isolate none` outside git", path.display())]
    NotARepository {
        /// The folder that was asked about.
        path: PathBuf,
    },
    /// git printed something this module cannot understand.
    #[error("unexpected output from `git {args}`: {detail}")]
    Parse {
        /// The arguments git was given.
        args: String,
        /// What was wrong.
        detail: String,
    },
    /// A file-system operation outside git failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Moving this branch would leave a checkout's index and files stale.
    #[error(
        "branch {branch} is checked out in {}; land into a branch that is not checked out \
         and fast-forward the checkout with `fast_forward_checkout`",
        worktree.display()
    )]
    BranchCheckedOut {
        /// The branch (short name).
        branch: String,
        /// The worktree that has it checked out.
        worktree: PathBuf,
    },
    /// The target ref kept moving under the compare-and-swap.
    #[error("{ref_name}: gave up landing after {attempts} attempts, the ref kept moving")]
    Contention {
        /// The ref being landed on.
        ref_name: String,
        /// How many compare-and-swap attempts were made.
        attempts: u32,
    },
    /// A name given by the caller cannot be used in a ref or a path.
    #[error("{name:?} cannot be used as {what}: {why}")]
    InvalidName {
        /// The offending name.
        name: String,
        /// What it was meant to be (`a branch name`, `a repository path`).
        what: &'static str,
        /// Why not.
        why: String,
    },
}

/// Shorthand for results of this module.
pub type Result<T, E = GitError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> GitError {
    let path = path.into();
    move |source| GitError::Io { path, source }
}
