//! Background runs: `run --detach` starts one, `wait` follows it to its end,
//! `stop` ends it. Shared by the CLI and the MCP server.
//!
//! A detached run is the same `mdbatch run` re-executed without `--detach`
//! in a session of its own (`setsid`, so a closed terminal or an ended tool
//! call does not signal it), stdin from `/dev/null`, stdout and stderr to a
//! log under the state folder (`.mdbatch/<file>/detached/<ms>.log`). It takes
//! the same lock, writes the same journal and handles SIGINT/SIGTERM as a
//! foreground run does: `stop` sends SIGTERM (graceful: running subagents get
//! TERM and the grace period), a second `stop` or `--now` a second SIGTERM
//! (at once). Its subagents live in process groups it ends itself; after a
//! `kill -9` of it, the lock goes with it and a rerun starts the unfinished
//! tasks again.
//!
//! Which run started is known from the journal: the parent waits until the
//! journal's last run carries the child's pid (or the child exits, and its
//! log says why).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use batch_core::Document;
use batch_core::status::Status;
use batch_core::store::journal::JournalSummary;

/// How long the parent waits for the child's run to show in the journal.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the journal and the lock are looked at while waiting.
const POLL: Duration = Duration::from_millis(100);

/// A detached run that has started.
#[derive(Debug, Clone)]
pub struct Started {
    /// Its run id (as the journal and `status` show it).
    pub run_id: String,
    /// The background mdbatch process.
    pub pid: u32,
    /// Its own output.
    pub log: PathBuf,
}

/// Starts `mdbatch <run_args>` (which must be a `run` without `--detach`)
/// in the background for the task file `file`, from folder `cwd`.
///
/// # Errors
///
/// The file is locked by a run in progress, the child cannot be started, or
/// it ended before its run began (its log's tail is in the message).
pub fn start(file: &Path, cwd: &Path, run_args: &[OsString]) -> anyhow::Result<Started> {
    // Before anything is made beside it: `/dev/null` would get `/dev/.mdbatch`.
    crate::resolve::regular_task_file(file)?;
    let state = batch_core::store::state_dir(file);
    let dir = detached_dir(&state)?;
    if let Some(pid) = batch_core::store::lock::holder(&state)? {
        bail!(
            "{}: a run is in progress already (pid {pid}); follow it with `mdbatch wait`, \
             or end it with `mdbatch stop`",
            file.display()
        );
    }
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let log = dir.join(format!("{ms}.log"));
    let out = new_file(&log, false)
        .with_context(|| format!("{}: cannot create the run's log", log.display()))?;
    let err = out
        .try_clone()
        .with_context(|| format!("{}: cannot open the run's log", log.display()))?;
    let exe = std::env::current_exe().context("cannot find the mdbatch executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(run_args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .env("MDBATCH_DETACHED", "1")
        .env_remove("CLICOLOR_FORCE");
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid(2) is async-signal-safe and touches no memory.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().context("cannot start the background run")?;
    let pid = child.id();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(run) = JournalSummary::load(&state)?.last_run()
            && run.pid == pid
        {
            let run_id = run.run_id.clone();
            reap_later(child);
            return Ok(Started { run_id, pid, log });
        }
        if let Some(status) = child
            .try_wait()
            .context("cannot watch the background run")?
        {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "the background run ended before it started ({status}):\n{}",
                tail.join("\n")
            );
        }
        if Instant::now() >= deadline {
            reap_later(child);
            bail!(
                "the background run (pid {pid}) has not started its run after {}s; see {}",
                START_TIMEOUT.as_secs(),
                log.display()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// `<state>/detached`, made one level at a time (`.mdbatch`, `<file name>`,
/// `detached`), each refused by the core's own check
/// ([`check_state_dir`](batch_core::store::check_state_dir)) when it is a
/// symlink, not a folder, or someone else's, before anything is made inside
/// it: a planted `.mdbatch -> elsewhere` gets nothing written elsewhere.
fn detached_dir(state: &Path) -> anyhow::Result<PathBuf> {
    batch_core::store::make_state_dir(state)?;
    let dir = state.join("detached");
    // `mkdir` never follows a symlink at the name it makes; an existing one
    // is left for the check to refuse.
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("{}: cannot create", dir.display())),
    }
    batch_core::store::check_state_dir(&dir)?;
    Ok(dir)
}

/// Opens `path` for writing without following a symlink at it: made new
/// (`O_EXCL`), or with `truncate`, made or emptied.
fn new_file(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    if truncate {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    o.open(path)
}

/// Reaps the child when it ends, so a long-lived parent (the MCP server)
/// leaves no zombie behind.
fn reap_later(mut child: Child) {
    std::thread::spawn(move || {
        let _ = child.wait();
    });
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitEnd {
    /// No run is in progress (any more).
    Finished,
    /// The timeout came first; the run goes on.
    TimedOut,
}

/// Reads the status of `file` now.
pub fn status_of(file: &Path) -> anyhow::Result<Status> {
    let doc = Document::read(file, &batch_core::ParseOptions::with_path(file))?;
    Ok(Status::read(file, &doc)?)
}

/// Waits until no run of `file` is in progress, or `timeout`; calls
/// `on_change` with each status whose counts differ from the last one.
/// `cancelled` is checked between looks.
pub fn wait(
    file: &Path,
    timeout: Option<Duration>,
    mut on_change: impl FnMut(&Status),
    cancelled: &dyn Fn() -> bool,
) -> anyhow::Result<(WaitEnd, Status)> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut last: Option<(usize, usize, usize)> = None;
    loop {
        let status = status_of(file)?;
        let key = (
            status.done,
            status.failed.len(),
            status.running.as_ref().map_or(0, |r| r.tasks.len()),
        );
        if last != Some(key) {
            on_change(&status);
            last = Some(key);
        }
        if status.running.is_none() {
            return Ok((WaitEnd::Finished, status));
        }
        if cancelled() || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok((WaitEnd::TimedOut, status));
        }
        std::thread::sleep(POLL);
    }
}

/// What `stop` did.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// The run's id, when the journal names it.
    pub run_id: Option<String>,
    /// Its pid.
    pub pid: u32,
    /// Ended at once (`--now`, or a second stop) rather than gracefully.
    pub forced: bool,
}

