//! Opening a repository, its state, the user's uncommitted work, identity.

use std::path::{Component, Path, PathBuf};

use super::error::{GitError, Result, io_err};
use super::git::{Git, GitVersion, check_git_version, exclude_pathspec, split_nul};

/// What `HEAD` of a checkout points at.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Head {
    /// On a branch; `commit` is `None` for a branch with no commit yet.
    Branch {
        /// Short branch name (`main`, `feature/x`).
        name: String,
        /// The commit the branch points at.
        commit: Option<String>,
    },
    /// Detached at a commit.
    Detached {
        /// The commit checked out.
        commit: String,
    },
}

impl Head {
    /// The commit checked out, if any.
    pub fn commit(&self) -> Option<&str> {
        match self {
            Head::Branch { commit, .. } => commit.as_deref(),
            Head::Detached { commit } => Some(commit),
        }
    }

    /// The branch checked out, if any.
    pub fn branch(&self) -> Option<&str> {
        match self {
            Head::Branch { name, .. } => Some(name),
            Head::Detached { .. } => None,
        }
    }
}

/// A git work tree opened from a folder inside it.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
    git_dir: PathBuf,
    common_dir: PathBuf,
    head: Head,
    version: GitVersion,
}

/// Whether `folder` is inside a git work tree (the test behind
/// "outside git, `--isolate none`"). A folder inside `.git` or a bare
/// repository is not. Fails only when git cannot be run or the folder does
/// not exist.
pub fn is_git_repo(folder: impl AsRef<Path>) -> Result<bool> {
    let folder = folder.as_ref();
    std::fs::metadata(folder).map_err(io_err(folder))?;
    let raw = Git::new(folder)
        .args(["rev-parse", "--is-inside-work-tree"])
        .raw()?;
    Ok(raw.code == Some(0) && String::from_utf8_lossy(&raw.stdout).trim() == "true")
}

/// One changed path in `git status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    /// The two status letters of `git status --porcelain` (`XY`: index,
    /// work tree; `??` untracked).
    pub code: String,
    /// Repository-relative path (the new path of a rename).
    pub path: String,
}

/// A commit identity (author or committer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Where it came from.
    pub source: IdentitySource,
}

/// Where an [`Identity`] was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentitySource {
    /// `GIT_AUTHOR_NAME` / `GIT_AUTHOR_EMAIL` in mdbatch's environment.
    Environment,
    /// `user.name` / `user.email` in git's configuration.
    Config,
    /// Nothing configured: [`Identity::FALLBACK_NAME`] and
    /// [`Identity::FALLBACK_EMAIL`] filled the gap.
    Fallback,
}

impl Identity {
    /// Name used when none is configured.
    pub const FALLBACK_NAME: &'static str = "mdbatch";
    /// E-mail used when none is configured.
    pub const FALLBACK_EMAIL: &'static str = "mdbatch@localhost";

    /// Resolves each field from the environment, then the configuration,
    /// then the fallback, as git does (minus git's guess from the host name,
    /// which produces addresses nobody wants in their history).
    pub(crate) fn resolve(
        env: impl Fn(&str) -> Option<String>,
        config: impl Fn(&str) -> Result<Option<String>>,
    ) -> Result<Identity> {
        let mut source = IdentitySource::Environment;
        let mut field = |var: &str, key: &str, fallback: &str| -> Result<String> {
            if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
                return Ok(v);
            }
            if let Some(v) = config(key)?.filter(|v| !v.trim().is_empty()) {
                if source == IdentitySource::Environment {
                    source = IdentitySource::Config;
                }
                return Ok(v);
            }
            source = IdentitySource::Fallback;
            Ok(fallback.to_string())
        };
        let name = field("GIT_AUTHOR_NAME", "user.name", Self::FALLBACK_NAME)?;
        let email = field("GIT_AUTHOR_EMAIL", "user.email", Self::FALLBACK_EMAIL)?;
        Ok(Identity {
            name,
            email,
            source,
        })
    }

    /// Sets author and committer to this identity.
    pub(crate) fn apply(&self, git: Git) -> Git {
        git.env("GIT_AUTHOR_NAME", &self.name)
            .env("GIT_AUTHOR_EMAIL", &self.email)
            .env("GIT_COMMITTER_NAME", &self.name)
            .env("GIT_COMMITTER_EMAIL", &self.email)
    }
}

