//! What a runner gets for one attempt besides its task: the progress sink,
//! the cancellation token and its reason, the deadline.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::spec::{Progress, ProgressItem, Stream};
use crate::error::RunError;

/// Where a runner reports live progress; bound to one task attempt.
///
/// Output lines go through a bounded channel and are dropped (and counted)
/// when the consumer falls behind; other progress items wait for room.
#[derive(Debug, Clone)]
pub struct ProgressSink {
    task_id: Arc<str>,
    attempt: u32,
    tx: Option<mpsc::Sender<ProgressItem>>,
    dropped: Arc<AtomicU64>,
}

impl ProgressSink {
    /// A sink sending to `tx`.
    pub fn new(task_id: impl Into<Arc<str>>, attempt: u32, tx: mpsc::Sender<ProgressItem>) -> Self {
        Self {
            task_id: task_id.into(),
            attempt,
            tx: Some(tx),
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

    /// Reports a progress item. Output lines never block: when the channel is
    /// full they are dropped and counted.
    pub fn send(&self, progress: Progress) {
        let Some(tx) = &self.tx else { return };
        let item = ProgressItem {
            task_id: self.task_id.to_string(),
            attempt: self.attempt,
            progress,
        };
        if tx.try_send(item).is_err() {
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
    /// Where to write the attempt's full output log (`.mdbatch/logs/…`).
    pub log_path: Option<PathBuf>,
    /// An agent session to resume (from the journal, with `--resume-sessions`).
    pub resume_session: Option<String>,
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