/// Asks the run in progress on `file` to stop: SIGTERM (graceful); with
/// `now`, or when a stop was asked already, a second one (at once).
///
/// # Errors
///
/// No run is in progress, or its pid is unknown or cannot be signalled.
pub fn stop(file: &Path, now: bool) -> anyhow::Result<Stopped> {
    let state = batch_core::store::state_dir(file);
    let Some(pid) = batch_core::store::lock::holder(&state)? else {
        bail!("{}: no run is in progress", file.display());
    };
    if pid == 0 {
        bail!(
            "{}: a run holds the lock but its pid is unknown; stop it where it runs",
            file.display()
        );
    }
    let run_id = JournalSummary::load(&state)?
        .last_run()
        .filter(|r| r.pid == pid)
        .map(|r| r.run_id.clone());
    // A marker naming the pid says a graceful stop was asked already, so a
    // second `stop` ends the run at once (the run counts the signals).
    let marker = state.join("detached").join("stop-requested");
    let asked_before = std::fs::read_to_string(&marker)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        == Some(pid);
    let signals = if now && !asked_before { 2 } else { 1 };
    for _ in 0..signals {
        let pid_t = libc::pid_t::try_from(pid).context("pid out of range")?;
        // SAFETY: kill(2) with a pid read from our own lock file.
        if unsafe { libc::kill(pid_t, libc::SIGTERM) } != 0 {
            let e = std::io::Error::last_os_error();
            bail!("cannot signal the run (pid {pid}): {e}");
        }
    }
    // Through the same checks as the log: never written through a symlink.
    if detached_dir(&state).is_ok()
        && let Ok(mut f) = new_file(&marker, true)
    {
        use std::io::Write;
        let _ = f.write_all(pid.to_string().as_bytes());
    }
    Ok(Stopped {
        run_id,
        pid,
        forced: now || asked_before,
    })
}

/// One line: "3/4 settled: 2 done, 1 failed, 1 running" for a status.
pub fn summary_line(s: &Status) -> String {
    let total = s.done + s.open;
    let running = s.running.as_ref().map_or(0, |r| r.tasks.len());
    let failed = s.failed.len();
    let mut line = format!(
        "{}/{} done, {} failed, {} running",
        s.done, total, failed, running
    );
    if let Some(u) = &s.totals.usage {
        match u.cost_usd {
            Some(c) => line.push_str(&format!(
                ", spent ${c:.2} ({} tokens)",
                u.input_tokens + u.output_tokens
            )),
            None => line.push_str(&format!(", {} tokens", u.input_tokens + u.output_tokens)),
        }
    }
    line
}
