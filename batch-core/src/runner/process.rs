//! Child processes in their own process group: spawn, stream, TERM, KILL.
//!
//! This is the one place that runs subagent processes. The command runner,
//! the agent presets and the executor's `verify` step all go through
//! [`spawn_streaming`]; it is kept stable for them.
//!
//! What it guarantees:
//! - the child is started with `posix_spawn` (no `pre_exec` hook, which would
//!   force a full `fork` of mdbatch: most of the per-task cost at high
//!   `-j`), and registered with the per-run [`reaper`] from this side; the
//!   reaper's docs say how a child is found if mdbatch dies between the
//!   spawn and the registration, and when a fallback hook (and so `fork`)
//!   is used instead;
//! - the child gets its own process group (`setpgid(0, 0)`), stdin is `/dev/null`
//!   (or the given bytes, then closed), no shell is involved: `argv[0]` is
//!   looked up on `PATH` and the other elements reach the child verbatim;
//! - stdout, stderr and the lines appended to an optional progress file are
//!   split into lines (invalid UTF-8 replaced, `\r` dropped, lines longer than
//!   [`MAX_LINE`] cut with `…`) and handed to a callback as they arrive; every
//!   line also goes to the attempt's log file ([`RunContext::log_path`]) and
//!   the last [`TAIL_LINES`] lines are kept in memory for error messages;
//! - when [`RunContext::cancel`] fires or [`RunContext::deadline`] passes, the
//!   whole group gets SIGTERM, then SIGKILL after [`RunContext::grace`];
//! - the attempt ends when the child itself exits: its group is then killed,
//!   so a grandchild that still holds the output pipe open cannot keep the task
//!   alive (output still buffered in the pipe is read, for at most
//!   [`DRAIN_LIMIT`]);
//! - if the future is dropped before the child was reaped (the executor gave up
//!   on it), the group is killed.
//!
//! Pitfalls: a pid is only signalled while we still own it (before it is
//! reaped); the group id is signalled after the leader exits only while its
//! other members keep the id alive, which the kernel guarantees for a
//! non-empty group.

pub(crate) mod group;
pub(crate) mod reaper;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, sleep_until};

use super::{CancelReason, Progress, RunContext, Stream};
use crate::error::{ErrorKind, RunError};

/// Lines longer than this (in bytes) are cut before they reach the callback.
pub(crate) const MAX_LINE: usize = 4096;
/// Lines longer than this are cut in the log file too (the rest is dropped).
const MAX_LOG_LINE: usize = 64 * 1024;
/// How many output lines are kept in memory for the tail.
pub(crate) const TAIL_LINES: usize = super::OUTPUT_TAIL_LINES;
/// The tail is also bounded in bytes.
const TAIL_BYTES: usize = 8 * 1024;
/// How long output left in the pipes is still read after the child exited.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// The first read of each output stream takes at most this many bytes.
const FIRST_READ: usize = 1000;
/// A stream that fills its first read is then read this much at a time.
const READ_BUF: usize = 8192;
/// How often the progress file is checked for new lines.
const PROGRESS_POLL: Duration = Duration::from_millis(100);

/// A process to run: argv, environment, folder.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProcessCommand {
    /// Program and arguments; `argv[0]` is looked up on `PATH`.
    pub(crate) argv: Vec<String>,
    /// Extra environment variables (the parent's environment is inherited).
    pub(crate) env: Vec<(OsString, OsString)>,
    /// The folder to run in (`None`: the current one).
    pub(crate) workdir: Option<PathBuf>,
    /// A file whose appended lines are streamed as [`Stream::ProgressFile`].
    /// Its folder is made if missing; the file itself is the child's to
    /// create (with its first append), so a child that reports no progress
    /// leaves none.
    pub(crate) progress_file: Option<PathBuf>,
    /// Bytes written to the child's stdin, which is then closed (`None`: `/dev/null`).
    pub(crate) stdin: Option<Vec<u8>>,
}

/// How a process ended.
#[derive(Debug, Clone)]
pub(crate) struct ProcessExit {
    /// Its exit status.
    pub(crate) status: ExitStatus,
    /// Set when mdbatch stopped it (cancelled or past its deadline).
    pub(crate) stopped: Option<CancelReason>,
    /// The last lines of output (stdout, stderr and the progress file, interleaved).
    pub(crate) tail: String,
    /// How long it ran.
    pub(crate) elapsed: Duration,
    /// How long it had run when mdbatch stopped it (the timeout, for a
    /// timeout: the time it then took to stop is not part of it).
    pub(crate) stopped_after: Option<Duration>,
}