/// One entry of `git worktree list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeInfo {
    /// Absolute path of the worktree.
    pub path: PathBuf,
    /// Commit checked out (`None` for a branch with no commit yet).
    pub head: Option<String>,
    /// Branch checked out, as a full ref (`refs/heads/main`).
    pub branch: Option<String>,
    /// Whether git marks it prunable (its folder is gone).
    pub prunable: bool,
    /// Whether it is locked.
    pub locked: bool,
}

impl Repo {
    /// Opens the work tree containing `folder`, checking git's version.
    pub fn open(folder: impl AsRef<Path>) -> Result<Repo> {
        let folder = folder.as_ref();
        let version = check_git_version()?;
        if !is_git_repo(folder)? {
            return Err(GitError::NotARepository {
                path: folder.to_path_buf(),
            });
        }
        let git = Git::new(folder).args([
            "rev-parse",
            "--path-format=absolute",
            "--show-toplevel",
            "--git-dir",
            "--git-common-dir",
        ]);
        let out = git.output_string()?;
        let mut lines = out.lines().map(PathBuf::from);
        let (Some(root), Some(git_dir), Some(common_dir)) =
            (lines.next(), lines.next(), lines.next())
        else {
            return Err(git.parse_error(format!("expected three paths, got {out:?}")));
        };
        let head = read_head(&root)?;
        Ok(Repo {
            root,
            git_dir,
            common_dir,
            head,
            version,
        })
    }

    /// The top folder of this work tree.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// This work tree's git dir (`.git`, or `.git/worktrees/<name>` in a
    /// linked worktree).
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    /// The git dir shared by all worktrees of the repository.
    pub fn common_dir(&self) -> &Path {
        &self.common_dir
    }

    /// `HEAD` as it was when opened (see [`Repo::current_head`]).
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// `HEAD` read again now.
    pub fn current_head(&self) -> Result<Head> {
        read_head(&self.root)
    }

    /// The git version in use.
    pub fn version(&self) -> GitVersion {
        self.version
    }

    pub(crate) fn git(&self) -> Git {
        Git::new(&self.root)
    }

    /// Resolves a revision to a commit id, `None` when it does not exist.
    pub fn resolve_commit(&self, rev: &str) -> Result<Option<String>> {
        let git = self
            .git()
            .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{rev}^{{commit}}"));
        let raw = git.raw()?;
        match raw.code {
            Some(0) => Ok(Some(
                String::from_utf8_lossy(&raw.stdout).trim().to_string(),
            )),
            Some(1) => Ok(None),
            _ => Err(git.fail(&raw)),
        }
    }

    /// Like [`Repo::resolve_commit`], an error when it does not exist.
    pub fn commit_id(&self, rev: &str) -> Result<String> {
        self.git()
            .args(["rev-parse", "--verify", "--end-of-options"])
            .arg(format!("{rev}^{{commit}}"))
            .line()
    }

