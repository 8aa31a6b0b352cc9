//! What a runner gets for one attempt besides its task: the progress sink,
//! the cancellation token and its reason, the deadline.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
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
    shared: Arc<Shared>,
}

/// What the clones of a sink share: one allocation per attempt, which also
/// holds the cancel reason of the executor's contexts.
#[derive(Debug)]
struct Shared {
    task_id: Arc<str>,
    attempt: u32,
    tx: Option<Tx>,
    dropped: AtomicU64,
    /// A [`CancelReason`] (coded as in [`Reason`]), for the contexts of
    /// an [`AttemptHandle::for_run`].
    reason: AtomicU8,
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
        Self::with(task_id.into(), attempt, Some(Tx::Bounded(tx)))
    }

    fn with(task_id: Arc<str>, attempt: u32, tx: Option<Tx>) -> Self {
        Self {
            shared: Arc::new(Shared {
                task_id,
                attempt,
                tx,
                dropped: AtomicU64::new(0),
                reason: AtomicU8::new(Reason::NONE),
            }),
        }
    }

    /// The executor's sink: unbounded for everything but output lines.
    pub(crate) fn for_run(
        task_id: Arc<str>,
        attempt: u32,
        tx: mpsc::UnboundedSender<ProgressItem>,
        lines: Arc<LineBudget>,
    ) -> Self {
        Self::with(task_id, attempt, Some(Tx::Run(tx, lines)))
    }

    /// A sink that discards everything (tests, `--dry-run`).
    pub fn discard() -> Self {
        Self::with(Arc::from(""), 0, None)
    }

    /// Reports a progress item; never blocks (see the type's docs for what
    /// may be dropped).
    pub fn send(&self, progress: Progress) {
        let shared = &*self.shared;
        let Some(tx) = &shared.tx else { return };
        let is_line = matches!(progress, Progress::Output { .. });
        let item = ProgressItem {
            task_id: shared.task_id.to_string(),
            attempt: shared.attempt,
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
            shared.dropped.fetch_add(1, Ordering::Relaxed);
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
        self.shared.dropped.load(Ordering::Relaxed)
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
    reason: Reason,
}

/// Where a context's clones keep why its token fired (the first reason
/// given wins).
#[derive(Debug, Clone)]
enum Reason {
    /// A cell of its own ([`RunContext::new`]).
    Own(Arc<AtomicU8>),
    /// In the shared part of the sink it was made with
    /// ([`AttemptHandle::for_run`]): no allocation of its own. Held apart from
    /// [`RunContext::progress`], which a runner may replace.
    InSink(Arc<Shared>),
}

impl Reason {
    const NONE: u8 = 0;
    const INTERRUPTED: u8 = 1;
    const TIMEOUT: u8 = 2;

    fn cell(&self) -> &AtomicU8 {
        match self {
            Reason::Own(cell) => cell,
            Reason::InSink(shared) => &shared.reason,
        }
    }
}

impl RunContext {
    /// A context for attempt `attempt` with nothing else set.
    pub fn new(attempt: u32, progress: ProgressSink, cancel: CancellationToken) -> Self {
        let reason = Reason::Own(Arc::new(AtomicU8::new(Reason::NONE)));
        Self::new_with(attempt, progress, cancel, reason)
    }

    fn new_with(
        attempt: u32,
        progress: ProgressSink,
        cancel: CancellationToken,
        reason: Reason,
    ) -> Self {
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
            reason,
        }
    }

    /// Cancels the attempt, recording why.
    pub fn cancel_with(&self, reason: CancelReason) {
        self.reason.cancel(&self.cancel, reason);
    }

    /// Why the token fired (`None` if it has not).
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.reason.of(&self.cancel)
    }

    /// What the executor keeps of this context while a runner has it.
    pub(crate) fn handle(&self) -> AttemptHandle {
        AttemptHandle {
            cancel: self.cancel.clone(),
            reason: self.reason.clone(),
            progress: self.progress.clone(),
            deadline: self.deadline,
            grace: self.grace,
            timed: self.launcher.is_none(),
        }
    }
}

impl Reason {
    fn cancel(&self, token: &CancellationToken, reason: CancelReason) {
        let code = match reason {
            CancelReason::Timeout => Reason::TIMEOUT,
            CancelReason::Interrupted => Reason::INTERRUPTED,
        };
        let _ =
            self.cell()
                .compare_exchange(Reason::NONE, code, Ordering::AcqRel, Ordering::Acquire);
        token.cancel();
    }

    fn of(&self, token: &CancellationToken) -> Option<CancelReason> {
        if !token.is_cancelled() {
            return None;
        }
        Some(match self.cell().load(Ordering::Acquire) {
            Reason::TIMEOUT => CancelReason::Timeout,
            _ => CancelReason::Interrupted,
        })
    }
}

/// The parts of a [`RunContext`] most attempts leave empty.
#[derive(Debug, Default)]
pub(crate) struct ContextRest {
    pub(crate) previous_error: Option<RunError>,
    pub(crate) log_path: Option<PathBuf>,
    pub(crate) resume_session: Option<String>,
    pub(crate) launcher: Option<super::slurm::SlurmJob>,
}