impl ProcessExit {
    /// The exit code, when it exited normally.
    pub(crate) fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that ended it, if any.
    pub(crate) fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.status.signal()
    }

    /// `exit status 3` / `killed by signal 9`.
    pub(crate) fn describe(&self) -> String {
        match (self.code(), self.signal()) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            (None, None) => "ended without a status".to_string(),
        }
    }

    /// The tail, or `None` when there was no output.
    pub(crate) fn tail_opt(&self) -> Option<String> {
        (!self.tail.is_empty()).then(|| self.tail.clone())
    }

    /// The error for a process that mdbatch stopped, if it did.
    pub(crate) fn stop_error(&self, what: &str) -> Option<RunError> {
        let reason = self.stopped?;
        let (kind, message) = match reason {
            CancelReason::Timeout => (
                ErrorKind::Timeout,
                format!(
                    "{what} timed out after {}",
                    crate::util::format_duration(self.stopped_after.unwrap_or(self.elapsed))
                ),
            ),
            _ => (ErrorKind::Cancelled, format!("{what} was interrupted")),
        };
        Some(RunError::new(kind, message).with_output_tail(self.tail_opt()))
    }
}

/// Runs `cmd` to completion under `ctx`, calling `on_line` for every output line.
///
/// - Sends [`Progress::Spawned`] to `ctx.progress` once the child runs; other
///   progress is up to `on_line` (the command runner forwards lines as
///   [`Progress::Output`], presets parse them).
/// - Writes every line to `ctx.log_path` (created with its folder; a log that
///   cannot be written is reported once as a runner line, never fatal).
/// - Cancellation (`ctx.cancel`) and the deadline (`ctx.deadline`) TERM the
///   group, then KILL it after `ctx.grace`; [`ProcessExit::stopped`] says why.
///
/// Errors only when the process cannot be started: a missing program or one
/// that cannot be executed is [`ErrorKind::Fatal`] (`command not found: X`),
/// anything else [`ErrorKind::Failed`].
pub(crate) async fn spawn_streaming<F>(
    cmd: &ProcessCommand,
    ctx: &RunContext,
    mut on_line: F,
) -> Result<ProcessExit, RunError>
where
    F: FnMut(Stream, &str) + Send,
{
    let Some(program) = cmd.argv.first() else {
        return Err(RunError::new(ErrorKind::Fatal, "empty command"));
    };
    if ctx.cancel.is_cancelled() {
        let kind = match ctx.cancel_reason() {
            Some(CancelReason::Timeout) => ErrorKind::Timeout,
            _ => ErrorKind::Cancelled,
        };
        return Err(RunError::new(
            kind,
            format!("`{program}` was not started: cancelled"),
        ));
    }

    if let Some(e) = too_long(cmd) {
        return Err(e);
    }

    let mut log = LogFile::open(ctx.log_path.as_deref(), ctx);

    if let Some(pf) = &cmd.progress_file {
        // The child creates the file with its first append: creating it
        // here cost a new inode per attempt (on ext4 without a journal,
        // where recently freed inodes are skipped, the largest single cost
        // of a short task), and left an empty file behind per attempt. Only
        // its folder must be there (usually the attempt's `logs/`, made by
        // `store::prepare_log`: one `stat`).
        if let Some(dir) = pf.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            ctx.progress
                .line(format!("cannot create progress file {}: {e}", pf.display()));
        }
    }

    // With a cluster launcher the subagent runs as a Slurm job step: the
    // local child is `srun`, and cancelling goes through `scancel`.
    let slurm = ctx.launcher.clone();
    let argv = match &slurm {
        Some(job) => job.wrap(&cmd.argv, cmd.workdir.as_deref()),
        None => cmd.argv.clone(),
    };
    // Looked up on PATH here, once per program (checked with one `access`
    // per spawn): `posix_spawnp` would try every PATH entry with a failed
    // `execve` each, in the child, while the spawning thread waits.
    let mut command = match resolve_on_path(&argv[0], &cmd.env) {
        Some(path) => {
            let mut c = tokio::process::Command::new(path);
            c.arg0(&argv[0]);
            c
        }
        None => tokio::process::Command::new(&argv[0]),
    };
    command
        .args(&argv[1..])
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &cmd.workdir {
        command.current_dir(dir);
    }
    // Told before the spawn, registered right after (see `reaper`); where
    // that cannot be, the child registers itself or dies with us.
    let spawning = reaper::Spawning::begin(ctx.grace);
    match &spawning {
        Some(s) => {
            let (k, v) = s.env();
            command.env(k, v);
        }
        None => fallback_hooks(&mut command, ctx.grace),
    }

    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| spawn_error(program, cmd.workdir.as_deref(), e))?;
    let pid = child.id().unwrap_or(0);
    if let Some(s) = spawning {
        s.registered(pid);
    }
    let mut guard = GroupGuard {
        pgid: pid,
        armed: pid != 0,
        slurm_job: slurm.as_ref().map(|j| j.name.clone()),
        queue: None,
    };
    ctx.progress.send(Progress::Spawned { pid });

    if let (Some(bytes), Some(mut stdin)) = (cmd.stdin.clone(), child.stdin.take()) {
        // Written by a task of its own so a child that does not read its stdin
        // cannot block us; a broken pipe is the child's business.
        tokio::spawn(async move {
            let _ = stdin.write_all(&bytes).await;
            let _ = stdin.shutdown().await;
        });
    }

    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let mut out_split = LineSplitter::default();
    let mut err_split = LineSplitter::default();
    let mut pf_split = LineSplitter::default();
    let mut pf_reader = cmd
        .progress_file
        .as_ref()
        .map(|p| ProgressFileReader::new(p.clone()));
    let mut tail = Tail::default();
    // Small at first (most subagents print little; a buffer this size comes
    // from malloc's per-thread cache, where 8 KiB of zeroed memory cost a
    // `memset` and a heap consolidation per attempt), grown by a read that
    // fills it.
    let mut obuf = Vec::with_capacity(FIRST_READ);
    let mut ebuf = Vec::with_capacity(FIRST_READ);

    let progress = ctx.progress.clone();
    let on_cluster = slurm.is_some();
    // While the job waits in the cluster's queue it is not running: that
    // time does not count against the timeout, and cancelling it is a plain
    // `scancel` (a signal cannot reach a job that has not started).
    let queue = Arc::new(std::sync::Mutex::new(QueueClock::default()));
    guard.queue = Some(queue.clone());
    let queue_in_emit = queue.clone();
    let mut emit = |stream: Stream, bytes: &[u8], log: &mut LogFile, tail: &mut Tail| {
        let full = String::from_utf8_lossy(bytes);
        log.line(stream, &full);
        if on_cluster && stream == Stream::Stderr {
            // srun's own lines are not the agent's: they say where the job
            // is, and never become the failure message.
            match super::slurm::classify_stderr_line(&full) {
                super::slurm::LauncherLine::Queued { job_id } => {
                    if let Ok(mut q) = queue_in_emit.lock() {
                        q.since.get_or_insert_with(Instant::now);
                    }
                    progress.line(format!(
                        "queued on the cluster (job {job_id}), waiting for a slot"
                    ));
                    return;
                }
                super::slurm::LauncherLine::Allocated { job_id } => {
                    if let Ok(mut q) = queue_in_emit.lock()
                        && let Some(since) = q.since.take()
                    {
                        q.waited += since.elapsed();
                    }
                    progress.line(format!("running on the cluster (job {job_id})"));
                    return;
                }
                super::slurm::LauncherLine::TaskExit | super::slurm::LauncherLine::Launcher => {
                    return;
                }
                _ => {}
            }
        }
        let shown = cut_line(&full, MAX_LINE);
        tail.push(&shown);
        on_line(stream, &shown);
    };

    let mut status: Option<ExitStatus> = None;
    let mut stopped: Option<CancelReason> = None;
    let mut stopped_after: Option<Duration> = None;
    let mut kill_at: Option<Instant> = None;
    let mut killed = false;
    let mut drain_until: Option<Instant> = None;
    // Nothing can have been appended yet: the first look is one period on.
    let mut poll = tokio::time::interval_at(Instant::now() + PROGRESS_POLL, PROGRESS_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let far = Instant::now() + Duration::from_secs(86400 * 365);

    loop {
        if status.is_some() && out.is_none() && err.is_none() {
            break;
        }
        let running = status.is_none();
        tokio::select! {
            biased;
            r = read_some(&mut out, &mut obuf), if out.is_some() => match r {
                Some(()) => out_split.push(&obuf, |l| emit(Stream::Stdout, l, &mut log, &mut tail)),
                None => {
                    out = None;
                    out_split.finish(|l| emit(Stream::Stdout, l, &mut log, &mut tail));
                }
            },
            r = read_some(&mut err, &mut ebuf), if err.is_some() => match r {
                Some(()) => err_split.push(&ebuf, |l| emit(Stream::Stderr, l, &mut log, &mut tail)),
                None => {
                    err = None;
                    err_split.finish(|l| emit(Stream::Stderr, l, &mut log, &mut tail));
                }
            },
            r = child.wait(), if running => {
                match r {
                    Ok(s) => status = Some(s),
                    Err(e) => {
                        guard.kill(libc::SIGKILL);
                        return Err(RunError::new(ErrorKind::Failed, format!("waiting for `{program}`: {e}"))
                            .with_source(e));
                    }
                }
                // The task ends with its process: nothing of its group may outlive it.
                guard.kill(libc::SIGKILL);
                guard.armed = false;
                reaper::unregister(guard.pgid);
                drain_until = Some(Instant::now() + DRAIN_LIMIT);
            },
            _ = ctx.cancel.cancelled(), if running && stopped.is_none() => {
                stopped = Some(ctx.cancel_reason().unwrap_or(CancelReason::Interrupted));
                stopped_after = Some(started.elapsed());
                guard.terminate().await;
                kill_at = Some(Instant::now() + ctx.grace);
            },
            _ = sleep_until(deadline(ctx.deadline, &queue).unwrap_or(far)), if running && stopped.is_none() && ctx.deadline.is_some() => {
                // Still queued on the cluster, the deadline moved on: look again.
                if deadline(ctx.deadline, &queue).is_none_or(|d| d <= Instant::now()) {
                    stopped = Some(CancelReason::Timeout);
                    stopped_after = Some(started.elapsed());
                guard.terminate().await;
                    kill_at = Some(Instant::now() + ctx.grace);
                }
            },
            _ = sleep_until(kill_at.unwrap_or(far)), if running && !killed && kill_at.is_some() => {
                killed = true;
                guard.force().await;
            },
            _ = sleep_until(drain_until.unwrap_or(far)), if drain_until.is_some() => {
                // Something outside the group (it called setsid) still holds the
                // pipe: stop reading, the task is over.
                break;
            },
            _ = poll.tick(), if pf_reader.is_some() => {
                if let Some(reader) = pf_reader.as_mut() {
                    let bytes = reader.read_new();
                    pf_split.push(&bytes, |l| emit(Stream::ProgressFile, l, &mut log, &mut tail));
                }
            },
        }
    }
    out_split.finish(|l| emit(Stream::Stdout, l, &mut log, &mut tail));
    err_split.finish(|l| emit(Stream::Stderr, l, &mut log, &mut tail));
    if let Some(reader) = pf_reader.as_mut() {
        let bytes = reader.read_new();
        pf_split.push(&bytes, |l| {
            emit(Stream::ProgressFile, l, &mut log, &mut tail)
        });
        pf_split.finish(|l| emit(Stream::ProgressFile, l, &mut log, &mut tail));
    }
    log.flush();

    let status = status.expect("the loop only ends after the child was reaped");
    Ok(ProcessExit {
        status,
        stopped,
        tail: tail.text(),
        elapsed: started.elapsed(),
        stopped_after,
    })
}

