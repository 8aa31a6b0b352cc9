//! What a runner gets for one attempt besides its task: the progress sink,
//! the cancellation token and its reason, the deadline.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::spec::{Progress, ProgressItem, Stream};
use crate::error::RunError;

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
