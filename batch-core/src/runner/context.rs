//! The data a runner receives and returns.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::RunError;

/// Everything a runner needs to know about one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskSpec {
    /// The task id.
    pub id: String,
    /// The task text (first paragraph).
    pub text: String,
    /// The rest of the list item.
    pub details: String,
    /// Section titles from the outermost heading down.
    pub section_path: Vec<String>,
    /// The document preamble.
    pub preamble: String,
    /// The composed prompt (see [`PromptTemplate`](crate::PromptTemplate)).
    pub prompt: String,
    /// The task file.
    pub task_file: PathBuf,
    /// The folder the subagent runs in.
    pub workdir: PathBuf,
    /// The command to run after success before the box is checked (`verify:` / `--verify`).
    pub verify: Option<String>,
}

impl TaskSpec {
    /// A spec with just an id and text (tests, embedders); everything else empty.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            id: id.into(),
            prompt: text.clone(),
            text,
            details: String::new(),
            section_path: Vec::new(),
            preamble: String::new(),
            task_file: PathBuf::new(),
            workdir: PathBuf::from("."),
            verify: None,
        }
    }
}

/// Token and cost accounting reported by an agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Input (prompt) tokens, cache reads included.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in US dollars, when the agent reports it.
    pub cost_usd: Option<f64>,
    /// Agent turns.
    pub turns: Option<u32>,
}

impl Usage {
    /// Adds another usage to this one.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_usd = match (self.cost_usd, other.cost_usd) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
        self.turns = match (self.turns, other.turns) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
    }
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// `$MDBATCH_PROGRESS_FILE`.
    ProgressFile,
    /// Reported by the runner itself.
    Runner,
}

/// A live progress item from a running subagent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Progress {
    /// A line of output.
    Output {
        /// Where it came from.
        stream: Stream,
        /// The line, without its line end, invalid UTF-8 replaced, overlong lines cut.
        line: String,
    },
    /// The agent called a tool.
    ToolCall {
        /// Tool name (`Write`, `Bash`, `command_execution`, …).
        tool: String,
        /// Its main argument (a path, a command), shortened.
        arg: Option<String>,
    },
    /// Assistant text (shortened).
    Message {
        /// The text.
        text: String,
    },
    /// The agent's session id is known.
    Session {
        /// The id.
        id: String,
    },
    /// The agent retries an API error itself.
    ApiRetry {
        /// Its attempt number.
        attempt: u32,
        /// HTTP status, when known.
        status: Option<u16>,
        /// Its delay before retrying.
        delay_ms: Option<u64>,
        /// The error text.
        error: Option<String>,
    },
    /// Usage reported so far.
    Usage {
        /// The numbers.
        usage: Usage,
    },
    /// The runner changed something for this attempt (a resumed session, more turns, …).
    Adjusted {
        /// What changed, human-readable.
        what: String,
    },
    /// The subagent process started.
    Spawned {
        /// Its pid.
        pid: u32,
    },
}

/// An item sent through a [`ProgressSink`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProgressItem {
    /// The task id.
    pub task_id: String,
    /// The attempt number (1-based).
    pub attempt: u32,
    /// What happened.
    pub progress: Progress,
}

/// Where a runner reports live progress; bound to one task attempt.
///
/// Sending never blocks the runner. In a run, output lines
/// ([`Progress::Output`]) share a bounded budget of queued lines and are
/// dropped (and counted, see [`dropped`](Self::dropped)) when the consumer
/// falls behind; every other item is queued without bound and always arrives,
/// in order. A sink made with [`new`](Self::new) over a caller's bounded
/// channel drops whatever does not fit, output line or not, and counts it.
#[derive(Debug, Clone)]
pub struct ProgressSink {
    task_id: Arc<str>,
    attempt: u32,
    tx: Option<Tx>,
    dropped: Arc<AtomicU64>,
}

#[derive(Debug, Clone)]
enum Tx {
    Bounded(mpsc::Sender<ProgressItem>),
    Run(mpsc::UnboundedSender<ProgressItem>, Arc<LineBudget>),
}

/// How many output lines may wait in a run's progress queue; the receiver
/// gives a line back with [`LineBudget::release`] when it takes one out.
#[derive(Debug)]
pub(crate) struct LineBudget {
    queued: AtomicUsize,
    limit: usize,
}

impl LineBudget {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            queued: AtomicUsize::new(0),
            limit,
        })
    }

    pub(crate) fn take(&self) -> bool {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q < self.limit).then_some(q + 1)
            })
            .is_ok()
    }

    /// Called by the receiver for every output line it takes out.
    pub(crate) fn release(&self) {
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| q.checked_sub(1));
    }
}

