//! The Slurm launcher: run one subagent as one Slurm job step through `srun`.
//!
//! # What it owns
//! - [`SrunCommand`]: the `srun` argv wrapping a program and its arguments
//!   (no shell), with a job name [`job_name`] that names the run, the task
//!   and the attempt, and the user's `--launcher-arg`s passed through.
//! - [`cancel`]: `scancel --me --name=JOB [--signal=SIG]`, the only way to end
//!   the job itself rather than the local `srun` (see the pitfalls).
//! - [`jobs_of_run`]: the run's jobs still known to the cluster (`squeue`),
//!   for cleanup after a crash and for the "no leaked job" checks.
//! - [`doctor`]: srun found, the cluster answers, the partition exists.
//! - [`classify_stderr_line`]: tells srun's and slurmstepd's own stderr lines
//!   from the agent's, so failure messages show the agent's last line and the
//!   display can show "queued on the cluster" until the job gets a slot.
//!   The failure message is the agent's last stderr line, else the last
//!   [`LauncherLine::LaunchFailed`] or [`LauncherLine::SrunError`] message.
//!
//! # Lifecycle of one attempt (measured on Slurm 22.05, see NOTES.md)
//! 1. Spawn [`SrunCommand::argv`] like any command (own process group, stdout
//!    and stderr piped). `srun` passes the exit code through (75 stays 75),
//!    streams each line as it is written, keeps stdout and stderr apart and
//!    passes the environment and the working directory.
//! 2. If the cluster has no free slot, srun prints
//!    `srun: job N queued and waiting for resources` on stderr, and
//!    `srun: job N has been allocated resources` when it gets one
//!    ([`LauncherLine::Queued`], [`LauncherLine::Allocated`]). A job that gets
//!    a slot at once prints neither.
//! 3. To cancel (timeout, Ctrl-C, `mdbatch stop`): [`cancel`] with
//!    [`Signal::Term`] — the agent gets a real SIGTERM and srun exits by itself
//!    with the agent's status; after the grace, [`cancel`] with `None` ends the
//!    job (Slurm sends TERM, then KILL after the cluster's `KillWait`).
//!
//! # Pitfalls
//! - Never signal `srun` to cancel. SIGTERM to srun makes it kill the step
//!   with SIGKILL (the agent never sees TERM); a SIGTERM followed by SIGKILL to
//!   srun's process group within seconds leaves the job RUNNING with no step,
//!   forever when the cluster has `InactiveLimit=0`. Only `scancel` is safe.
//! - `scancel --signal=KILL` is not immediate: Slurm turns it into its normal
//!   termination (TERM, `KillWait` seconds, KILL).
//! - `scancel` exits 0 when no job matched; use [`jobs_of_run`] to know.
//! - `squeue -n`/`scancel -n` take comma-separated lists, so job names must
//!   not contain commas: [`job_name`] keeps `[A-Za-z0-9._-]` only.
//! - `srun --quiet` suppresses the queued/allocated lines: don't pass it.
//! - After a cancel, srun may exit 0 (`srun: error: Timed out waiting for job
//!   step to complete`): the runner must trust its own record of cancelling,
//!   not srun's status.
//!

use std::ffi::OsString;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One attempt's Slurm job: its name and the user's `srun` arguments. Set
/// in [`RunContext::launcher`](super::RunContext::launcher) by the executor
/// when a run uses `--launcher slurm`; the process layer then wraps the
/// subagent's command in `srun` and cancels through `scancel`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlurmJob {
    /// The job name ([`job_name`]).
    pub name: String,
    /// Extra `srun` arguments (`--launcher-arg`, `launcher-arg:` hints).
    pub args: Vec<String>,
}

impl SlurmJob {
    /// The job of attempt `attempt` of task `task` in run `run`.
    pub fn new(run: &str, task: &str, attempt: u32, args: Vec<String>) -> Self {
        Self {
            name: job_name(run, task, attempt),
            args,
        }
    }