impl ContextRest {
    /// `None` when every part is empty.
    pub(crate) fn boxed(self) -> Option<Box<Self>> {
        let empty = self.previous_error.is_none()
            && self.log_path.is_none()
            && self.resume_session.is_none()
            && self.launcher.is_none();
        (!empty).then(|| Box::new(self))
    }
}

/// What an attempt's task holds until it makes the runner's
/// [`RunContext`]: a handle and the parts most attempts leave empty,
/// boxed when there are any. A context is large; this keeps the attempt's
/// task small.
#[derive(Debug)]
pub(crate) struct ContextSeed {
    pub(crate) attempt: u32,
    pub(crate) handle: AttemptHandle,
    pub(crate) rest: Option<Box<ContextRest>>,
}

impl ContextSeed {
    /// The log the attempt writes, if any.
    pub(crate) fn log_path(&self) -> Option<&PathBuf> {
        self.rest.as_ref().and_then(|r| r.log_path.as_ref())
    }

    /// The context the runner gets (its clones share the handle's token,
    /// sink and cancel reason).
    pub(crate) fn context(&self) -> RunContext {
        let h = &self.handle;
        let mut ctx = RunContext::new_with(
            self.attempt,
            h.progress.clone(),
            h.cancel.clone(),
            h.reason.clone(),
        );
        ctx.deadline = h.deadline;
        ctx.grace = h.grace;
        if let Some(rest) = &self.rest {
            ctx.previous_error.clone_from(&rest.previous_error);
            ctx.log_path.clone_from(&rest.log_path);
            ctx.resume_session.clone_from(&rest.resume_session);
            ctx.launcher.clone_from(&rest.launcher);
        }
        ctx
    }
}

/// What the executor keeps of an attempt's [`RunContext`] while the runner
/// has the context: enough to stop it, say why, and report on it. Much
/// smaller than a context, so an attempt's task is small.
#[derive(Debug, Clone)]
pub(crate) struct AttemptHandle {
    pub(crate) cancel: CancellationToken,
    reason: Reason,
    pub(crate) progress: ProgressSink,
    pub(crate) deadline: Option<tokio::time::Instant>,
    pub(crate) grace: Duration,
    /// The deadline is the executor's to keep (a cluster job's is the
    /// process layer's: time in the cluster's queue does not count).
    pub(crate) timed: bool,
}

impl AttemptHandle {
    /// The handle of an executor's attempt: its cancel reason lives in
    /// `progress`'s shared part (made for this attempt).
    pub(crate) fn for_run(
        progress: ProgressSink,
        cancel: CancellationToken,
        deadline: Option<tokio::time::Instant>,
        grace: Duration,
        timed: bool,
    ) -> Self {
        Self {
            reason: Reason::InSink(progress.shared.clone()),
            cancel,
            progress,
            deadline,
            grace,
            timed,
        }
    }

    /// As [`RunContext::cancel_with`] on the context.
    pub(crate) fn cancel_with(&self, reason: CancelReason) {
        self.reason.cancel(&self.cancel, reason);
    }

    /// As [`RunContext::cancel_reason`] on the context.
    pub(crate) fn cancel_reason(&self) -> Option<CancelReason> {
        self.reason.of(&self.cancel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempts_context_keeps_the_first_cancel_reason_even_with_a_sink_of_its_runners_own() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let sink = ProgressSink::for_run(Arc::from("a"), 1, tx, LineBudget::new(4));
        let handle =
            AttemptHandle::for_run(sink, CancellationToken::new(), None, Duration::ZERO, true);
        let seed = ContextSeed {
            attempt: 1,
            handle: handle.clone(),
            rest: None,
        };
        let mut ctx = seed.context();
        // A runner that wraps the progress sink still learns why it stops.
        ctx.progress = ProgressSink::discard();
        assert_eq!(ctx.cancel_reason(), None);
        handle.cancel_with(CancelReason::Timeout);
        handle.cancel_with(CancelReason::Interrupted);
        assert!(ctx.cancel.is_cancelled());
        assert_eq!(ctx.cancel_reason(), Some(CancelReason::Timeout));
        assert_eq!(seed.context().cancel_reason(), Some(CancelReason::Timeout));
    }

    #[test]
    fn contexts_made_with_new_from_one_sink_keep_their_reasons_apart() {
        let sink = ProgressSink::discard();
        let one = RunContext::new(1, sink.clone(), CancellationToken::new());
        let two = RunContext::new(2, sink, CancellationToken::new());
        one.cancel_with(CancelReason::Timeout);
        two.cancel_with(CancelReason::Interrupted);
        assert_eq!(one.cancel_reason(), Some(CancelReason::Timeout));
        assert_eq!(two.cancel_reason(), Some(CancelReason::Interrupted));
        // A token cancelled without a reason reads as interrupted.
        let three = RunContext::new(3, ProgressSink::discard(), CancellationToken::new());
        three.cancel.cancel();
        assert_eq!(three.cancel_reason(), Some(CancelReason::Interrupted));
    }
}
