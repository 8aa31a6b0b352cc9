//! Task worktrees: naming, creation, `.worktreeinclude`, throwaway
//! checkouts for verification, clean-up with disk usage.
//!
//! A task worktree is made by
//! `git worktree add -b <branch> <dir>/<run>/<slug>-a<n> <base>`: its own
//! branch, created from the integration head the task must see. Hooks are disabled for every checkout this module makes
//! (`core.hooksPath=/dev/null`): a post-checkout hook of the user's has no
//! business running once per task, and it would make the layer slower and
//! less predictable.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::{GitError, Result, io_err};
use super::git::{Git, split_nul};
use super::repo::{Repo, full_branch_ref};

/// The file at the repository root listing git-ignored paths to bring into
/// every new worktree (the name and meaning Claude Code uses).
pub const WORKTREE_INCLUDE_FILE: &str = ".worktreeinclude";

/// The prefix of every branch mdbatch creates.
pub const BRANCH_PREFIX: &str = "mdbatch/";

const NO_HOOKS: [&str; 2] = ["-c", "core.hooksPath=/dev/null"];

/// Turns free text (a task id or title) into a short name usable in a
/// branch and a folder: lowercase ASCII letters, digits, `-`, `.` and `_`,
/// at most 48 bytes, never empty (`task`).
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if c == '.' {
            if !out.is_empty() && !out.ends_with(['.', '-']) {
                out.push('.');
            }
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 48 {
            break;
        }
    }
    let out = out.trim_matches(|c| c == '-' || c == '.').to_string();
    let out = out.strip_suffix(".lock").map(str::to_string).unwrap_or(out);
    if out.is_empty() { "task".into() } else { out }
}

/// The branch of a task attempt: `mdbatch/<run>/<task>-a<attempt>`, both
/// parts passed through [`slug`] and the result checked with
/// `git check-ref-format --branch`.
pub fn task_branch_name(run: &str, task: &str, attempt: u32) -> Result<String> {
    let name = format!("{BRANCH_PREFIX}{}/{}-a{attempt}", slug(run), slug(task));
    let ok = Git::new(".")
        .args(["check-ref-format", "--branch", &name])
        .succeeds()?;
    if !ok {
        return Err(GitError::InvalidName {
            name,
            what: "a branch name",
            why: "git check-ref-format rejects it".into(),
        });
    }
    Ok(name)
}

/// The recommended worktree folder: a sibling of the work tree,
/// `<parent>/<name>.mdbatch-worktrees`. Outside the checkout, so `cargo`,
/// `npm` and friends searching upward from a task's worktree never find the
/// main checkout's manifest, and the worktrees never appear in the user's
/// `git status`; on the same file system, so copies are cheap; visible
/// next to the project, so nobody forgets gigabytes in a hidden cache.
/// Falls back to `<git-common-dir>/mdbatch-worktrees` for a work tree at
/// the file-system root.
pub fn default_worktree_dir(repo: &Repo) -> PathBuf {
    match (repo.root().parent(), repo.root().file_name()) {
        (Some(parent), Some(name)) => {
            let mut folder = name.to_os_string();
            folder.push(".mdbatch-worktrees");
            parent.join(folder)
        }
        _ => repo.common_dir().join("mdbatch-worktrees"),
    }
}

/// How `.worktreeinclude` entries reach a new worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IncludeMode {
    /// Copy files and folders (independent per worktree; the default).
    #[default]
    Copy,
    /// Symlink each entry to the main checkout's copy (fast for a big
    /// `node_modules`, but every worktree then writes into the same one).
    Symlink,
}

/// What to create for one task attempt.
#[derive(Debug, Clone)]
pub struct TaskWorktreeSpec<'a> {
    /// The folder holding mdbatch's worktrees (see [`default_worktree_dir`]).
    pub worktree_dir: &'a Path,
    /// The run's id (a folder and a branch component).
    pub run: &'a str,
    /// The task's id or title.
    pub task: &'a str,
    /// The attempt number (1-based).
    pub attempt: u32,
    /// The commit the worktree starts from (the integration head).
    pub base: &'a str,
    /// How `.worktreeinclude` entries are brought in.
    pub include: IncludeMode,
}

/// A worktree created for a task attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskWorktree {
    /// Its folder.
    pub path: PathBuf,
    /// Its branch (short name).
    pub branch: String,
    /// The commit it was created from.
    pub base: String,
    /// Repository-relative paths brought in from `.worktreeinclude`.
    pub included: Vec<String>,
}

