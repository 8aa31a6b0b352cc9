//! The real [`Backend`]: mdbatch's own plan, check, status and logs, and
//! detached runs (see [`crate::cmd::detach`]).

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use batch_core::{Document, ParseOptions, Plan};

use super::backend::{
    Backend, BackendError, Diagnostic, FailureKind, PlanOptions, ProgressSink, RunOptions,
    RunStarted, RunState, RunStatus, Severity, StopOutcome, TaskLog, TaskState, TaskStatus,
    WaitEnd, WaitOutcome, WaitProgress,
};
use crate::cmd::detach;

/// The backend over mdbatch itself.
#[derive(Debug, Default)]
pub struct CoreBackend;

fn other(e: impl std::fmt::Display) -> BackendError {
    BackendError::Other(e.to_string())
}

fn read_doc(file: &Path) -> Result<Document, BackendError> {
    Document::read(file, &ParseOptions::with_path(file)).map_err(|e| match e {
        batch_core::ReadError::Invalid(d) => BackendError::Invalid {
            file: file.to_path_buf(),
            count: d.error_count(),
        },
        e => other(e),
    })
}

fn failure_kind(kind: Option<batch_core::ErrorKind>) -> FailureKind {
    use batch_core::ErrorKind as K;
    match kind {
        Some(K::Transient) => FailureKind::Transient,
        Some(K::Timeout) => FailureKind::Timeout,
        Some(K::ContextOverflow) => FailureKind::ContextOverflow,
        Some(K::TurnLimit) => FailureKind::TurnLimit,
        Some(K::Fatal) => FailureKind::Fatal,
        _ => FailureKind::Failed,
    }
}

/// The status of `file` in the server's terms.
fn run_status(file: &Path, doc: &Document) -> Result<RunStatus, BackendError> {
    let s = batch_core::Status::read(file, doc).map_err(other)?;
    let stopping = s.running.as_ref().is_some_and(|r| {
        let marker = batch_core::store::state_dir(file)
            .join("detached")
            .join("stop-requested");
        std::fs::read_to_string(marker)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            == Some(r.pid)
    });
    let state = match (&s.running, &s.last_run) {
        (Some(_), _) if stopping => RunState::Stopping,
        (Some(_), _) => RunState::Running,
        (None, None) => RunState::NotStarted,
        (None, Some(r)) => match &r.summary {
            Some(sum) if !sum.cancelled => RunState::Finished,
            _ => RunState::Stopped,
        },
    };
    let run_id = s
        .running
        .as_ref()
        .and_then(|r| r.run_id.clone())
        .or_else(|| s.last_run.as_ref().map(|r| r.run_id.clone()));
    let tasks = doc
        .leaves()
        .filter(|t| !t.skip)
        .map(|t| {
            let history = s.tasks.iter().find(|h| h.id == t.id);
            let mut ts = TaskStatus::pending(&t.id, &t.text);
            ts.attempts = history.map_or(0, |h| h.attempts);
            if t.checked {
                ts.state = TaskState::Done;
            } else if s
                .running
                .as_ref()
                .is_some_and(|r| r.tasks.iter().any(|a| a.id == t.id))
            {
                ts.state = TaskState::Running;
            } else if let Some(f) = s.failed.iter().find(|f| f.id == t.id) {
                ts.state = TaskState::Failed;
                ts.failures.push(super::backend::Failure::new(
                    f.attempts,
                    failure_kind(f.kind),
                    f.message.clone().unwrap_or_default(),
                ));
            } else if s.skipped.iter().any(|k| k.id == t.id) {
                ts.state = TaskState::Skipped;
            }
            ts
        })
        .collect();
    let mut status = RunStatus::new(run_id, state, tasks);
    if let Some(u) = &s.totals.usage {
        status.spent_usd = u.cost_usd;
        status.spent_tokens = Some(u.input_tokens + u.output_tokens);
    }
    Ok(status)
}