/// Reads what is there into `buf` (replacing its contents); `None` at the
/// end or on an error. A read that filled `buf` grows it to [`READ_BUF`].
async fn read_some<R: AsyncRead + Unpin>(reader: &mut Option<R>, buf: &mut Vec<u8>) -> Option<()> {
    let r = reader.as_mut()?;
    let grow = buf.len() == buf.capacity() && buf.capacity() < READ_BUF;
    buf.clear();
    if grow {
        buf.reserve_exact(READ_BUF);
    }
    // Into the spare capacity: no zeroing.
    match r.read_buf(buf).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(()),
    }
}

/// `program`'s path on the child's PATH (`env`'s, else ours), or `None` to
/// leave the lookup to the spawn: a name with a `/`, no PATH, a relative
/// PATH entry before a match (it depends on the child's folder), or no
/// match. Found paths are remembered per (PATH, name) and checked again with
/// one `access` per spawn, so a program removed or replaced is looked up
/// anew.
fn resolve_on_path(program: &str, env: &[(OsString, OsString)]) -> Option<PathBuf> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static FOUND: OnceLock<Mutex<HashMap<(OsString, String), PathBuf>>> = OnceLock::new();

    if program.is_empty() || program.contains('/') {
        return None;
    }
    let path_var = match env.iter().rev().find(|(k, _)| k == "PATH") {
        Some((_, v)) => v.clone(),
        None => std::env::var_os("PATH")?,
    };
    let key = (path_var, program.to_string());
    let found = FOUND.get_or_init(Default::default);
    let cached = found.lock().ok().and_then(|m| m.get(&key).cloned());
    if let Some(p) = cached {
        if executable(&p) {
            return Some(p);
        }
        if let Ok(mut m) = found.lock() {
            m.remove(&key);
        }
    }
    for dir in std::env::split_paths(&key.0) {
        if !dir.is_absolute() {
            return None;
        }
        let candidate = dir.join(program);
        if candidate.is_file() && executable(&candidate) {
            if let Ok(mut m) = found.lock() {
                m.insert(key, candidate.clone());
            }
            return Some(candidate);
        }
    }
    None
}

