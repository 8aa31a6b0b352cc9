//! Bringing a user's checkout up to date with landed work, never losing or
//! overwriting a local change.
//!
//! The branch and its checkout move together through `git merge --ff-only`
//! run in the checkout: git's own two-tree merge (the `read-tree -m -u old
//! new` rules) updates only files that differ between the old and new tip,
//! keeps every local change to other files, and refuses as a whole —
//! moving neither branch, index nor files — when a local change (staged,
//! unstaged, or an untracked file in the way) would be overwritten.

use std::path::Path;

use super::error::Result;
use super::git::Git;
use super::repo::{Head, read_head};

/// The result of [`fast_forward_checkout`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckoutUpdate {
    /// Branch, index and files now at `to`.
    Updated {
        /// The tip before.
        from: String,
        /// The tip now.
        to: String,
    },
    /// Already at that commit.
    UpToDate,
    /// Local changes to these files would be overwritten: nothing moved.
    Refused {
        /// The paths git named.
        files: Vec<String>,
        /// The command that brings the work in once they are dealt with.
        command: String,
    },
    /// The checkout is not on the expected branch (the user switched):
    /// nothing moved.
    NotOnBranch {
        /// What is checked out instead.
        head: Head,
        /// The command that brings the work in.
        command: String,
    },
    /// The branch has commits the work does not have (the user committed
    /// meanwhile): not a fast-forward, nothing moved.
    Diverged {
        /// The command that brings the work in (a merge).
        command: String,
    },
}

/// The one command that brings branch `from_branch` into the current
/// branch: a fast-forward when possible, else a merge.
pub fn bring_in_command(from_branch: &str, fast_forward: bool) -> String {
    if fast_forward {
        format!("git merge --ff-only {from_branch}")
    } else {
        format!("git merge {from_branch}")
    }
}

/// Fast-forwards the checkout at `checkout`, which must have `branch`
/// (short name) checked out, to `to` (a commit that `result_branch` also
/// names, for the command printed when this is not possible).
pub fn fast_forward_checkout(
    checkout: &Path,
    branch: &str,
    to: &str,
    result_branch: &str,
) -> Result<CheckoutUpdate> {
    let head = read_head(checkout)?;
    let current = match &head {
        Head::Branch { name, commit } if name == branch => commit.clone(),
        _ => {
            return Ok(CheckoutUpdate::NotOnBranch {
                head,
                command: bring_in_command(result_branch, false),
            });
        }
    };
    let to = Git::new(checkout)
        .args(["rev-parse", "--verify", "--end-of-options"])
        .arg(format!("{to}^{{commit}}"))
        .line()?;
    let Some(from) = current else {
        return Ok(CheckoutUpdate::Diverged {
            command: bring_in_command(result_branch, false),
        });
    };
    if from == to {
        return Ok(CheckoutUpdate::UpToDate);
    }
    let is_ff = Git::new(checkout)
        .args(["merge-base", "--is-ancestor", &from, &to])
        .succeeds()?;
    if !is_ff {
        return Ok(CheckoutUpdate::Diverged {
            command: bring_in_command(result_branch, false),
        });
    }
    let git = Git::new(checkout).args([
        "-c",
        "core.hooksPath=/dev/null",
        "merge",
        "--ff-only",
        "--quiet",
        "--no-stat",
        &to,
    ]);
    let raw = git.raw()?;
    if raw.code == Some(0) {
        return Ok(CheckoutUpdate::Updated { from, to });
    }
    if raw.stderr.contains("would be overwritten") {
        let files = raw
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix('\t'))
            .map(|l| l.trim().to_string())
            .collect();
        return Ok(CheckoutUpdate::Refused {
            files,
            command: bring_in_command(result_branch, true),
        });
    }
    if raw.stderr.contains("Not possible to fast-forward") {
        return Ok(CheckoutUpdate::Diverged {
            command: bring_in_command(result_branch, false),
        });
    }
    Err(git.fail(&raw))
}