    /// `argv` wrapped in `srun`, run in `workdir`.
    pub fn wrap(&self, argv: &[String], workdir: Option<&Path>) -> Vec<String> {
        let (program, rest) = match argv.split_first() {
            Some((p, r)) => (p.clone(), r),
            None => return Vec::new(),
        };
        let mut cmd = SrunCommand::new(self.name.clone(), program)
            .args(rest)
            .launcher_args(&self.args);
        if let Some(dir) = workdir {
            cmd = cmd.chdir(dir);
        }
        cmd.argv()
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }
}

/// `srun` arguments mdbatch refuses in `--launcher-arg`, with why.
pub fn refused_launcher_arg(arg: &str) -> Option<&'static str> {
    match arg {
        "-Q" | "--quiet" => {
            Some("it hides the lines that say a job is queued on the cluster and when it starts")
        }
        a if a.starts_with("--job-name") || a == "-J" => {
            Some("mdbatch names each job after its run, task and attempt to cancel it")
        }
        _ => None,
    }
}

/// `srun` options a `launcher-arg:` hint may set, each as `--name=value`:
/// where a job runs and with what resources. Nothing here runs a program,
/// names a file to read or write, changes the folder or the environment, or
/// starts more than one copy of the agent.
const HINT_VALUE_OPTIONS: &[&str] = &[
    "account",
    "begin",
    "clusters",
    "comment",
    "constraint",
    "cores-per-socket",
    "cpu-bind",
    "cpu-freq",
    "cpus-per-gpu",
    "cpus-per-task",
    "deadline",
    "distribution",
    "exclude",
    "gpu-bind",
    "gpu-freq",
    "gpus",
    "gpus-per-node",
    "gpus-per-socket",
    "gpus-per-task",
    "gres",
    "gres-flags",
    "hint",
    "licenses",
    "mem",
    "mem-bind",
    "mem-per-cpu",
    "mem-per-gpu",
    "mincpus",
    "nice",
    "nodelist",
    "partition",
    "qos",
    "reservation",
    "signal",
    "sockets-per-node",
    "switches",
    "threads-per-core",
    "time",
    "time-min",
    "tmp",
    "wckey",
];

/// `srun` flags a `launcher-arg:` hint may give (`--exclusive`, or with a
/// value, `--exclusive=user`).
const HINT_FLAG_OPTIONS: &[&str] = &["contiguous", "exclusive", "overcommit", "oversubscribe"];

/// Why mdbatch refuses `arg` as a `launcher-arg:` hint from the task file,
/// or `None` when it passes it to `srun`.
///
/// The task file is written by agents too, so a hint may only choose where
/// and with what resources a job runs: a long option from a short
/// allowlist (partition, time, CPUs, memory, GPUs, constraints, account,
/// QoS…), its value in the same argument (`--mem=16G`). Everything else is
/// refused — among others `--prolog`/`--epilog`/`--task-prolog`/
/// `--task-epilog` and `--multi-prog` (run programs), `--output`/`--error`/
/// `--input` (write and read files), `--chdir` (leaves the workspace),
/// `--export` (`LD_PRELOAD`, `PATH`), `--bcast` (copies a file to the
/// nodes), `--container`, `--jobid` (another job), `--ntasks`/`--nodes`
/// (more copies of the agent), short options (`-o`) and bare values (which
/// `srun` would take as the program to run). The same options given on the
/// command line (`--launcher-arg`) are the user's own and pass, except
/// those [`refused_launcher_arg`] names.
///
/// ```
/// use batch_core::runner::slurm::refused_launcher_hint;
/// assert!(refused_launcher_hint("--mem=16G").is_none());
/// assert!(refused_launcher_hint("--output=/home/me/.bashrc").is_some());
/// ```
pub fn refused_launcher_hint(arg: &str) -> Option<String> {
    if let Some(why) = refused_launcher_arg(arg) {
        return Some(why.to_string());
    }
    let Some(option) = arg.strip_prefix("--") else {
        return Some(if arg.starts_with('-') {
            "a hint takes long options only; write it as `--name=value`, e.g. `--partition=gpu`"
                .to_string()
        } else {
            "not an option (srun would run it as the program); give an option and its value in \
             one hint, e.g. `--time=30`"
                .to_string()
        });
    };
    let (name, value) = match option.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (option, None),
    };
    if HINT_VALUE_OPTIONS.contains(&name) {
        return match value {
            Some(v) if !v.is_empty() => None,
            _ => Some(format!("give its value in the same hint: `--{name}=VALUE`")),
        };
    }
    if HINT_FLAG_OPTIONS.contains(&name) {
        return None;
    }
    Some(format!(
        "the task file (which agents can write) may only choose where and with what a job runs \
         (`--partition`, `--time`, `--mem`, `--cpus-per-task`, `--gpus`, `--constraint`, …); \
         `--{name}` is taken from the command line only (--launcher-arg)"
    ))
}

