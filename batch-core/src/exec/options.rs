//! Run options (the CLI's flags, the FFI's `options_json`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::doc::Dialect;

use super::isolate::Isolate;

/// Settings of a run. `Default` (or [`RunOptions::new`]) gives the
/// documented defaults; set fields with the `with_*` methods.
///
/// ```
/// use std::time::Duration;
/// use batch_core::RunOptions;
///
/// let options = RunOptions::new()
///     .with_jobs(2)
///     .with_retries(1)
///     .with_timeout(Duration::from_secs(600))
///     .with_cmd("my-agent --prompt {prompt}");
/// assert_eq!(options.jobs, Some(2));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RunOptions {
    /// How many subagents may run at once (default 4; when `None`, a
    /// document's `jobs:` hint applies). Must be at least 1.
    pub jobs: Option<u32>,
    /// How many times a failed attempt is retried (default 2; `Fatal` errors
    /// are never retried).
    pub retries: u32,
    /// How long one attempt may run before it is stopped as `Timeout`
    /// (default: no limit; a task's `timeout:` hint wins). Must not be zero.
    #[serde(with = "crate::util::opt_duration")]
    pub timeout: Option<Duration>,
    /// How long a stopped subagent gets between SIGTERM and SIGKILL (default 10 s).
    #[serde(with = "crate::util::duration")]
    pub grace: Duration,
    /// How long in total a task may wait on rate limits before it fails (default 30 min).
    #[serde(with = "crate::util::duration")]
    pub max_wait: Duration,
    /// The first retry delay; it doubles per retry (default 1 s).
    #[serde(with = "crate::util::duration")]
    pub backoff_base: Duration,
    /// The longest retry delay (default 60 s).
    #[serde(with = "crate::util::duration")]
    pub backoff_cap: Duration,
    /// A command that must pass after a subagent succeeds before the box is
    /// checked (a task's `verify:` hint wins).
    pub verify: Option<String>,
    /// `--trust-verify`: run `verify:` hint commands that are new since the
    /// file was last run (and record them as approved). Without it such a
    /// run does not start ([`RunSetupError::UnapprovedVerify`](crate::RunSetupError::UnapprovedVerify)).
    pub trust_verify: bool,
    /// Stop launching new work after the first task fails for good.
    pub fail_fast: bool,
    /// Plan cross-wave (`Some(true)`), strict waves (`Some(false)`), or as the
    /// document's `cross-wave:` hint says (`None`).
    pub cross_wave: Option<bool>,
    /// Run only these tasks (ids, ranges `T004-T010`, section names) and what
    /// they need; empty runs everything.
    pub only: Vec<String>,
    /// Run optional tasks (`- [ ]* …`) too.
    pub include_optional: bool,
    /// Read the file as this dialect instead of detecting it.
    pub dialect: Option<Dialect>,
    /// Use this heading level for waves instead of detecting it.
    pub wave_level: Option<u8>,
    /// The folder subagents run in (default: the task file's folder).
    pub workdir: Option<PathBuf>,
    /// Continue the agent sessions of attempts an earlier run left unfinished.
    pub resume_sessions: bool,
    /// The command template of the command runner, used when no runner is
    /// given (`my-agent --prompt {prompt}`).
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
    /// Where subagents run: on this machine, or each as a job step of a
    /// Slurm cluster (`srun`), on a file system the cluster shares.
    pub launcher: Launcher,
    /// Extra `srun` arguments for every task (partition, time limit, CPUs,
    /// memory); `launcher-arg:` hints add per section and task.
    pub launcher_args: Vec<String>,
    /// Spending cap for the whole run in US dollars: once the costs the
    /// agents reported add up to it, no new task is launched (see [`AtCap`]).
    pub max_cost_usd: Option<f64>,
    /// Token cap for the whole run (input + output tokens the agents reported).
    pub max_tokens: Option<u64>,
    /// What happens to running tasks when a cap is reached.
    pub at_cap: AtCap,
}

/// What happens to the tasks running when a spending cap is reached.
///
/// Reports arrive when attempts end, so parallel tasks can overshoot the
/// cap: with `Finish`, by at most what the tasks running at that moment
/// spend (each bounded by its own per-task budget where the agent has one,
/// e.g. Claude Code's `--max-budget-usd`; unbounded for agents without);
/// with `Stop`, by what they had spent when stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AtCap {
    /// Let running tasks finish (their boxes are checked if they succeed).
    #[default]
    Finish,
    /// Stop running tasks at once (gracefully, as an interrupt does).
    Stop,
}

impl std::str::FromStr for AtCap {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "finish" => Ok(AtCap::Finish),
            "stop" => Ok(AtCap::Stop),
            other => Err(format!("unknown choice `{other}`: use finish or stop")),
        }
    }
}

/// Where subagents run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Launcher {
    /// As child processes of mdbatch.
    #[default]
    Local,
    /// Each attempt as its own Slurm job step (`srun`), cancelled with `scancel`.
    Slurm,
}

impl std::str::FromStr for Launcher {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(Launcher::Local),
            "slurm" => Ok(Launcher::Slurm),
            other => Err(format!("unknown launcher `{other}`: use local or slurm")),
        }
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            max_cost_usd: None,
            max_tokens: None,
            at_cap: AtCap::Finish,
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
            launcher: Launcher::Local,
            launcher_args: Vec::new(),
        }
    }
}