/// Whether `path` may be executed by us (`access(X_OK)`).
fn executable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) reads a NUL-terminated string that outlives the call.
    unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
}

/// The longest single argument or environment string Linux passes to a
/// program (`MAX_ARG_STRLEN`, 32 pages); a longer one makes `execve` fail
/// with E2BIG whatever the total.
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// A [`ErrorKind::Fatal`] error when an argument or environment variable of
/// `cmd` is too long for `execve`: a task text over 128 KiB would otherwise
/// fail with "arguments too long" on every retry.
fn too_long(cmd: &ProcessCommand) -> Option<RunError> {
    let program = cmd.argv.first()?;
    let longest_arg = cmd.argv.iter().map(String::len).max().unwrap_or(0);
    let longest_env = cmd
        .env
        .iter()
        .map(|(k, v)| k.len() + 1 + v.len())
        .max()
        .unwrap_or(0);
    let longest = longest_arg.max(longest_env);
    if longest < MAX_ARG_STRLEN {
        return None;
    }
    Some(RunError::new(
        ErrorKind::Fatal,
        format!(
            "cannot start {program}: the task text is too long to pass to it ({} KiB in one {}; \
             the system allows {} KiB): shorten the task, or put the details in a file the task names",
            longest.div_ceil(1024),
            if longest_arg >= longest_env {
                "argument"
            } else {
                "environment variable"
            },
            MAX_ARG_STRLEN / 1024 - 1
        ),
    ))
}