/// `mdbatch run` arguments for a detached run of `file` with `o`.
fn run_args(file: &Path, o: &RunOptions) -> Result<Vec<OsString>, BackendError> {
    let mut a: Vec<OsString> = vec!["run".into(), file.as_os_str().to_owned()];
    match (&o.agent, &o.cmd) {
        (Some(_), Some(_)) => {
            return Err(other(
                "options.agent and options.cmd: give one of them, not both",
            ));
        }
        (Some(agent), None) => {
            if !["claude", "codex", "gemini", "shell", "demo"].contains(&agent.as_str()) {
                return Err(other(format!(
                    "options.agent: unknown agent `{agent}`; use claude, codex, gemini, shell \
                     or demo, or options.cmd for any other command"
                )));
            }
            a.extend(["--runner".into(), agent.into()]);
        }
        (None, Some(cmd)) => a.extend(["--cmd".into(), cmd.into()]),
        (None, None) => a.extend(["--runner".into(), "claude".into()]),
    }
    if let Some(j) = o.jobs {
        a.extend(["--jobs".into(), j.to_string().into()]);
    }
    if let Some(r) = o.retries {
        a.extend(["--retries".into(), r.to_string().into()]);
    }
    if o.fail_fast == Some(true) {
        a.push("--fail-fast".into());
    }
    if o.cross_wave == Some(true) {
        a.push("--cross-wave".into());
    }
    if let Some(only) = &o.only
        && !only.is_empty()
    {
        a.extend(["--only".into(), only.join(",").into()]);
    }
    if let Some(c) = o.max_cost_usd {
        a.extend(["--max-cost".into(), c.to_string().into()]);
    }
    if let Some(t) = o.max_tokens {
        a.extend(["--max-tokens".into(), t.to_string().into()]);
    }
    if let Some(at) = &o.at_cap {
        a.extend(["--at-cap".into(), at.into()]);
    }
    Ok(a)
}

