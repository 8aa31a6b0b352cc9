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
/// still awaited before its future is dropped (which kills its process group).
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

/// One attempt: the runner under its deadline and the run's cancellation,
/// then the verify command.
pub(super) async fn run_attempt(
    runner: Arc<dyn SubagentRunner>,
    spec: Arc<TaskSpec>,
    ctx: RunContext,
    hard: CancellationToken,
) -> AttemptResult {
    let out = guarded(runner.run(&spec, ctx.clone()), &ctx, &hard).await?;
    if let Some(verify) = &spec.verify {
        guarded(run_verify(verify, &spec, &ctx), &ctx, &hard).await?;
    }
    Ok(out)
}

/// Awaits `fut`; at the deadline or on cancellation fires the runner's token
/// and gives it the grace period (plus a margin) to stop, then drops it.
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
    tokio::select! {
        biased;
        r = &mut fut => match r {
            Ok(out) => Ok(out),
            Err(e) if matches!(e.kind, ErrorKind::Timeout | ErrorKind::Cancelled) => Err(e),
            Err(e) => {
                let mut s = stopped(e.message.clone());
                s.output_tail = e.output_tail;
                s.session_id = e.session_id;
                Err(s)
            }
        },
        _ = hard.cancelled() => Err(RunError::new(ErrorKind::Cancelled, "killed: interrupted twice")),
        _ = tokio::time::sleep(ctx.grace + STOP_MARGIN) => Err(stopped(match reason {
            CancelReason::Timeout => "timed out; the runner did not stop within the grace period".into(),
            _ => "interrupted; the runner did not stop within the grace period".into(),
        })),
    }
}
