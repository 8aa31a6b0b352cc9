//! Run options (the CLI's flags, the FFI's `options_json`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::doc::Dialect;

use super::isolate::Isolate;

/// Settings of a run. `Default` gives the CLI's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RunOptions {
    /// Max subagents at once (`--jobs`, default 4; a document `jobs:` hint applies when not set).
    pub jobs: Option<u32>,
    /// Retries after the first attempt (default 2).
    pub retries: u32,
    /// Per-attempt timeout.
    #[serde(with = "crate::util::opt_duration")]
    pub timeout: Option<Duration>,
    /// SIGTERM → SIGKILL grace period (default 10 s).
    #[serde(with = "crate::util::duration")]
    pub grace: Duration,
    /// Total time a task may spend waiting on rate limits (default 30 min).
    #[serde(with = "crate::util::duration")]
    pub max_wait: Duration,
    /// First retry delay (default 1 s).
    #[serde(with = "crate::util::duration")]
    pub backoff_base: Duration,
    /// Longest retry delay (default 60 s).
    #[serde(with = "crate::util::duration")]
    pub backoff_cap: Duration,
    /// `--verify CMD`.
    pub verify: Option<String>,
    /// `--trust-verify`: run `verify:` hint commands that are new since the
    /// file was last run (and record them as approved). Without it such a
    /// run does not start ([`RunSetupError::UnapprovedVerify`](crate::RunSetupError::UnapprovedVerify)).
    pub trust_verify: bool,
    /// `--fail-fast`.
    pub fail_fast: bool,
    /// `--cross-wave` (`None`: the document decides).
    pub cross_wave: Option<bool>,
    /// `--only`.
    pub only: Vec<String>,
    /// `--include-optional`.
    pub include_optional: bool,
    /// `--dialect`.
    pub dialect: Option<Dialect>,
    /// `--wave-level`.
    pub wave_level: Option<u8>,
    /// `--workdir` (default: the task file's folder).
    pub workdir: Option<PathBuf>,
    /// `--resume-sessions`: continue sessions of unfinished attempts.
    pub resume_sessions: bool,
    /// The command template for the command runner (`--cmd`).
    pub cmd: Option<String>,
    /// How subagents are kept apart: a git worktree per attempt with each
    /// task landed as one commit (the default inside a git repository), or
    /// one shared folder.
    pub isolate: Isolate,
    /// Where task worktrees are created (default: a folder beside the
    /// checkout, `<repo>.mdbatch-worktrees/`).
    pub worktree_dir: Option<PathBuf>,
    /// The branch tasks land on (default: the branch checked out).
    pub into: Option<String>,
    /// Without isolation: commit each finished task's change in the shared
    /// folder (one task at a time).
    pub commit: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            jobs: None,
            retries: 2,
            timeout: None,
            grace: Duration::from_secs(10),
            max_wait: Duration::from_secs(30 * 60),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            verify: None,
            trust_verify: false,
            fail_fast: false,
            cross_wave: None,
            only: Vec::new(),
            include_optional: false,
            dialect: None,
            wave_level: None,
            workdir: None,
            resume_sessions: false,
            cmd: None,
            isolate: Isolate::Auto,
            worktree_dir: None,
            into: None,
            commit: false,
        }
    }
}

/// The default `--jobs`.
#[allow(dead_code)] // used by the executor
pub const DEFAULT_JOBS: u32 = 4;