/// Creates the worktree of a task attempt on its own branch from
/// `spec.base` and brings in the `.worktreeinclude` entries.
pub fn create_task_worktree(repo: &Repo, spec: &TaskWorktreeSpec<'_>) -> Result<TaskWorktree> {
    let branch = task_branch_name(spec.run, spec.task, spec.attempt)?;
    let base = repo.commit_id(spec.base)?;
    let parent = spec.worktree_dir.join(slug(spec.run));
    fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let path = parent.join(format!("{}-a{}", slug(spec.task), spec.attempt));
    repo.git()
        .args(NO_HOOKS)
        .args(["worktree", "add", "--quiet", "--no-track", "-b", &branch])
        .arg(&path)
        .arg(&base)
        .output()?;
    let included = match bring_in_includes(repo, &path, spec.include) {
        Ok(included) => included,
        Err(e) => {
            // Never leave a half-made worktree behind; the copy error is
            // the one to report.
            let _ = remove_worktree(repo, &path);
            let _ = delete_branch(repo, &branch);
            return Err(e);
        }
    };
    Ok(TaskWorktree {
        path,
        branch,
        base,
        included,
    })
}

/// The entries `.worktreeinclude` selects: untracked paths that match one
/// of its gitignore-style patterns *and* are ignored by git (a tracked or
/// merely untracked file is never copied: the checkout already has the one
/// or the task must not see the other). A folder that is ignored as a whole
/// is one entry (`node_modules/`). Empty when the file does not exist.
pub fn worktree_include_entries(repo: &Repo) -> Result<Vec<String>> {
    let include = repo.root().join(WORKTREE_INCLUDE_FILE);
    if !include.is_file() {
        return Ok(Vec::new());
    }
    let ls = |extra: &[&std::ffi::OsStr]| -> Result<Vec<String>> {
        Ok(split_nul(
            &repo
                .git()
                .args(["ls-files", "-z", "--others", "--ignored", "--directory"])
                .args(extra)
                .output()?,
        ))
    };
    let ignored = ls(&["--exclude-standard".as_ref()])?;
    let mut exclude_from = std::ffi::OsString::from("--exclude-from=");
    exclude_from.push(&include);
    let wanted = ls(&[exclude_from.as_os_str()])?;
    let mut out = Vec::new();
    for w in &wanted {
        let covered = ignored
            .iter()
            .any(|i| i == w || (i.ends_with('/') && w.starts_with(i.as_str())));
        if covered {
            out.push(w.clone());
        } else if w.ends_with('/') {
            out.extend(
                ignored
                    .iter()
                    .filter(|i| i.starts_with(w.as_str()))
                    .cloned(),
            );
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Copies or links the `.worktreeinclude` entries of the main checkout into
/// `worktree`. Returns the entries brought in.
pub fn bring_in_includes(repo: &Repo, worktree: &Path, mode: IncludeMode) -> Result<Vec<String>> {
    let entries = worktree_include_entries(repo)?;
    for entry in &entries {
        let rel = entry.trim_end_matches('/');
        let from = repo.root().join(rel);
        let to = worktree.join(rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        match mode {
            IncludeMode::Copy => copy_tree(&from, &to)?,
            IncludeMode::Symlink => symlink(&from, &to)?,
        }
    }
    Ok(entries)
}

#[cfg(unix)]
fn symlink(from: &Path, to: &Path) -> Result<()> {
    std::os::unix::fs::symlink(from, to).map_err(io_err(to))
}

#[cfg(not(unix))]
fn symlink(from: &Path, to: &Path) -> Result<()> {
    copy_tree(from, to)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(from).map_err(io_err(from))?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(from).map_err(io_err(from))?;
        symlink(&target, to)
    } else if meta.is_dir() {
        fs::create_dir_all(to).map_err(io_err(to))?;
        for entry in fs::read_dir(from).map_err(io_err(from))? {
            let entry = entry.map_err(io_err(from))?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        fs::copy(from, to).map(|_| ()).map_err(io_err(to))
    }
}

/// A detached checkout of a commit for running a command on it (verify on
/// the merged result). Removed by [`ScratchWorktree::remove`], or, as a
/// backstop, when dropped.
#[derive(Debug)]
pub struct ScratchWorktree {
    repo_root: PathBuf,
    path: PathBuf,
    removed: bool,
}

impl ScratchWorktree {
    /// Checks `commit` out, detached, at `path` (which must not exist), and
    /// brings in the `.worktreeinclude` entries.
    pub fn create(repo: &Repo, commit: &str, path: &Path, include: IncludeMode) -> Result<Self> {
        let commit = repo.commit_id(commit)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        repo.git()
            .args(NO_HOOKS)
            .args(["worktree", "add", "--quiet", "--detach"])
            .arg(path)
            .arg(&commit)
            .output()?;
        let wt = ScratchWorktree {
            repo_root: repo.root().to_path_buf(),
            path: path.to_path_buf(),
            removed: false,
        };
        bring_in_includes(repo, path, include)?;
        Ok(wt)
    }

    /// Its folder: run the verify command here.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the checkout and its administrative files.
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        remove_worktree_at(&self.repo_root, &self.path)
    }
}

impl Drop for ScratchWorktree {
    fn drop(&mut self) {
        if !self.removed {
            // Best effort: an error here has nowhere to go; `clean` finds
            // what is left.
            let _ = remove_worktree_at(&self.repo_root, &self.path);
        }
    }
}

fn remove_worktree_at(repo_root: &Path, path: &Path) -> Result<()> {
    if path.exists() {
        // Twice `--force`: also removes a locked worktree and one with
        // changes (it is ours; what it held was committed or is given up).
        Git::new(repo_root)
            .args(["worktree", "remove", "--force", "--force"])
            .arg(path)
            .output()?;
    }
    Git::new(repo_root).args(["worktree", "prune"]).output()?;
    Ok(())
}

/// Removes a worktree (forcibly) and prunes stale worktree records.
/// Succeeds when the worktree is already gone.
pub fn remove_worktree(repo: &Repo, path: &Path) -> Result<()> {
    remove_worktree_at(repo.root(), path)
}

/// Deletes a branch (forcibly). Succeeds when it does not exist.
pub fn delete_branch(repo: &Repo, branch: &str) -> Result<()> {
    let full = full_branch_ref(branch);
    if repo.resolve_commit(&full)?.is_some() {
        let short = full.strip_prefix("refs/heads/").unwrap_or(&full);
        repo.git()
            .args(["branch", "-D", "--quiet", short])
            .output()?;
    }
    Ok(())
}

/// Bytes used by the files under `path` (symlinks counted, not followed);
/// 0 when it does not exist.
pub fn disk_usage(path: &Path) -> Result<u64> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(path)(e)),
    };
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in fs::read_dir(path).map_err(io_err(path))? {
        let entry = entry.map_err(io_err(path))?;
        total += disk_usage(&entry.path())?;
    }
    Ok(total)
}