/// The prefix of every job name mdbatch submits.
pub const JOB_PREFIX: &str = "mdbatch-";

/// How long [`doctor`] and [`jobs_of_run`] wait for `sinfo`/`squeue`/`scancel`
/// (a cluster whose controller is down makes them retry for a long time).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest job name [`job_name`] produces (Slurm accepts more, but names
/// are for people reading `squeue`).
const MAX_JOB_NAME: usize = 120;

/// An error from the Slurm client tools.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SlurmError {
    /// A Slurm client program is not on `PATH`.
    #[error(
        "slurm launcher: `{program}` not found on PATH; install the Slurm client tools (Debian: slurm-client) or run without --launcher slurm"
    )]
    NotFound {
        /// The program looked for (`srun`, `sinfo`, …).
        program: &'static str,
    },
    /// `SLURM_CONF` names a file that does not exist.
    #[error(
        "slurm launcher: SLURM_CONF names {} which does not exist; point it at the cluster's slurm.conf",
        .path.display()
    )]
    ConfigMissing {
        /// The path in `SLURM_CONF`.
        path: PathBuf,
    },
    /// A client program could not be started or read.
    #[error("slurm launcher: could not run `{program}`: {source}")]
    Spawn {
        /// The program.
        program: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A client program did not finish within [`CLIENT_TIMEOUT`].
    #[error(
        "slurm launcher: `{program}` gave no answer within {} s; is slurmctld running and reachable (check SLURM_CONF, munge)?",
        .after.as_secs()
    )]
    TimedOut {
        /// The program.
        program: &'static str,
        /// How long it was given.
        after: Duration,
    },
    /// A client program failed: usually the cluster does not answer.
    #[error("slurm launcher: `{program}` failed ({status}){}", if .stderr.is_empty() { String::new() } else { format!(": {}", .stderr) })]
    Failed {
        /// The program.
        program: &'static str,
        /// Its exit status.
        status: ExitStatus,
        /// Its last stderr line, trimmed.
        stderr: String,
    },
    /// The partition asked for is not in `sinfo`'s list.
    #[error(
        "slurm launcher: partition `{partition}` does not exist on this cluster (available: {}); pass --launcher-arg=--partition=NAME with one of them",
        .available.join(", ")
    )]
    NoSuchPartition {
        /// The partition asked for.
        partition: String,
        /// The partitions the cluster has.
        available: Vec<String>,
    },
}

/// A signal [`cancel`] asks Slurm to deliver to the job's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    /// SIGTERM: the polite stop; srun exits by itself once the agent does.
    Term,
    /// SIGINT: what a terminal Ctrl-C would send.
    Int,
    /// SIGKILL: Slurm runs its normal termination (TERM, `KillWait`, KILL).
    Kill,
}

impl Signal {
    /// The name `scancel --signal=` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Int => "INT",
            Signal::Kill => "KILL",
        }
    }
}