fn spawn_error(program: &str, workdir: Option<&Path>, e: std::io::Error) -> RunError {
    let (kind, message) = match e.kind() {
        std::io::ErrorKind::NotFound => {
            if let Some(dir) = workdir.filter(|d| !d.is_dir()) {
                (
                    ErrorKind::Fatal,
                    format!("working folder {} does not exist", dir.display()),
                )
            } else {
                (ErrorKind::Fatal, format!("command not found: {program}"))
            }
        }
        std::io::ErrorKind::PermissionDenied => (
            ErrorKind::Fatal,
            format!("cannot execute {program}: permission denied"),
        ),
        // Retrying cannot help: the same text is too long next time.
        std::io::ErrorKind::ArgumentListTooLong => (
            ErrorKind::Fatal,
            format!(
                "cannot start {program}: its arguments and environment are over the system's limit \
                 (the task text is too long to pass on); shorten the task, or put the details in a \
                 file the task names"
            ),
        ),
        _ => (ErrorKind::Failed, format!("cannot start {program}: {e}")),
    };
    RunError::new(kind, message).with_source(e)
}

/// Where the parent cannot register the child with the [`reaper`] (its
/// module docs say when), the child does what it can itself before `exec`.
/// Either hook makes std fork instead of using `posix_spawn`.
///
/// - A reaper runs (not Linux: no `/proc` to find an unregistered child
///   in): the child registers its new process group.
/// - No reaper (no `/bin/sh`), on Linux: the kernel SIGKILLs the child when
///   mdbatch dies (`PR_SET_PDEATHSIG`); its descendants are left to the
///   journal check of the next run.
fn fallback_hooks(command: &mut tokio::process::Command, grace: Duration) {
    #[cfg(not(target_os = "linux"))]
    if let Some(fd) = reaper::fd() {
        let tenths = reaper::tenths(grace);
        // SAFETY: runs in the forked child before exec, after `process_group(0)`
        // made it a group leader; `register_self` only calls getpid and write on
        // stack buffers (async-signal-safe, no allocation, no locks).
        unsafe {
            command.pre_exec(move || {
                reaper::register_self(fd, tenths);
                Ok(())
            });
        }
        return;
    }
    let _ = grace;
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and only calls
        // async-signal-safe functions (prctl, getppid, kill, getpid); it allocates
        // nothing and touches no locks.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl.
                if u32::try_from(libc::getppid()).ok() != Some(parent) {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// Time a cluster job spent waiting for a slot.
#[derive(Debug, Default)]
struct QueueClock {
    /// Since when it waits (it is queued now).
    since: Option<Instant>,
    /// Time it waited before it got its slot.
    waited: Duration,
}

/// The attempt's deadline, pushed back by the time its job waited (and
/// waits) in the cluster's queue.
fn deadline(
    deadline: Option<Instant>,
    queue: &Arc<std::sync::Mutex<QueueClock>>,
) -> Option<Instant> {
    let d = deadline?;
    let q = queue.lock().ok()?;
    let waiting = q.since.map(|s| s.elapsed()).unwrap_or_default();
    // While queued, the deadline keeps moving: check again in a moment.
    Some(
        d + q.waited
            + waiting
            + if q.since.is_some() {
                PROGRESS_POLL
            } else {
                Duration::ZERO
            },
    )
}

/// Signals a process group; disarmed once the leader was reaped and the group killed.
struct GroupGuard {
    pgid: u32,
    armed: bool,
    /// The Slurm job the group's `srun` runs: it is ended through `scancel`
    /// first (signalling `srun` alone can leave the job running with no step).
    slurm_job: Option<String>,
    /// Whether that job still waits in the queue.
    queue: Option<Arc<std::sync::Mutex<QueueClock>>>,
}

impl GroupGuard {
    /// The polite stop: SIGTERM to the group, or a real SIGTERM to the Slurm
    /// job's agent (`srun` then exits by itself).
    async fn terminate(&self) {
        let queued = self
            .queue
            .as_ref()
            .and_then(|q| q.lock().ok().map(|q| q.since.is_some()))
            .unwrap_or(false);
        match &self.slurm_job {
            // Not started yet: nothing to stop politely, the job just goes.
            Some(name) if queued => scancel(name.clone(), None).await,
            Some(name) => scancel(name.clone(), Some(super::slurm::Signal::Term)).await,
            None => self.kill(libc::SIGTERM),
        }
    }

    /// The forced stop after the grace: the Slurm job is cancelled outright
    /// before the local `srun` is killed.
    async fn force(&self) {
        if let Some(name) = &self.slurm_job {
            scancel(name.clone(), None).await;
        }
        self.kill(libc::SIGKILL);
    }

    fn kill(&self, signal: i32) {
        if self.pgid == 0 {
            return;
        }
        let Ok(pgid) = libc::pid_t::try_from(self.pgid) else {
            return;
        };
        // SAFETY: kill(2) takes plain integers and has no memory effects; a
        // negative pid addresses the process group we created at spawn.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            if let Some(name) = &self.slurm_job {
                // Dropped mid-run (a second Ctrl-C): the job goes first.
                let _ = super::slurm::cancel(name, None);
            }
            self.kill(libc::SIGKILL);
            reaper::unregister(self.pgid);
        }
    }
}

