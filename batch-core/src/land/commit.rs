//! One commit per task: the message, the squash, finding a task's commit
//! again by its `Mdbatch-Task:` trailer.

use std::path::Path;

use super::error::Result;
use super::git::{Git, exclude_pathspec};
use super::repo::{Identity, Repo};

/// The trailer naming the task a commit belongs to.
pub const TASK_TRAILER: &str = "Mdbatch-Task";

/// The message of a task commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskMessage {
    /// The subject (the task's text); whitespace is collapsed to one line.
    pub subject: String,
    /// Body lines (id, file, attempt, agent…).
    pub body: Vec<String>,
    /// The task id, written as the `Mdbatch-Task:` trailer.
    pub task_id: String,
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl TaskMessage {
    /// The full commit message: subject, blank line, body, blank line,
    /// trailer.
    pub fn render(&self) -> String {
        let mut out = one_line(&self.subject);
        if out.is_empty() {
            out = format!("mdbatch task {}", one_line(&self.task_id));
        }
        out.push_str("\n\n");
        let body: Vec<&String> = self.body.iter().collect();
        if !body.is_empty() {
            for line in body {
                out.push_str(line.trim_end());
                out.push('\n');
            }
            out.push('\n');
        }
        out.push_str(&format!("{TASK_TRAILER}: {}\n", one_line(&self.task_id)));
        out
    }
}

/// What [`squash`] is given.
#[derive(Debug, Clone)]
pub struct SquashSpec<'a> {
    /// The task's worktree.
    pub worktree: &'a Path,
    /// The commit the worktree was created from.
    pub base: &'a str,
    /// Repository-relative paths never committed (the task file,
    /// `.mdbatch`): they keep their content from `base`.
    pub exclude: &'a [&'a str],
    /// The message.
    pub message: &'a TaskMessage,
    /// Author and committer.
    pub identity: &'a Identity,
}

/// Squashes everything the task changed in its worktree — commits the agent
/// made, staged and unstaged edits, new untracked (not ignored) files,
/// deletions — into one commit whose only parent is `base`, leaving out
/// `exclude`. The worktree's branch is then moved to that commit with its
/// index reset to it (`git reset --mixed`; no file in the worktree
/// changes), so the branch holds exactly the task's commit.
///
/// Returns `None` when nothing changed. Works on a private index file: the
/// worktree's own index is not used, and no hook runs.
pub fn squash(spec: &SquashSpec<'_>) -> Result<Option<String>> {
    let wt = spec.worktree;
    let git_dir = Git::new(wt)
        .args(["rev-parse", "--path-format=absolute", "--git-dir"])
        .line()?;
    let index = Path::new(&git_dir).join("mdbatch-squash.index");
    // A leftover from a killed run would be stale.
    let _ = std::fs::remove_file(&index);
    let with_index = |git: Git| git.env("GIT_INDEX_FILE", &index);
    let result = (|| -> Result<Option<String>> {
        let base = Git::new(wt)
            .args(["rev-parse", "--verify", "--end-of-options"])
            .arg(format!("{}^{{commit}}", spec.base))
            .line()?;
        with_index(Git::new(wt).args(["read-tree", &base])).output()?;
        let mut add = with_index(Git::new(wt)).args(["add", "--all", "--", ":(top)"]);
        for path in spec.exclude {
            add = add.arg(exclude_pathspec(path));
        }
        add.output()?;
        let tree = with_index(Git::new(wt).arg("write-tree")).line()?;
        let base_tree = Git::new(wt)
            .args(["rev-parse", &format!("{base}^{{tree}}")])
            .line()?;
        if tree == base_tree {
            return Ok(None);
        }
        let commit = spec
            .identity
            .apply(Git::new(wt))
            .args(["commit-tree", &tree, "-p", &base, "-F", "-"])
            .input(spec.message.render())
            .line()?;
        Git::new(wt)
            .args(["reset", "--quiet", "--mixed", &commit])
            .output()?;
        Ok(Some(commit))
    })();
    let _ = std::fs::remove_file(&index);
    result
}

/// The patch of a task commit against its parent, as the next attempt's
/// prompt shows it ("your previous diff"): plain `git show`, no colour, no
/// external diff driver or text conversion.
pub fn commit_diff(repo: &Repo, commit: &str) -> Result<String> {
    repo.git()
        .args([
            "show",
            "--format=",
            "--patch",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--end-of-options",
            commit,
        ])
        .output_string()
}

/// A commit carrying a task trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCommit {
    /// Commit id.
    pub commit: String,
    /// Its subject.
    pub subject: String,
    /// The `Mdbatch-Task:` value, if it has one.
    pub task_id: Option<String>,
}