/// The job name for one attempt: `mdbatch-<run>-<task-slug>-a<attempt>`.
///
/// Every character outside `[A-Za-z0-9._-]` becomes `_` (commas would split
/// `squeue -n` lists; spaces and quotes confuse people's scripts), and the
/// slug is shortened so the whole name stays readable in `squeue`. The run
/// part is kept whole so [`jobs_of_run`] can find every job of a run.
pub fn job_name(run: &str, task_slug: &str, attempt: u32) -> String {
    let run = sanitise(run);
    let mut slug = sanitise(task_slug);
    let suffix = format!("-a{attempt}");
    let fixed = JOB_PREFIX.len() + run.len() + 1 + suffix.len();
    let room = MAX_JOB_NAME.saturating_sub(fixed).max(8);
    if slug.len() > room {
        slug.truncate(room); // ASCII only after sanitise: any index is a char boundary
    }
    if slug.is_empty() {
        slug.push('_');
    }
    format!("{JOB_PREFIX}{run}-{slug}{suffix}")
}

/// The prefix shared by every job name of `run` (what [`jobs_of_run`] takes).
pub fn run_prefix(run: &str) -> String {
    format!("{JOB_PREFIX}{}-", sanitise(run))
}

fn sanitise(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The `srun` command line for one attempt.
///
/// ```
/// use batch_core::runner::slurm::{job_name, SrunCommand};
/// let cmd = SrunCommand::new(job_name("r1", "fix parser", 2), "claude")
///     .args(["-p", "do it"])
///     .launcher_args(["--partition=debug", "--time=30"]);
/// let argv: Vec<String> = cmd.argv().iter().map(|a| a.to_string_lossy().into_owned()).collect();
/// assert_eq!(argv, [
///     "srun", "--job-name=mdbatch-r1-fix_parser-a2", "--ntasks=1", "--nodes=1",
///     "--partition=debug", "--time=30", "--", "claude", "-p", "do it",
/// ]);
/// ```
#[derive(Debug, Clone)]
pub struct SrunCommand {
    srun: OsString,
    job_name: String,
    chdir: Option<PathBuf>,
    launcher_args: Vec<OsString>,
    program: OsString,
    args: Vec<OsString>,
}

impl SrunCommand {
    /// Runs `program` as the single task of a job named `job_name`.
    pub fn new(job_name: impl Into<String>, program: impl Into<OsString>) -> Self {
        SrunCommand {
            srun: "srun".into(),
            job_name: job_name.into(),
            chdir: None,
            launcher_args: Vec::new(),
            program: program.into(),
            args: Vec::new(),
        }
    }

    /// Appends arguments for the program (passed as they are, no shell).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Appends the user's `--launcher-arg`s (partition, time, CPUs, memory…),
    /// placed after mdbatch's own options so a user's `--ntasks` etc. wins.
    pub fn launcher_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.launcher_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Runs the task in `dir` on the node (`--chdir`); without it srun uses
    /// its own working directory, which must exist on the node (a shared
    /// file system).
    pub fn chdir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.chdir = Some(dir.into());
        self
    }

    /// Uses another `srun` executable (a path, or a wrapper).
    pub fn srun_program(mut self, srun: impl Into<OsString>) -> Self {
        self.srun = srun.into();
        self
    }

    /// The job name.
    pub fn job_name(&self) -> &str {
        &self.job_name
    }

    /// The full argv, `srun` first. `--` ends srun's options, so a program
    /// or an argument starting with `-` is never read as one.
    pub fn argv(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![
            self.srun.clone(),
            format!("--job-name={}", self.job_name).into(),
            "--ntasks=1".into(),
            "--nodes=1".into(),
        ];
        if let Some(dir) = &self.chdir {
            let mut a = OsString::from("--chdir=");
            a.push(dir.as_os_str());
            v.push(a);
        }
        v.extend(self.launcher_args.iter().cloned());
        v.push("--".into());
        v.push(self.program.clone());
        v.extend(self.args.iter().cloned());
        v
    }

    /// A [`Command`] for [`argv`](Self::argv); the caller sets stdio, the
    /// process group and the environment as for a local agent.
    pub fn command(&self) -> Command {
        let argv = self.argv();
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    }
}