/// `scancel` off the runtime's workers; its failure is not the attempt's.
async fn scancel(name: String, signal: Option<super::slurm::Signal>) {
    let _ = tokio::task::spawn_blocking(move || super::slurm::cancel(&name, signal)).await;
}

/// Splits a byte stream into lines, cutting overlong ones.
#[derive(Default)]
pub(crate) struct LineSplitter {
    buf: Vec<u8>,
    /// The current line was already cut: drop bytes up to the next newline.
    skipping: bool,
}

impl LineSplitter {
    /// Feeds bytes; calls `emit` once per complete line (without `\n` / `\r\n`).
    pub(crate) fn push(&mut self, mut bytes: &[u8], mut emit: impl FnMut(&[u8])) {
        while !bytes.is_empty() {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if !self.skipping {
                        self.buf.extend_from_slice(&bytes[..i]);
                        if self.buf.last() == Some(&b'\r') {
                            self.buf.pop();
                        }
                        emit(&self.buf);
                    }
                    self.buf.clear();
                    self.skipping = false;
                    bytes = &bytes[i + 1..];
                }
                None => {
                    if !self.skipping {
                        let room = MAX_LOG_LINE.saturating_sub(self.buf.len());
                        if bytes.len() > room {
                            self.buf.extend_from_slice(&bytes[..room]);
                            emit(&self.buf);
                            self.buf.clear();
                            self.skipping = true;
                        } else {
                            self.buf.extend_from_slice(bytes);
                        }
                    }
                    bytes = &[];
                }
            }
        }
    }

    /// Emits a last line without a line end, if any.
    pub(crate) fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.buf.is_empty() && !self.skipping {
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
            emit(&self.buf);
        }
        self.buf.clear();
        self.skipping = false;
    }
}

/// Cuts `line` to at most `max` bytes on a char boundary, marking the cut with `…`.
pub(crate) fn cut_line(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// The last lines of output, bounded in lines and bytes.
#[derive(Default)]
pub(crate) struct Tail {
    lines: std::collections::VecDeque<String>,
    bytes: usize,
}

impl Tail {
    pub(crate) fn push(&mut self, line: &str) {
        self.bytes += line.len() + 1;
        self.lines.push_back(line.to_string());
        while self.lines.len() > TAIL_LINES || (self.bytes > TAIL_BYTES && self.lines.len() > 1) {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len() + 1;
            }
        }
    }

    pub(crate) fn text(&self) -> String {
        let mut out = String::with_capacity(self.bytes);
        for (i, l) in self.lines.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(l);
        }
        out
    }
}