impl ProgressSink {
    /// A sink sending to `tx`, a channel the caller reads (tests, a runner
    /// driven outside the executor). Items that do not fit are dropped and
    /// counted.
    pub fn new(task_id: impl Into<Arc<str>>, attempt: u32, tx: mpsc::Sender<ProgressItem>) -> Self {
        Self {
            task_id: task_id.into(),
            attempt,
            tx: Some(Tx::Bounded(tx)),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The executor's sink: unbounded for everything but output lines.
    pub(crate) fn for_run(
        task_id: impl Into<Arc<str>>,
        attempt: u32,
        tx: mpsc::UnboundedSender<ProgressItem>,
        lines: Arc<LineBudget>,
    ) -> Self {
        Self {
            task_id: task_id.into(),
            attempt,
            tx: Some(Tx::Run(tx, lines)),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A sink that discards everything (tests, `--dry-run`).
    pub fn discard() -> Self {
        Self {
            task_id: Arc::from(""),
            attempt: 0,
            tx: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Reports a progress item; never blocks (see the type's docs for what
    /// may be dropped).
    pub fn send(&self, progress: Progress) {
        let Some(tx) = &self.tx else { return };
        let is_line = matches!(progress, Progress::Output { .. });
        let item = ProgressItem {
            task_id: self.task_id.to_string(),
            attempt: self.attempt,
            progress,
        };
        let sent = match tx {
            Tx::Bounded(tx) => tx.try_send(item).is_ok(),
            Tx::Run(tx, lines) => {
                if is_line && !lines.take() {
                    false
                } else if tx.send(item).is_err() {
                    // The run is over: nobody reads any more.
                    if is_line {
                        lines.release();
                    }
                    false
                } else {
                    true
                }
            }
        };
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reports a line of runner output.
    pub fn line(&self, line: impl Into<String>) {
        self.send(Progress::Output {
            stream: Stream::Runner,
            line: line.into(),
        });
    }

    /// How many items were dropped because the consumer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Why a runner's cancellation token fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// The run is being interrupted (Ctrl-C, `mdbatch_run_cancel`, fail-fast).
    Interrupted,
    /// The task reached its deadline.
    Timeout,
}

/// The context of one attempt.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunContext {
    /// 1-based attempt number.
    pub attempt: u32,
    /// The previous attempt's error, so the runner can adjust.
    pub previous_error: Option<RunError>,
    /// Where to report live progress.
    pub progress: ProgressSink,
    /// Fires when the attempt must stop (interrupt or deadline).
    pub cancel: CancellationToken,
    /// When the attempt must end, if it has a timeout.
    pub deadline: Option<tokio::time::Instant>,
    /// How long to wait after SIGTERM before SIGKILL.
    pub grace: Duration,
    /// Where to write the attempt's full output log (`.mdbatch/<file name>/logs/…`).
    pub log_path: Option<PathBuf>,
    /// An agent session to resume (from the journal, with `--resume-sessions`).
    pub resume_session: Option<String>,
    /// Where the subagent's process runs: here (`None`), or as a job step of
    /// a cluster scheduler. The command runner and the presets honour it.
    pub launcher: Option<super::slurm::SlurmJob>,
    reason: Arc<std::sync::Mutex<Option<CancelReason>>>,
}

impl RunContext {
    /// A context for attempt `attempt` with nothing else set.
    pub fn new(attempt: u32, progress: ProgressSink, cancel: CancellationToken) -> Self {
        Self {
            attempt,
            previous_error: None,
            progress,
            cancel,
            deadline: None,
            grace: Duration::from_secs(10),
            log_path: None,
            resume_session: None,
            launcher: None,
            reason: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// Cancels the attempt, recording why.
    pub fn cancel_with(&self, reason: CancelReason) {
        if let Ok(mut r) = self.reason.lock() {
            r.get_or_insert(reason);
        }
        self.cancel.cancel();
    }

    /// Why the token fired (`None` if it has not).
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        if !self.cancel.is_cancelled() {
            return None;
        }
        self.reason
            .lock()
            .ok()
            .and_then(|r| *r)
            .or(Some(CancelReason::Interrupted))
    }
}

/// What a successful attempt returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskOutput {
    /// A one-line summary (the agent's final answer, shortened).
    pub summary: Option<String>,
    /// The agent session, when known.
    pub session_id: Option<String>,
    /// Token and cost accounting, when known.
    pub usage: Option<Usage>,
    /// The last lines of output.
    pub output_tail: Option<String>,
}