/// What a line on srun's stderr is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LauncherLine {
    /// Not Slurm's: the agent's own output.
    Agent,
    /// `srun: job N queued and waiting for resources`: the job waits for a
    /// slot; the task is queued, not running.
    Queued {
        /// The Slurm job id.
        job_id: u64,
    },
    /// `srun: job N has been allocated resources`: the task starts now.
    Allocated {
        /// The Slurm job id.
        job_id: u64,
    },
    /// `srun: error: NODE: task 0: Exited with exit code 1` (or `Killed`,
    /// `Terminated`, …): srun's summary of the exit, already known from its
    /// status. Not a failure message.
    TaskExit,
    /// `slurmstepd-NODE: error: execve(): PROG: No such file or directory`:
    /// the program could not be started on the node; this *is* the failure
    /// message to show.
    LaunchFailed {
        /// The message after `error: `.
        message: String,
    },
    /// `srun: error: …` / `srun: fatal: …` other than the exit summary, e.g.
    /// `Unable to allocate resources: Invalid partition name specified`:
    /// when the agent printed nothing, this is the failure message to show.
    SrunError {
        /// The message after `error: ` / `fatal: `.
        message: String,
    },
    /// Any other `srun: …` or `slurmstepd…: …` line (step cancelled, job
    /// step aborted, forcing termination, interrupt notices).
    Launcher,
}

impl LauncherLine {
    /// True for lines that are Slurm's, not the agent's.
    pub fn is_launcher(&self) -> bool {
        !matches!(self, LauncherLine::Agent)
    }
}

/// Classifies one line of srun's stderr (without its newline).
pub fn classify_stderr_line(line: &str) -> LauncherLine {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(rest) = line.strip_prefix("srun: ") {
        if let Some(job) = rest.strip_prefix("job ") {
            let (id, tail) = job.split_once(' ').unwrap_or((job, ""));
            if let Ok(job_id) = id.parse::<u64>() {
                if tail == "queued and waiting for resources" {
                    return LauncherLine::Queued { job_id };
                }
                if tail == "has been allocated resources" {
                    return LauncherLine::Allocated { job_id };
                }
            }
        }
        if let Some(err) = rest.strip_prefix("error: ") {
            // "NODE: task 0: Exited with exit code 1" / "NODE: task 0: Killed"
            let after = err
                .split_once(": task ")
                .or_else(|| err.split_once(": tasks "))
                .map(|(_, after)| after);
            if let Some(after) = after {
                let is_task_summary = after.split_once(": ").is_some_and(|(ids, _)| {
                    ids.chars()
                        .all(|c| c.is_ascii_digit() || c == '-' || c == ',')
                });
                if is_task_summary {
                    return LauncherLine::TaskExit;
                }
            }
            return LauncherLine::SrunError {
                message: err.to_owned(),
            };
        }
        if let Some(fatal) = rest.strip_prefix("fatal: ") {
            return LauncherLine::SrunError {
                message: fatal.to_owned(),
            };
        }
        return LauncherLine::Launcher;
    }
    if let Some(rest) = line.strip_prefix("slurmstepd") {
        // "slurmstepd: …" or "slurmstepd-NODE: …"
        if let Some((who, msg)) = rest.split_once(": ")
            && (who.is_empty() || who.starts_with('-'))
            && !who.contains(' ')
        {
            if let Some(err) = msg.strip_prefix("error: ")
                && err.starts_with("execve(): ")
            {
                return LauncherLine::LaunchFailed {
                    message: err.to_owned(),
                };
            }
            return LauncherLine::Launcher;
        }
    }
    LauncherLine::Agent
}

/// Asks Slurm to end the job named `job_name` (only the caller's own jobs:
/// `--me`). With a signal, delivers it to the job's steps (the agent gets
/// it; srun exits by itself once the agent exits). Without one, cancels the
/// job: this also ends a leaked job whose srun is gone.
///
/// Succeeds when no job of that name exists (scancel says nothing then).
pub fn cancel(job_name: &str, signal: Option<Signal>) -> Result<(), SlurmError> {
    let mut args: Vec<OsString> = vec!["--me".into(), format!("--name={job_name}").into()];
    if let Some(sig) = signal {
        args.push(format!("--signal={}", sig.as_str()).into());
    }
    run_client("scancel", &args, CLIENT_TIMEOUT)?;
    Ok(())
}