/// Something mdbatch left behind: a worktree, a branch, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The worktree folder, if there is one.
    pub path: Option<PathBuf>,
    /// The branch (short name), if there is one.
    pub branch: Option<String>,
    /// Bytes used by the worktree folder.
    pub bytes: u64,
}

/// mdbatch's worktrees and branches: every worktree on a `mdbatch/` branch
/// or inside `worktree_dir`, and every `mdbatch/` branch without one.
pub fn list_leftovers(repo: &Repo, worktree_dir: Option<&Path>) -> Result<Vec<Leftover>> {
    let dir = worktree_dir.and_then(|d| d.canonicalize().ok());
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for wt in repo.worktrees()?.into_iter().skip(1) {
        let branch = wt
            .branch
            .as_deref()
            .and_then(|b| b.strip_prefix("refs/heads/"))
            .map(str::to_string);
        let ours_by_branch = branch
            .as_deref()
            .is_some_and(|b| b.starts_with(BRANCH_PREFIX));
        let ours_by_path = dir.as_ref().is_some_and(|d| {
            wt.path
                .canonicalize()
                .unwrap_or_else(|_| wt.path.clone())
                .starts_with(d)
        });
        if ours_by_branch || ours_by_path {
            if let Some(b) = &branch {
                seen.push(b.clone());
            }
            out.push(Leftover {
                bytes: disk_usage(&wt.path)?,
                path: Some(wt.path),
                branch,
            });
        }
    }
    let refs = repo
        .git()
        .args([
            "for-each-ref",
            "--format=%(refname:short)",
            &format!("refs/heads/{BRANCH_PREFIX}"),
        ])
        .output_string()?;
    for b in refs.lines().filter(|l| !l.is_empty()) {
        if !seen.iter().any(|s| s == b) {
            out.push(Leftover {
                path: None,
                branch: Some(b.to_string()),
                bytes: 0,
            });
        }
    }
    Ok(out)
}

/// What [`clean`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// Worktree folders removed.
    pub worktrees: Vec<PathBuf>,
    /// Branches deleted.
    pub branches: Vec<String>,
    /// Bytes the removed worktrees used.
    pub bytes_freed: u64,
}

/// Removes the given leftovers (worktree, then branch) and prunes.
pub fn clean(repo: &Repo, leftovers: &[Leftover]) -> Result<CleanReport> {
    let mut report = CleanReport::default();
    for item in leftovers {
        if let Some(path) = &item.path {
            let bytes = disk_usage(path)?;
            remove_worktree(repo, path)?;
            report.bytes_freed += bytes;
            report.worktrees.push(path.clone());
        }
        if let Some(branch) = &item.branch {
            delete_branch(repo, branch)?;
            report.branches.push(branch.clone());
        }
    }
    repo.git().args(["worktree", "prune"]).output()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_is_ref_safe() {
        assert_eq!(slug("T001 Add the parser!"), "t001-add-the-parser");
        assert_eq!(slug("1.2"), "1.2");
        assert_eq!(slug("..weird..lock"), "weird");
        assert_eq!(slug("///"), "task");
        assert_eq!(slug("Ünïcode ok"), "n-code-ok");
        assert!(slug(&"x".repeat(200)).len() <= 48);
    }

    #[test]
    fn branch_names_follow_the_scheme() {
        assert_eq!(
            task_branch_name("20261130-0314", "T001 Add parser", 2).unwrap(),
            "mdbatch/20261130-0314/t001-add-parser-a2"
        );
    }
}