/// Reads what was appended to a file since the last call.
struct ProgressFileReader {
    path: PathBuf,
    pos: u64,
}

impl ProgressFileReader {
    fn new(path: PathBuf) -> Self {
        Self { path, pos: 0 }
    }

    fn read_new(&mut self) -> Vec<u8> {
        use std::io::{Read, Seek, SeekFrom};
        // One `stat` when nothing was appended (most looks, and every look
        // for a subagent that writes no progress, which never creates the
        // file): the file is opened only to read.
        let Ok(len) = std::fs::metadata(&self.path).map(|m| m.len()) else {
            return Vec::new();
        };
        if len < self.pos {
            // Truncated or replaced: start over.
            self.pos = 0;
        }
        if len == self.pos {
            return Vec::new();
        }
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.pos)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        // At most 1 MiB per poll: a runaway writer cannot stall the loop.
        let _ = Read::by_ref(&mut f).take(1 << 20).read_to_end(&mut buf);
        self.pos += buf.len() as u64;
        buf
    }
}

/// The attempt's log file; failures to write it are reported once, never fatal.
/// A log keeps the first `LOG_HEAD` bytes of an attempt's output as they
/// come, then only the last `LOG_TAIL` bytes, written with a line saying
/// what was cut when the attempt ends: 200 MB of output is not a 200 MB log.
const LOG_HEAD: usize = 16 << 20;
const LOG_TAIL: usize = 1 << 20;

struct LogFile {
    /// Where to log; the file is created with the first line, so an
    /// attempt that prints nothing creates no folder and no file.
    path: Option<PathBuf>,
    file: Option<std::io::BufWriter<std::fs::File>>,
    progress: super::ProgressSink,
    /// Bytes the head may still take.
    head_left: usize,
    tail_cap: usize,
    /// The last lines past the head, as bytes (a ring: no per-line
    /// allocation, so the memory it takes is its cap).
    tail: std::collections::VecDeque<u8>,
    cut_lines: u64,
    cut_bytes: u64,
}

impl LogFile {
    fn open(path: Option<&Path>, ctx: &RunContext) -> Self {
        Self::with_caps(path, ctx.progress.clone(), LOG_HEAD, LOG_TAIL)
    }

    fn with_caps(
        path: Option<&Path>,
        progress: super::ProgressSink,
        head: usize,
        tail: usize,
    ) -> Self {
        Self {
            path: path.map(Path::to_path_buf),
            file: None,
            progress,
            head_left: head,
            tail_cap: tail,
            tail: std::collections::VecDeque::new(),
            cut_lines: 0,
            cut_bytes: 0,
        }
    }