/// The caller's jobs whose name starts with `run_prefix` (see
/// [`run_prefix`]), as `(name, state)` pairs, e.g.
/// `("mdbatch-r1-fix-a1", "RUNNING")` or `"PENDING"`, `"COMPLETING"`.
pub fn jobs_of_run(run_prefix: &str) -> Result<Vec<(String, String)>, SlurmError> {
    let out = run_client(
        "squeue",
        &["--me".into(), "--noheader".into(), "--format=%T %j".into()],
        CLIENT_TIMEOUT,
    )?;
    Ok(parse_squeue(&out, run_prefix))
}

fn parse_squeue(out: &str, run_prefix: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let (state, name) = l.trim().split_once(' ')?;
            name.starts_with(run_prefix)
                .then(|| (name.to_owned(), state.to_owned()))
        })
        .collect()
}

/// What [`doctor`] found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DoctorReport {
    /// Where `srun` is.
    pub srun: PathBuf,
    /// The cluster's partitions (`sinfo`), the default one first marked by
    /// [`DoctorReport::default_partition`].
    pub partitions: Vec<String>,
    /// The default partition, if the cluster has one.
    pub default_partition: Option<String>,
}

impl DoctorReport {
    /// One line for `mdbatch doctor`.
    pub fn line(&self) -> String {
        format!(
            "ok: srun at {}, partitions {}{}",
            self.srun.display(),
            self.partitions.join(", "),
            self.default_partition
                .as_deref()
                .map(|d| format!(" (default {d})"))
                .unwrap_or_default()
        )
    }
}