/// Sets the flag when dropped: a cancelled `wait` request ends its poll.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Backend for CoreBackend {
    fn plan(&self, file: &Path, options: &PlanOptions) -> Result<serde_json::Value, BackendError> {
        let doc = read_doc(file)?;
        let mut po = batch_core::PlanOptions::new();
        if let Some(cw) = options.cross_wave {
            po = po.with_cross_wave(cw);
        }
        if let Some(only) = &options.only {
            po = po.with_only(only);
        }
        let plan = Plan::build(&doc, &po).map_err(other)?;
        let json = batch_core::render_plan(&doc, &plan, batch_core::PlanFormat::Json);
        serde_json::from_str(&json).map_err(other)
    }

    fn check(&self, file: &Path) -> Result<Vec<Diagnostic>, BackendError> {
        let bytes = crate::resolve::read_task_bytes(file).map_err(|source| BackendError::Io {
            path: file.to_path_buf(),
            source,
        })?;
        let (diags, _) = crate::cmd::check::problems(&bytes, &ParseOptions::with_path(file));
        Ok(diags
            .into_iter()
            .map(|d| {
                let severity = if d.is_error() {
                    Severity::Error
                } else {
                    Severity::Warning
                };
                let message = match &d.help {
                    Some(h) => format!("{}; {h}", d.message),
                    None => d.message.clone(),
                };
                Diagnostic::new(
                    severity,
                    u32::try_from(d.line).unwrap_or(u32::MAX),
                    u32::try_from(d.col).unwrap_or(u32::MAX),
                    message,
                )
            })
            .collect())
    }

    fn run(&self, file: &Path, options: &RunOptions) -> Result<RunStarted, BackendError> {
        let doc = read_doc(file)?;
        let status = batch_core::Status::read(file, &doc).map_err(other)?;
        if let Some(r) = &status.running {
            return Err(BackendError::AlreadyRunning {
                file: file.to_path_buf(),
                run_id: r.run_id.clone().unwrap_or_else(|| format!("pid {}", r.pid)),
            });
        }
        let args = run_args(file, options)?;
        let cwd = file.parent().unwrap_or(Path::new("/"));
        let s = detach::start(file, cwd, &args).map_err(|e| other(format!("{e:#}")))?;
        Ok(RunStarted::new(s.run_id, Some(s.pid), Some(s.log)))
    }

    fn status(&self, file: &Path) -> Result<RunStatus, BackendError> {
        run_status(file, &read_doc(file)?)
    }

    fn logs(
        &self,
        file: &Path,
        task: &str,
        attempt: Option<u32>,
        tail: usize,
    ) -> Result<TaskLog, BackendError> {
        let doc = read_doc(file)?;
        if !doc.tasks.iter().any(|t| t.id == task) {
            return Err(BackendError::NoTask {
                file: file.to_path_buf(),
                task: task.to_string(),
            });
        }
        let state = batch_core::store::state_dir(file);
        let first = batch_core::store::log_path(&state, task, 1);
        let attempts = first
            .parent()
            .and_then(|d| std::fs::read_dir(d).ok())
            .map(|entries| {
                entries
                    .filter_map(|e| {
                        e.ok()?
                            .file_name()
                            .to_str()?
                            .strip_suffix(".log")?
                            .parse::<u32>()
                            .ok()
                    })
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        if attempts == 0 {
            return Err(other(format!(
                "{}: task `{task}` has not run yet, so it has no log",
                file.display()
            )));
        }
        let n = attempt.unwrap_or(attempts);
        if n == 0 || n > attempts {
            return Err(BackendError::NoAttempt {
                file: file.to_path_buf(),
                task: task.to_string(),
                attempt: n,
                attempts,
            });
        }
        let path = batch_core::store::log_path(&state, task, n);
        let bytes = std::fs::read(&path).map_err(|source| BackendError::Io { path, source })?;
        Ok(TaskLog::tail_of(
            task,
            n,
            &String::from_utf8_lossy(&bytes),
            tail,
        ))
    }

    async fn wait(
        &self,
        file: &Path,
        timeout: Duration,
        progress: ProgressSink,
    ) -> Result<WaitOutcome, BackendError> {
        let file = file.to_path_buf();
        let flag = Arc::new(AtomicBool::new(false));
        let _guard = CancelOnDrop(flag.clone());
        let join = tokio::task::spawn_blocking(move || {
            // The document is read again at each look: boxes get checked.
            read_doc(&file)?;
            let mut send = |_: &batch_core::Status| {
                if let Ok(rs) = read_doc(&file).and_then(|doc| run_status(&file, &doc)) {
                    progress.send(WaitProgress::of(&rs));
                }
            };
            let (end, _) = detach::wait(&file, Some(timeout), &mut send, &|| {
                flag.load(Ordering::Relaxed)
            })
            .map_err(|e| other(format!("{e:#}")))?;
            let status = run_status(&file, &read_doc(&file)?)?;
            let end = match end {
                detach::WaitEnd::Finished => WaitEnd::Finished,
                detach::WaitEnd::TimedOut => WaitEnd::Timeout,
            };
            Ok(WaitOutcome::new(end, status))
        });
        join.await
            .map_err(|e| other(format!("internal error in `wait`: {e}")))?
    }

    fn stop(&self, file: &Path, now: bool) -> Result<StopOutcome, BackendError> {
        let state = batch_core::store::state_dir(file);
        if batch_core::store::lock::holder(&state)
            .map_err(other)?
            .is_none()
        {
            return Err(BackendError::NoRun {
                file: file.to_path_buf(),
            });
        }
        let s = detach::stop(file, now).map_err(|e| other(format!("{e:#}")))?;
        Ok(StopOutcome::new(
            s.run_id.unwrap_or_else(|| format!("pid {}", s.pid)),
            s.forced,
        ))
    }

    fn journal(&self, file: &Path) -> Result<Option<String>, BackendError> {
        let path =
            batch_core::store::state_dir(file).join(batch_core::store::journal::JOURNAL_FILE);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(BackendError::Io { path, source }),
        }
    }
}