    /// Turns a path (absolute inside the work tree, or relative to its root)
    /// into the repository-relative, `/`-separated form git pathspecs use.
    pub fn relative_path(&self, path: impl AsRef<Path>) -> Result<String> {
        let path = path.as_ref();
        let rel = if path.is_absolute() {
            let canon_root = self.root.canonicalize().map_err(io_err(&self.root))?;
            // The file may not exist (a deleted task file): canonicalise its
            // folder instead.
            let canon = match path.canonicalize() {
                Ok(p) => p,
                Err(_) => match (path.parent(), path.file_name()) {
                    (Some(parent), Some(name)) => {
                        parent.canonicalize().map_err(io_err(parent))?.join(name)
                    }
                    _ => path.to_path_buf(),
                },
            };
            canon
                .strip_prefix(&canon_root)
                .map(Path::to_path_buf)
                .map_err(|_| GitError::InvalidName {
                    name: path.display().to_string(),
                    what: "a repository path",
                    why: format!("it is outside {}", self.root.display()),
                })?
        } else {
            path.to_path_buf()
        };
        let mut parts = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
                Component::CurDir => {}
                _ => {
                    return Err(GitError::InvalidName {
                        name: path.display().to_string(),
                        what: "a repository path",
                        why: "it leaves the work tree".into(),
                    });
                }
            }
        }
        Ok(parts.join("/"))
    }

    /// Branches whose full ref matches `pattern` (`refs/heads/mdbatch/*`),
    /// as `(full ref, commit)`.
    pub fn branches_matching(&self, pattern: &str) -> Result<Vec<(String, String)>> {
        let out = Git::new(&self.root)
            .args(["for-each-ref", "--format=%(refname) %(objectname)", pattern])
            .output_string()?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(r, c)| (r.to_string(), c.to_string()))
            .collect())
    }

    /// Whether `ancestor` is an ancestor of (or the same as) `descendant`.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool> {
        Git::new(&self.root)
            .args(["merge-base", "--is-ancestor", ancestor, descendant])
            .succeeds()
    }

    /// A commit's committer time (seconds since the epoch).
    pub fn commit_time(&self, commit: &str) -> Result<i64> {
        let git = Git::new(&self.root).args(["show", "-s", "--format=%ct", commit]);
        let line = git.line()?;
        line.trim()
            .parse()
            .map_err(|_| git.parse_error(format!("not a time: {line}")))
    }

    /// Whether git ignores `path` (a file or folder inside the work tree):
    /// work done there is not tracked, so it is as good as outside git.
    pub fn is_ignored(&self, path: impl AsRef<Path>) -> Result<bool> {
        let rel = self.relative_path(path)?;
        if rel.is_empty() {
            return Ok(false);
        }
        let raw = Git::new(&self.root)
            .args(["check-ignore", "-q", "--no-index", "--"])
            .arg(&rel)
            .raw()?;
        Ok(raw.code == Some(0))
    }

    /// The user's uncommitted work: staged, unstaged and untracked (not
    /// ignored) paths, except `exclude` (repository-relative files or
    /// folders, e.g. the task file and `.mdbatch`). Empty means clean.
    pub fn uncommitted_changes(&self, exclude: &[&str]) -> Result<Vec<StatusEntry>> {
        status_of(&self.root, exclude)
    }

    /// The identity commits are made with (see [`Identity`]).
    pub fn identity(&self) -> Result<Identity> {
        Identity::resolve(
            |var| std::env::var(var).ok(),
            |key| {
                let git = self.git().args(["config", "--get", key]);
                let raw = git.raw()?;
                match raw.code {
                    Some(0) => Ok(Some(
                        String::from_utf8_lossy(&raw.stdout).trim().to_string(),
                    )),
                    Some(1) => Ok(None),
                    _ => Err(git.fail(&raw)),
                }
            },
        )
    }

    /// Every worktree of the repository, the main one first.
    pub fn worktrees(&self) -> Result<Vec<WorktreeInfo>> {
        let git = self.git().args(["worktree", "list", "--porcelain", "-z"]);
        let out = git.output()?;
        let mut list: Vec<WorktreeInfo> = Vec::new();
        for line in split_nul(&out) {
            let (key, value) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            if key == "worktree" {
                list.push(WorktreeInfo {
                    path: PathBuf::from(value),
                    head: None,
                    branch: None,
                    prunable: false,
                    locked: false,
                });
                continue;
            }
            let Some(wt) = list.last_mut() else {
                return Err(git.parse_error(format!("{line:?} before any worktree line")));
            };
            match key {
                "HEAD" => {
                    wt.head = Some(value.to_string()).filter(|h| !h.bytes().all(|b| b == b'0'))
                }
                "branch" => wt.branch = Some(value.to_string()),
                "prunable" => wt.prunable = true,
                "locked" => wt.locked = true,
                _ => {}
            }
        }
        Ok(list)
    }

    /// The worktree where `branch` (short name or `refs/heads/…`) is checked
    /// out, if any.
    pub fn checked_out_in(&self, branch: &str) -> Result<Option<PathBuf>> {
        let full = full_branch_ref(branch);
        Ok(self
            .worktrees()?
            .into_iter()
            .find(|w| w.branch.as_deref() == Some(full.as_str()))
            .map(|w| w.path))
    }
}

