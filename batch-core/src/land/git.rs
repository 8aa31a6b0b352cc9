//! Running git: a clean environment, typed errors, version checks.
//!
//! Every git process this module starts gets the caller's environment minus
//! every `GIT_*` variable (so a `GIT_DIR`, `GIT_INDEX_FILE` or
//! `GIT_WORK_TREE` set by a hook or a parent git never redirects us), plus
//! `LC_ALL=C` so messages we parse are in English, `GIT_TERMINAL_PROMPT=0`
//! and `GIT_OPTIONAL_LOCKS=0` (a status never takes the user's index lock),
//! and stdin closed unless input is given. `HOME` and the XDG variables are
//! kept: the user's configuration (identity, ignore files) must apply.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::{GitError, Result};

/// A git version, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GitVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl GitVersion {
    /// The oldest git the landing layer supports (`merge-tree --write-tree`).
    pub const MINIMUM: GitVersion = GitVersion::new(2, 38, 0);
    /// From this version on `merge-tree` accepts `--merge-base`.
    pub const MERGE_BASE_OPTION: GitVersion = GitVersion::new(2, 40, 0);

    /// A version from its parts.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        GitVersion {
            major,
            minor,
            patch,
        }
    }

    /// Parses the output of `git version` (`git version 2.47.3`,
    /// `git version 2.39.2 (Apple Git-143)`, `git version 2.45.1.windows.1`).
    pub fn parse(text: &str) -> Option<GitVersion> {
        let rest = text.trim().strip_prefix("git version ")?;
        let word = rest.split_whitespace().next()?;
        let mut parts = word.split('.').map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        });
        let major = parts.next()??;
        let minor = parts.next()??;
        let patch = parts.next().flatten().unwrap_or(0);
        Some(GitVersion::new(major, minor, patch))
    }
}

impl fmt::Display for GitVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Runs `git version` and checks it against [`GitVersion::MINIMUM`].
pub fn check_git_version() -> Result<GitVersion> {
    let out = Git::new(".").arg("version").output_string()?;
    let found = GitVersion::parse(&out).ok_or_else(|| GitError::Parse {
        args: "version".into(),
        detail: format!("no version in {:?}", out.trim()),
    })?;
    if found < GitVersion::MINIMUM {
        return Err(GitError::TooOld {
            found,
            required: GitVersion::MINIMUM,
        });
    }
    Ok(found)
}

/// The raw result of a git run whose non-zero exit is meaningful.
#[derive(Debug)]
pub(crate) struct RawOutput {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
}

/// One git invocation being built.
#[derive(Debug)]
pub(crate) struct Git {
    dir: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    input: Option<Vec<u8>>,
}

impl Git {
    /// git run in `dir` (its current directory).
    pub(crate) fn new(dir: impl AsRef<Path>) -> Self {
        Git {
            dir: dir.as_ref().to_path_buf(),
            args: Vec::new(),
            envs: Vec::new(),
            input: None,
        }
    }

    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets a variable after the clean-up (used for `GIT_INDEX_FILE` and the
    /// identity variables we choose ourselves).
    pub(crate) fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    pub(crate) fn input(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.input = Some(bytes.into());
        self
    }

    fn display_args(&self) -> String {
        self.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.current_dir(&self.dir);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("GIT_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env("LC_ALL", "C")
            .env("LANGUAGE", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env("GIT_PAGER", "cat");
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd.args(&self.args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if self.input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd
    }

    /// Runs git and returns its status and output whatever the exit code.
    pub(crate) fn raw(&self) -> Result<RawOutput> {
        let mut child = self.command().spawn().map_err(|source| GitError::Spawn {
            args: self.display_args(),
            source,
        })?;
        if let Some(input) = &self.input {
            let mut stdin = child.stdin.take().expect("stdin was piped above");
            // A git that exits early closes its stdin; its exit status says why.
            let _ = stdin.write_all(input);
        }
        let out = child.wait_with_output().map_err(|source| GitError::Spawn {
            args: self.display_args(),
            source,
        })?;
        Ok(RawOutput {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    /// Turns a non-zero exit into [`GitError::Command`].
    pub(crate) fn fail(&self, raw: &RawOutput) -> GitError {
        GitError::Command {
            args: self.display_args(),
            status: match raw.code {
                Some(c) => format!("exit status: {c}"),
                None => "killed by a signal".into(),
            },
            stderr: raw.stderr.clone(),
        }
    }

    /// Runs git; a non-zero exit is an error. Returns stdout.
    pub(crate) fn output(&self) -> Result<Vec<u8>> {
        let raw = self.raw()?;
        if raw.code == Some(0) {
            Ok(raw.stdout)
        } else {
            Err(self.fail(&raw))
        }
    }

    /// Like [`Git::output`], as UTF-8 (lossy).
    pub(crate) fn output_string(&self) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.output()?).into_owned())
    }

    /// Like [`Git::output_string`], trimmed: for commands printing one value.
    pub(crate) fn line(&self) -> Result<String> {
        Ok(self.output_string()?.trim().to_string())
    }

    /// Runs git and maps exit 0 to `true`, exit 1 to `false`, anything else
    /// to an error (`rev-parse --verify -q`, `merge-base --is-ancestor`).
    pub(crate) fn succeeds(&self) -> Result<bool> {
        let raw = self.raw()?;
        match raw.code {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(self.fail(&raw)),
        }
    }

    pub(crate) fn parse_error(&self, detail: impl Into<String>) -> GitError {
        GitError::Parse {
            args: self.display_args(),
            detail: detail.into(),
        }
    }
}

/// Splits NUL-terminated records (`-z` output), dropping the empty tail.
pub(crate) fn split_nul(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// A pathspec that excludes one repository-relative path (file or folder),
/// taken literally (no glob) and relative to the top of the work tree.
pub(crate) fn exclude_pathspec(path: &str) -> String {
    format!(":(top,exclude,literal){path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parses_common_forms() {
        assert_eq!(
            GitVersion::parse("git version 2.47.3\n"),
            Some(GitVersion::new(2, 47, 3))
        );
        assert_eq!(
            GitVersion::parse("git version 2.39.2 (Apple Git-143)"),
            Some(GitVersion::new(2, 39, 2))
        );
        assert_eq!(
            GitVersion::parse("git version 2.45.1.windows.1"),
            Some(GitVersion::new(2, 45, 1))
        );
        assert_eq!(
            GitVersion::parse("git version 2.40"),
            Some(GitVersion::new(2, 40, 0))
        );
        assert_eq!(GitVersion::parse("hg 6.1"), None);
        assert!(GitVersion::new(2, 37, 9) < GitVersion::MINIMUM);
        assert!(GitVersion::new(2, 38, 0) >= GitVersion::MINIMUM);
    }

    #[test]
    fn too_old_error_says_what_to_do() {
        let e = GitError::TooOld {
            found: GitVersion::new(2, 34, 1),
            required: GitVersion::MINIMUM,
        };
        let msg = e.to_string();
        assert!(msg.contains("2.34.1") && msg.contains("2.38.0") && msg.contains("--isolate none"));
    }
}
