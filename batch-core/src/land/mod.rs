//! Git isolation and landing: one worktree per task, one commit per task,
//! a merge queue that lands commits on a branch without a checkout.
//!
//! Blocking `std::process::Command` calls throughout (call them from
//! `spawn_blocking`). No type of the rest of mdbatch is used.
//!
//! - [`repo`]: [`Repo::open`], [`is_git_repo`], the user's uncommitted work,
//!   the commit identity, worktree listing.
//! - [`worktree`]: task worktrees and their branches, `.worktreeinclude`,
//!   [`ScratchWorktree`] for verify-on-merge, clean-up with disk usage.
//! - [`commit`]: the task message, [`squash`], finding commits by their
//!   `Mdbatch-Task:` trailer (resume).
//! - [`queue`]: [`land`] / [`land_verified`]: `merge-tree`, `commit-tree`,
//!   compare-and-swap `update-ref`.
//! - [`checkout`]: [`fast_forward_checkout`] of the user's checkout.

pub mod checkout;
pub mod commit;
pub mod error;
pub mod git;
pub mod queue;
pub mod repo;
pub mod worktree;

#[cfg(test)]
mod tests;

pub use checkout::{CheckoutUpdate, bring_in_command, fast_forward_checkout};
pub use commit::{
    SquashSpec, TASK_TRAILER, TaskCommit, TaskLandState, TaskMessage, commit_diff,
    find_task_commit, run_task_commits, squash, task_commits, task_land_state,
};
pub use error::{GitError, Result};
pub use git::{GitVersion, check_git_version};
pub use queue::{
    Candidate, Conflict, LandOptions, LandOutcome, Prepared, added_conflict_markers, create_branch,
    land, land_verified, prepare, publish,
};
pub use repo::{Head, Identity, IdentitySource, Repo, StatusEntry, WorktreeInfo, is_git_repo};
pub use worktree::{
    BRANCH_PREFIX, CleanReport, IncludeMode, Leftover, ScratchWorktree, TaskWorktree,
    TaskWorktreeSpec, WORKTREE_INCLUDE_FILE, bring_in_includes, clean, create_task_worktree,
    default_worktree_dir, delete_branch, disk_usage, list_leftovers, remove_worktree, slug,
    task_branch_name, worktree_include_entries,
};