/// `main` → `refs/heads/main`; full refs are kept.
pub(crate) fn full_branch_ref(branch: &str) -> String {
    if branch.starts_with("refs/") {
        branch.to_string()
    } else {
        format!("refs/heads/{branch}")
    }
}

pub(crate) fn read_head(dir: &Path) -> Result<Head> {
    let sym = Git::new(dir).args(["symbolic-ref", "-q", "HEAD"]);
    let raw = sym.raw()?;
    let commit_git = Git::new(dir).args(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]);
    let commit_raw = commit_git.raw()?;
    let commit = match commit_raw.code {
        Some(0) => Some(
            String::from_utf8_lossy(&commit_raw.stdout)
                .trim()
                .to_string(),
        ),
        Some(1) => None,
        _ => return Err(commit_git.fail(&commit_raw)),
    };
    match raw.code {
        Some(0) => {
            let full = String::from_utf8_lossy(&raw.stdout).trim().to_string();
            let name = full
                .strip_prefix("refs/heads/")
                .unwrap_or(&full)
                .to_string();
            Ok(Head::Branch { name, commit })
        }
        Some(1) => match commit {
            Some(commit) => Ok(Head::Detached { commit }),
            None => Err(commit_git.parse_error("detached HEAD without a commit")),
        },
        _ => Err(sym.fail(&raw)),
    }
}

pub(crate) fn status_of(dir: &Path, exclude: &[&str]) -> Result<Vec<StatusEntry>> {
    let mut git = Git::new(dir).args([
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--ignore-submodules=none",
        "--",
        ":(top)",
    ]);
    for path in exclude {
        git = git.arg(exclude_pathspec(path));
    }
    let out = git.output()?;
    let mut entries = Vec::new();
    let mut records = split_nul(&out).into_iter();
    while let Some(rec) = records.next() {
        if rec.len() < 4 {
            return Err(git.parse_error(format!("short status record {rec:?}")));
        }
        let code = rec[..2].to_string();
        let path = rec[3..].to_string();
        if code.contains('R') || code.contains('C') {
            // A rename is followed by its source path.
            records.next();
        }
        entries.push(StatusEntry { code, path });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_prefers_environment_then_config_then_fallback() {
        let cfg = |key: &str| -> Result<Option<String>> {
            Ok(match key {
                "user.name" => Some("Config Name".into()),
                _ => None,
            })
        };
        let id = Identity::resolve(|_| None, cfg).unwrap();
        assert_eq!(id.name, "Config Name");
        assert_eq!(id.email, Identity::FALLBACK_EMAIL);
        assert_eq!(id.source, IdentitySource::Fallback);

        let env = |var: &str| match var {
            "GIT_AUTHOR_NAME" => Some("Env Name".to_string()),
            "GIT_AUTHOR_EMAIL" => Some("env@example.org".to_string()),
            _ => None,
        };
        let id = Identity::resolve(env, cfg).unwrap();
        assert_eq!(
            (id.name.as_str(), id.email.as_str()),
            ("Env Name", "env@example.org")
        );
        assert_eq!(id.source, IdentitySource::Environment);

        let id = Identity::resolve(|_| None, |_| Ok(None)).unwrap();
        assert_eq!(id.name, Identity::FALLBACK_NAME);
        assert_eq!(id.source, IdentitySource::Fallback);

        let full = |key: &str| -> Result<Option<String>> {
            Ok(Some(
                if key == "user.name" { "N" } else { "n@x" }.to_string(),
            ))
        };
        assert_eq!(
            Identity::resolve(|_| None, full).unwrap().source,
            IdentitySource::Config
        );
    }
}
