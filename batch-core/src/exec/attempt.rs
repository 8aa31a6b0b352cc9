//! One attempt of one task: the runner under its deadline and the run's
//! cancellation, then the verify step.
//!
//! Each attempt runs as its own tokio task ([`run_attempt`]); the dispatcher
//! holds it as an [`AbortOnDrop`] so that dropping the run aborts it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::task::{JoinError, JoinHandle};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::error::{ErrorKind, RunError};
use crate::plan::NodeIdx;
use crate::runner::verify::run_verify;
use crate::runner::{CancelReason, RunContext, SubagentRunner, TaskOutput, TaskSpec};

/// How long after the grace period a runner that ignores its cancellation is
/// awaited before the attempt says so (it is still awaited after that).
const STOP_MARGIN: Duration = Duration::from_secs(2);

/// A spawned attempt, aborted if dropped before it finished.
pub(super) struct AbortOnDrop<T>(pub(super) JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) type AttemptResult = Result<TaskOutput, RunError>;
pub(super) type AttemptFuture =
    Pin<Box<dyn Future<Output = (NodeIdx, Result<AttemptResult, JoinError>)> + Send>>;
pub(super) type TimerFuture = Pin<Box<dyn Future<Output = NodeIdx> + Send>>;

/// The message of a panic payload.
pub(super) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// One attempt: the runner under its deadline and the run's cancellation,
/// then the verify command.
pub(super) async fn run_attempt(
    runner: Arc<dyn SubagentRunner>,
    spec: Arc<TaskSpec>,
    ctx: RunContext,
    hard: CancellationToken,
) -> AttemptResult {
    if let Some(log) = ctx.log_path.clone() {
        // A log of the same attempt number left by an earlier run.
        let _ = tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_file(&log);
            let _ = std::fs::remove_file(log.with_extension("progress"));
        })
        .await;
    }
    let out = guarded(runner.run(&spec, ctx.clone()), &ctx, &hard).await?;
    if let Some(verify) = &spec.verify {
        guarded(run_verify(verify, &spec, &ctx), &ctx, &hard).await?;
    }
    Ok(out)
}

/// Awaits `fut`; at the deadline or on cancellation fires the runner's token
/// and keeps awaiting it: the attempt ends only when the runner returns (or
/// on a hard kill, which drops it), so a retry never runs beside it.
async fn guarded<F>(fut: F, ctx: &RunContext, hard: &CancellationToken) -> AttemptResult
where
    F: Future<Output = AttemptResult>,
{
    tokio::pin!(fut);
    let far = Instant::now() + Duration::from_secs(86400 * 365 * 10);
    tokio::select! {
        biased;
        r = &mut fut => return r,
        _ = hard.cancelled() => return Err(RunError::new(ErrorKind::Cancelled, "killed: interrupted twice")),
        _ = ctx.cancel.cancelled() => {}
        _ = sleep_until(ctx.deadline.unwrap_or(far)), if ctx.deadline.is_some() => {
            ctx.cancel_with(CancelReason::Timeout);
        }
    }
    let reason = ctx.cancel_reason().unwrap_or(CancelReason::Interrupted);
    let stopped = |message: String| match reason {
        CancelReason::Timeout => RunError::new(ErrorKind::Timeout, message),
        _ => RunError::new(ErrorKind::Cancelled, message),
    };
    let late = |r: AttemptResult| match r {
        Ok(out) => Ok(out),
        Err(e) if matches!(e.kind, ErrorKind::Timeout | ErrorKind::Cancelled) => Err(e),
        Err(e) => {
            let mut s = stopped(e.message.clone());
            s.output_tail = e.output_tail;
            s.session_id = e.session_id;
            Err(s)
        }
    };
    let killed = || RunError::new(ErrorKind::Cancelled, "killed: interrupted twice");
    tokio::select! {
        biased;
        r = &mut fut => return late(r),
        _ = hard.cancelled() => return Err(killed()),
        _ = tokio::time::sleep(ctx.grace + STOP_MARGIN) => {}
    }
    // The runner ignores its cancellation. Its slot stays taken until it
    // returns: dropping its future would not stop work it handed to a thread
    // or another task, and a retry would then run beside it. Only a second
    // interrupt (or dropping the run) gives up on it.
    ctx.progress.line(match reason {
        CancelReason::Timeout => "timed out, but the runner did not stop within the grace period; waiting for it to return",
        _ => "interrupted, but the runner did not stop within the grace period; waiting for it to return (interrupt again to give up on it)",
    });
    tokio::select! {
        biased;
        r = &mut fut => late(r),
        _ = hard.cancelled() => Err(killed()),
    }
}