/// Commits of `range` (a rev-list range such as `base..main`) that touch
/// any of `paths` (every commit when `paths` is empty), newest first, with
/// their task trailer.
pub fn task_commits(repo: &Repo, range: &str, paths: &[String]) -> Result<Vec<TaskCommit>> {
    let format =
        format!("--format=%H%x1f%s%x1f%(trailers:key={TASK_TRAILER},valueonly,separator=%x1d)%x1e");
    let mut git = repo.git().args([
        "log",
        "--no-color",
        &format,
        "--end-of-options",
        range,
        "--",
    ]);
    for p in paths {
        git = git.arg(format!(":(top,literal){p}"));
    }
    let out = git.output_string()?;
    let mut commits = Vec::new();
    for rec in out.split('\x1e') {
        let rec = rec.trim_matches('\n');
        if rec.is_empty() {
            continue;
        }
        let mut f = rec.split('\x1f');
        let (Some(commit), Some(subject), trailer) = (f.next(), f.next(), f.next()) else {
            return Err(git.parse_error(format!("bad log record {rec:?}")));
        };
        commits.push(TaskCommit {
            commit: commit.to_string(),
            subject: subject.to_string(),
            task_id: trailer
                .and_then(|t| t.split('\x1d').next())
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
        });
    }
    Ok(commits)
}

/// The newest commit in `range` whose `Mdbatch-Task:` trailer is exactly
/// `task_id`.
pub fn find_task_commit(repo: &Repo, range: &str, task_id: &str) -> Result<Option<String>> {
    // `--grep` narrows the walk cheaply; the trailer is then compared
    // exactly (`T1` must not match `T10`).
    let format =
        format!("--format=%H%x1f%(trailers:key={TASK_TRAILER},valueonly,separator=%x1d)%x1e");
    let out = repo
        .git()
        .args([
            "log",
            "--no-color",
            "--fixed-strings",
            &format!("--grep={TASK_TRAILER}: {task_id}"),
            &format,
            "--end-of-options",
            range,
            "--",
        ])
        .output_string()?;
    for rec in out.split('\x1e') {
        let rec = rec.trim_matches('\n');
        if let Some((commit, trailers)) = rec.split_once('\x1f')
            && trailers.split('\x1d').any(|t| t.trim() == task_id)
        {
            return Ok(Some(commit.to_string()));
        }
    }
    Ok(None)
}

/// Where a task's change stands, for resuming a killed run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskLandState {
    /// A commit with its trailer is reachable from the target: done, never
    /// land or run it again.
    Landed {
        /// The landed commit.
        commit: String,
    },
    /// Its commit exists on its branch but not on the target: land it
    /// without running the agent again.
    Committed {
        /// The task commit.
        commit: String,
    },
    /// No commit: the task must run (again).
    NotCommitted,
}

/// Finds out whether `task_id` has landed on `target` (searching only
/// `since..target` when the run's starting commit `since` is given, so a
/// reused id of an earlier run does not count), else whether its `branch`
/// holds its commit.
pub fn task_land_state(
    repo: &Repo,
    target: &str,
    since: Option<&str>,
    branch: Option<&str>,
    task_id: &str,
) -> Result<TaskLandState> {
    let range = match since {
        Some(s) => format!("{s}..{target}"),
        None => target.to_string(),
    };
    if let Some(commit) = find_task_commit(repo, &range, task_id)? {
        return Ok(TaskLandState::Landed { commit });
    }
    if let Some(branch) = branch
        && repo.resolve_commit(branch)?.is_some()
        && let Some(commit) = find_task_commit(repo, &format!("{target}..{branch}"), task_id)?
    {
        return Ok(TaskLandState::Committed { commit });
    }
    Ok(TaskLandState::NotCommitted)
}

/// The task commits of run `run_id` reachable from any of `refs` (that
/// exist), newest first, as `(commit, task id)`: the commits whose message
/// carries `Mdbatch-Run: <run_id>` and a [`TASK_TRAILER`]. A resumed run uses
/// it to tell which tasks of a killed run had landed.
pub fn run_task_commits(
    repo: &Repo,
    refs: &[String],
    run_id: &str,
) -> Result<Vec<(String, String)>> {
    let mut existing = Vec::new();
    for r in refs {
        if repo.resolve_commit(r)?.is_some() {
            existing.push(r.clone());
        }
    }
    if existing.is_empty() || run_id.is_empty() {
        return Ok(Vec::new());
    }
    let out = Git::new(repo.root())
        .args(["log", "-F", "--format=%H%x1f%B%x1e"])
        .arg(format!("--grep=Mdbatch-Run: {run_id}"))
        .args(&existing)
        .arg("--")
        .output_string()?;
    let mut found = Vec::new();
    for record in out.split('\u{1e}') {
        let Some((commit, body)) = record.trim_start().split_once('\u{1f}') else {
            continue;
        };
        let run_line = format!("Mdbatch-Run: {run_id}");
        if !body.lines().any(|l| l.trim() == run_line) {
            continue;
        }
        if let Some(id) = body
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(&format!("{TASK_TRAILER}: ")))
        {
            found.push((commit.trim().to_string(), id.trim().to_string()));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_has_subject_body_and_trailer() {
        let m = TaskMessage {
            subject: "Add the\n  parser ".into(),
            body: vec![
                "Task: T001 (task.md)".into(),
                "Attempt: 2, agent: claude".into(),
            ],
            task_id: "T001".into(),
        };
        assert_eq!(
            m.render(),
            "Add the parser\n\nTask: T001 (task.md)\nAttempt: 2, agent: claude\n\nMdbatch-Task: T001\n"
        );
        let bare = TaskMessage {
            subject: " ".into(),
            body: vec![],
            task_id: "x".into(),
        };
        assert_eq!(bare.render(), "mdbatch task x\n\nMdbatch-Task: x\n");
    }
}