    fn create(&mut self) {
        let Some(p) = self.path.take() else { return };
        let opened = crate::store::make_log_dir(&p).and_then(|()| {
            // Never through a symlink planted where the log goes.
            std::os::unix::fs::OpenOptionsExt::custom_flags(
                std::fs::OpenOptions::new().create(true).append(true),
                libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
            .open(&p)
        });
        match opened {
            Ok(f) => self.file = Some(std::io::BufWriter::new(f)),
            Err(e) => self
                .progress
                .line(format!("cannot write the log {}: {e}", p.display())),
        }
    }

    fn line(&mut self, stream: Stream, line: &str) {
        if self.file.is_none() {
            self.create();
        }
        if self.file.is_none() {
            return;
        }
        let tag = match stream {
            Stream::Stdout => "",
            Stream::Stderr => "[stderr] ",
            Stream::ProgressFile => "[progress] ",
            _ => "[runner] ",
        };
        let full = format!("{tag}{line}\n");
        if full.len() > self.head_left || !self.tail.is_empty() {
            // Past the head: keep the last lines only, written at the end.
            self.head_left = 0;
            if self.tail.capacity() == 0 {
                // Room for the cap and a line, once: grown by doubling, the
                // ring would settle at twice its cap.
                self.tail.reserve_exact(self.tail_cap + (64 << 10));
            }
            self.tail.extend(full.as_bytes());
            while self.tail.len() > self.tail_cap {
                // Drop whole lines from the front.
                let n = self
                    .tail
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(self.tail.len(), |p| p + 1);
                self.tail.drain(..n);
                self.cut_lines += 1;
                self.cut_bytes += n as u64;
            }
            return;
        }
        self.head_left -= full.len();
        let Some(f) = self.file.as_mut() else { return };
        // Flushed per line so `mdbatch logs --follow` sees the attempt live.
        if let Err(e) = f.write_all(full.as_bytes()).and_then(|()| f.flush()) {
            self.progress.line(format!("cannot write the log: {e}"));
            self.file = None;
        }
    }

    /// Writes the kept tail (after a line saying what was cut) and flushes.
    fn flush(&mut self) {
        let Some(f) = self.file.as_mut() else { return };
        if self.cut_lines > 0 {
            let _ = writeln!(
                f,
                "[mdbatch] {} lines ({} bytes) of output cut here: a log keeps the first {} MiB and the last {} MiB",
                self.cut_lines,
                self.cut_bytes,
                LOG_HEAD >> 20,
                LOG_TAIL >> 20
            );
            self.cut_lines = 0;
        }
        let (a, b) = self.tail.as_slices();
        let _ = f.write_all(a).and_then(|()| f.write_all(b));
        self.tail.clear();
        let _ = f.flush();
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        // A cancelled attempt still gets the end of its output.
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |l| out.push(String::from_utf8_lossy(l).into_owned()));
        }
        s.finish(|l| out.push(String::from_utf8_lossy(l).into_owned()));
        out
    }

    #[test]
    fn lines_split_across_chunks_and_crlf_are_joined_and_trimmed() {
        assert_eq!(
            split_all(&[b"ab", b"c\r\nde", b"f\n", b"tail"]),
            ["abc", "def", "tail"]
        );
    }

    #[test]
    fn an_endless_line_is_cut_once_and_the_next_line_survives() {
        let big = vec![b'x'; MAX_LOG_LINE + 10];
        let lines = split_all(&[&big, &big, b"\nnext\n"]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LOG_LINE);
        assert_eq!(lines[1], "next");
    }

    #[test]
    fn programs_are_found_on_the_childs_path_and_paths_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("mdbatch-test-tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let path = |p: &Path| vec![(OsString::from("PATH"), p.as_os_str().to_owned())];
        // Not executable yet: not found (the spawn reports it).
        assert_eq!(
            resolve_on_path("mdbatch-test-tool", &path(dir.path())),
            None
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            resolve_on_path("mdbatch-test-tool", &path(dir.path())),
            Some(tool.clone())
        );
        // Remembered, and looked up anew once it is gone.
        std::fs::remove_file(&tool).unwrap();
        assert_eq!(
            resolve_on_path("mdbatch-test-tool", &path(dir.path())),
            None
        );
        // A name with a slash, or a relative PATH entry first: the spawn decides.
        assert_eq!(
            resolve_on_path("./mdbatch-test-tool", &path(dir.path())),
            None
        );
        let relative = vec![(OsString::from("PATH"), OsString::from("bin:/usr/bin:/bin"))];
        assert_eq!(resolve_on_path("sh", &relative), None);
    }

    #[test]
    fn cut_line_respects_char_boundaries() {
        let s = "é".repeat(10);
        let cut = cut_line(&s, 8);
        assert!(cut.ends_with('…'));
        assert!(cut.len() <= 8);
        assert_eq!(cut_line("short", 8), "short");
    }

    #[test]
    fn the_tail_keeps_the_last_lines_within_bounds() {
        let mut t = Tail::default();
        for i in 0..100 {
            t.push(&format!("line {i}"));
        }
        let text = t.text();
        assert!(text.starts_with(&format!("line {}", 100 - TAIL_LINES)));
        assert!(text.ends_with("line 99"));
        let mut t = Tail::default();
        t.push(&"y".repeat(5000));
        t.push(&"z".repeat(5000));
        assert_eq!(t.text(), "z".repeat(5000));
    }

    #[test]
    fn a_log_keeps_its_head_and_tail_and_says_what_was_cut() {
        let dir = tempfile::tempdir().unwrap();
        // `logs/` is made by the attempt (`store::prepare_log`), the task's
        // folder in it by the log itself.
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        let path = dir.path().join("logs").join("t").join("1.log");
        let mut log =
            LogFile::with_caps(Some(&path), crate::runner::ProgressSink::discard(), 30, 20);
        for i in 0..100 {
            log.line(Stream::Stdout, &format!("line {i:02}"));
        }
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // 8 bytes a line: three in the head, two in the tail, the rest cut.
        assert_eq!(&lines[..3], ["line 00", "line 01", "line 02"]);
        assert!(
            lines[3].starts_with("[mdbatch] 95 lines (760 bytes) of output cut here"),
            "{text}"
        );
        assert_eq!(&lines[4..], ["line 98", "line 99"]);
    }

    #[test]
    fn an_attempt_that_prints_nothing_creates_no_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs").join("t").join("1.log");
        let mut log =
            LogFile::with_caps(Some(&path), crate::runner::ProgressSink::discard(), 30, 20);
        log.flush();
        drop(log);
        assert!(!dir.path().join("logs").exists());
    }
}