/// Checks the launcher: `srun`, `sinfo`, `squeue` and `scancel` are on
/// `PATH`, `SLURM_CONF` (if set) exists, the cluster answers `sinfo`, and
/// `partition` (if given) is one of its partitions.
pub fn doctor(partition: Option<&str>) -> Result<DoctorReport, SlurmError> {
    let srun = find_on_path("srun").ok_or(SlurmError::NotFound { program: "srun" })?;
    for program in ["sinfo", "squeue", "scancel"] {
        find_on_path(program).ok_or(SlurmError::NotFound { program })?;
    }
    if let Some(conf) = std::env::var_os("SLURM_CONF") {
        let path = PathBuf::from(conf);
        if !path.is_file() {
            return Err(SlurmError::ConfigMissing { path });
        }
    }
    let out = run_client(
        "sinfo",
        &["--noheader".into(), "--format=%P".into()],
        CLIENT_TIMEOUT,
    )?;
    let mut default_partition = None;
    let mut partitions = Vec::new();
    for p in out.lines().map(str::trim).filter(|p| !p.is_empty()) {
        let name = p.strip_suffix('*').unwrap_or(p);
        if p.ends_with('*') {
            default_partition = Some(name.to_owned());
        }
        if !partitions.iter().any(|q| q == name) {
            partitions.push(name.to_owned());
        }
    }
    if let Some(want) = partition
        && !partitions.iter().any(|p| p == want)
    {
        return Err(SlurmError::NoSuchPartition {
            partition: want.to_owned(),
            available: partitions,
        });
    }
    Ok(DoctorReport {
        srun,
        partitions,
        default_partition,
    })
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs a Slurm client with a deadline; returns its stdout.
fn run_client(
    program: &'static str,
    args: &[OsString],
    timeout: Duration,
) -> Result<String, SlurmError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => SlurmError::NotFound { program },
            _ => SlurmError::Spawn { program, source: e },
        })?;
    // Readers on threads so a chatty client cannot block on a full pipe.
    let mut out_pipe = child.stdout.take().expect("stdout was piped");
    let mut err_pipe = child.stderr.take().expect("stderr was piped");
    let out_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        out_pipe.read_to_end(&mut s).map(|_| s)
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        err_pipe.read_to_end(&mut s).map(|_| s)
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if start.elapsed() >= timeout => {
                // Our own child, by its handle: never by name.
                let _ = child.kill();
                let _ = child.wait();
                return Err(SlurmError::TimedOut {
                    program,
                    after: timeout,
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(SlurmError::Spawn { program, source: e }),
        }
    };
    let join = |t: std::thread::JoinHandle<io::Result<Vec<u8>>>| {
        t.join()
            .unwrap_or_else(|_| Err(io::Error::other("reader thread panicked")))
    };
    let out = join(out_t).map_err(|source| SlurmError::Spawn { program, source })?;
    let err = join(err_t).map_err(|source| SlurmError::Spawn { program, source })?;
    if !status.success() {
        let err = String::from_utf8_lossy(&err);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(SlurmError::Failed {
            program,
            status,
            stderr: last.trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Refuses a `launcher-arg:` hint of the document, a section or a task that
/// asks for more than where and with what resources a job runs
/// ([`refused_launcher_hint`]): the task file is written by agents
/// too. `--launcher-arg` on the command line is the user's and free.
pub fn refuse_launcher_hints(
    doc: &crate::Document,
    path: &std::path::Path,
) -> Result<(), crate::error::RunSetupError> {
    let places = std::iter::once((None, &doc.hints))
        .chain(doc.sections.iter().map(|s| (Some(&s.pos), &s.hints)))
        .chain(doc.tasks.iter().map(|t| (Some(&t.pos), &t.hints)));
    for (pos, hints) in places {
        for arg in &hints.launcher_args {
            if let Some(why) = refused_launcher_hint(arg) {
                return Err(crate::error::RunSetupError::RefusedLauncherHint {
                    path: path.to_path_buf(),
                    line: pos.map_or(0, |p| p.line),
                    col: pos.map_or(0, |p| p.col),
                    arg: arg.clone(),
                    why,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launcher_arg_hints_may_choose_resources_but_never_run_programs_or_touch_files() {
        for ok in [
            "--partition=gpu",
            "--time=30",
            "--mem=16G",
            "--cpus-per-task=4",
            "--gpus=1",
            "--constraint=a100",
            "--exclusive",
            "--exclusive=user",
        ] {
            assert_eq!(refused_launcher_hint(ok), None, "{ok}");
        }
        for bad in [
            "--prolog=/tmp/x.sh",
            "--task-prolog=/tmp/x.sh",
            "--epilog=/tmp/x.sh",
            "--task-epilog=/tmp/x.sh",
            "--multi-prog",
            "--output=/home/me/.bashrc",
            "--out=/home/me/.bashrc",
            "--error=/tmp/x",
            "--input=/etc/shadow",
            "--open-mode=append",
            "--chdir=/",
            "--export=ALL,LD_PRELOAD=/tmp/x.so",
            "--bcast=/tmp/x",
            "--container=/tmp/bundle",
            "--jobid=42",
            "--ntasks=100",
            "--nodes=10",
            "-o/tmp/x",
            "-D/",
            "/tmp/evil",
            "--partition",
            "--partition=",
            "--quiet",
            "--job-name=x",
        ] {
            assert!(refused_launcher_hint(bad).is_some(), "{bad}");
        }
        // The user's own command line stays free (but for the two mdbatch needs).
        assert_eq!(refused_launcher_arg("--output=/tmp/log"), None);
        assert_eq!(refused_launcher_arg("--chdir=/scratch"), None);
        assert!(refused_launcher_arg("--quiet").is_some());
        let why = refused_launcher_hint("--output=/tmp/x").unwrap();
        assert!(
            why.contains("--output") && why.contains("--launcher-arg"),
            "{why}"
        );
    }

    #[test]
    fn job_name_names_run_task_and_attempt() {
        assert_eq!(
            job_name("r1", "parse-tables", 3),
            "mdbatch-r1-parse-tables-a3"
        );
    }

    #[test]
    fn job_name_replaces_commas_spaces_and_non_ascii() {
        let n = job_name("run 7", "fix a,b — “quotes”", 1);
        assert_eq!(n, "mdbatch-run_7-fix_a_b____quotes_-a1");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        );
    }

    #[test]
    fn job_name_shortens_long_slugs_but_keeps_run_and_attempt() {
        let n = job_name("r2", &"x".repeat(500), 12);
        assert!(n.len() <= MAX_JOB_NAME, "{} chars", n.len());
        assert!(n.starts_with(&run_prefix("r2")));
        assert!(n.ends_with("-a12"));
    }

    #[test]
    fn job_name_of_empty_slug_is_still_parseable() {
        assert_eq!(job_name("r", "", 1), "mdbatch-r-_-a1");
    }

    #[test]
    fn argv_ends_srun_options_before_the_program() {
        let argv = SrunCommand::new("mdbatch-r-t-a1", "-weird")
            .args(["--help", "a b"])
            .chdir("/work/tree")
            .launcher_args(["-p", "gpu"])
            .argv();
        let argv: Vec<_> = argv.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            argv,
            [
                "srun",
                "--job-name=mdbatch-r-t-a1",
                "--ntasks=1",
                "--nodes=1",
                "--chdir=/work/tree",
                "-p",
                "gpu",
                "--",
                "-weird",
                "--help",
                "a b"
            ]
        );
    }

    #[test]
    fn classifies_the_lines_srun_really_prints() {
        // Copied from srun 22.05 output recorded in NOTES.md.
        use LauncherLine::*;
        let cases = [
            (
                "srun: job 20 queued and waiting for resources",
                Queued { job_id: 20 },
            ),
            (
                "srun: job 20 has been allocated resources",
                Allocated { job_id: 20 },
            ),
            (
                "srun: error: mdbatch-node: task 0: Exited with exit code 75",
                TaskExit,
            ),
            ("srun: error: mdbatch-node: task 0: Killed", TaskExit),
            ("srun: error: mdbatch-node: task 0: Terminated", TaskExit),
            (
                "srun: error: mdbatch-node: task 0: User defined signal 1",
                TaskExit,
            ),
            (
                "srun: error: node-[1-2]: tasks 0-1: Exited with exit code 2",
                TaskExit,
            ),
            ("srun: Force Terminated StepId=6.0", Launcher),
            ("srun: forcing job termination", Launcher),
            (
                "srun: Job step aborted: Waiting up to 32 seconds for job step to finish.",
                Launcher,
            ),
            (
                "srun: error: Timed out waiting for job step to complete",
                SrunError {
                    message: "Timed out waiting for job step to complete".into(),
                },
            ),
            (
                "srun: error: Unable to allocate resources: Invalid partition name specified",
                SrunError {
                    message: "Unable to allocate resources: Invalid partition name specified"
                        .into(),
                },
            ),
            (
                "srun: fatal: Could not establish a configuration source",
                SrunError {
                    message: "Could not establish a configuration source".into(),
                },
            ),
            ("srun: interrupt (one more within 1 sec to abort)", Launcher),
            (
                "slurmstepd-mdbatch-node: error: *** STEP 21.0 ON mdbatch-node CANCELLED AT 2026-11-30T03:25:54 ***",
                Launcher,
            ),
            (
                "slurmstepd-mdbatch-node: error: execve(): nosuchprog: No such file or directory",
                LaunchFailed {
                    message: "execve(): nosuchprog: No such file or directory".into(),
                },
            ),
            ("error: the agent's own error", Agent),
            ("srun:no space is not srun", Agent),
            ("slurmstepd is a word the agent may print: yes", Agent),
            ("Terminated", Agent),
            ("", Agent),
        ];
        for (line, want) in cases {
            assert_eq!(classify_stderr_line(line), want, "line {line:?}");
        }
    }

    #[test]
    fn parse_squeue_keeps_only_the_runs_jobs() {
        let out = "RUNNING mdbatch-r1-a-a1\nPENDING mdbatch-r1-b-a2\nRUNNING mdbatch-r10-a-a1\n\
                   RUNNING someone else's job\nCOMPLETING mdbatch-r1-c-a1\n";
        assert_eq!(
            parse_squeue(out, &run_prefix("r1")),
            [
                ("mdbatch-r1-a-a1".to_owned(), "RUNNING".to_owned()),
                ("mdbatch-r1-b-a2".to_owned(), "PENDING".to_owned()),
                ("mdbatch-r1-c-a1".to_owned(), "COMPLETING".to_owned()),
            ]
        );
    }
}