/// The default `--jobs`.
#[allow(dead_code)] // used by the executor
pub const DEFAULT_JOBS: u32 = 4;

impl RunOptions {
    /// The documented defaults (the same as `Default`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`RunOptions::jobs`]: how many subagents may run at once.
    pub fn with_jobs(mut self, jobs: u32) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// Sets [`RunOptions::retries`]: how many times a failed attempt is retried.
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets [`RunOptions::timeout`]: how long one attempt may run.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets [`RunOptions::grace`]: the wait between SIGTERM and SIGKILL.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Sets [`RunOptions::max_wait`]: the total wait on rate limits per task.
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Sets [`RunOptions::backoff_base`]: the first retry delay.
    pub fn with_backoff_base(mut self, backoff_base: Duration) -> Self {
        self.backoff_base = backoff_base;
        self
    }

    /// Sets [`RunOptions::backoff_cap`]: the longest retry delay.
    pub fn with_backoff_cap(mut self, backoff_cap: Duration) -> Self {
        self.backoff_cap = backoff_cap;
        self
    }

    /// Sets [`RunOptions::verify`]: the command that must pass before a box is checked.
    pub fn with_verify(mut self, verify: impl Into<String>) -> Self {
        self.verify = Some(verify.into());
        self
    }

    /// Sets [`RunOptions::trust_verify`]: run `verify:` commands that are
    /// new since the file was last run, and approve them.
    pub fn with_trust_verify(mut self, trust: bool) -> Self {
        self.trust_verify = trust;
        self
    }

    /// Sets [`RunOptions::max_cost_usd`]: the run's spending cap in US dollars.
    pub fn with_max_cost(mut self, usd: f64) -> Self {
        self.max_cost_usd = Some(usd);
        self
    }

    /// Sets [`RunOptions::max_tokens`]: the run's token cap.
    pub fn with_max_tokens(mut self, tokens: u64) -> Self {
        self.max_tokens = Some(tokens);
        self
    }

    /// Sets [`RunOptions::at_cap`]: what happens to running tasks at the cap.
    pub fn with_at_cap(mut self, at_cap: AtCap) -> Self {
        self.at_cap = at_cap;
        self
    }

    /// Sets [`RunOptions::fail_fast`]: stop launching after the first failure.
    pub fn with_fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Sets [`RunOptions::cross_wave`]: cross-wave or strict waves, whatever the document says.
    pub fn with_cross_wave(mut self, cross_wave: bool) -> Self {
        self.cross_wave = Some(cross_wave);
        self
    }

    /// Sets [`RunOptions::only`]: the tasks to run.
    pub fn with_only<I, S>(mut self, only: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.only = only.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`RunOptions::include_optional`]: run optional tasks too.
    pub fn with_include_optional(mut self, include_optional: bool) -> Self {
        self.include_optional = include_optional;
        self
    }

    /// Sets [`RunOptions::dialect`]: the dialect to read the file as.
    pub fn with_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = Some(dialect);
        self
    }

    /// Sets [`RunOptions::wave_level`]: the heading level of waves.
    pub fn with_wave_level(mut self, wave_level: u8) -> Self {
        self.wave_level = Some(wave_level);
        self
    }

    /// Sets [`RunOptions::workdir`]: the folder subagents run in.
    pub fn with_workdir(mut self, workdir: impl Into<PathBuf>) -> Self {
        self.workdir = Some(workdir.into());
        self
    }

    /// Sets [`RunOptions::resume_sessions`]: continue unfinished agent sessions.
    pub fn with_resume_sessions(mut self, resume_sessions: bool) -> Self {
        self.resume_sessions = resume_sessions;
        self
    }

    /// Sets [`RunOptions::cmd`]: the command runner's template.
    pub fn with_cmd(mut self, cmd: impl Into<String>) -> Self {
        self.cmd = Some(cmd.into());
        self
    }
}

impl RunOptions {
    /// Sets [`RunOptions::isolate`]: how subagents are kept apart.
    pub fn with_isolate(mut self, isolate: Isolate) -> Self {
        self.isolate = isolate;
        self
    }

    /// Sets [`RunOptions::worktree_dir`]: where task worktrees are created.
    pub fn with_worktree_dir(mut self, worktree_dir: impl Into<PathBuf>) -> Self {
        self.worktree_dir = Some(worktree_dir.into());
        self
    }

    /// Sets [`RunOptions::into`]: the branch tasks land on.
    pub fn with_into(mut self, into: impl Into<String>) -> Self {
        self.into = Some(into.into());
        self
    }
}

impl RunOptions {
    /// Sets [`RunOptions::commit`]: commit each finished task in the shared folder.
    pub fn with_commit(mut self, commit: bool) -> Self {
        self.commit = commit;
        self
    }
}

impl RunOptions {
    /// Sets [`RunOptions::launcher`]: where subagents run.
    pub fn with_launcher(mut self, launcher: Launcher) -> Self {
        self.launcher = launcher;
        self
    }

    /// Sets [`RunOptions::launcher_args`]: extra `srun` arguments for every task.
    pub fn with_launcher_args<I, S>(mut self, launcher_args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.launcher_args = launcher_args.into_iter().map(Into::into).collect();
        self
    }
}
