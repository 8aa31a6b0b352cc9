//! One attempt of one task: the runner under its deadline and the run's
//! cancellation, then the verify step.
//!
//! [`start`] polls a new attempt ([`run_attempt`]) once on the dispatcher's
//! own thread: an attempt done at that poll (an in-process runner, a failure
//! found before anything starts) is handed back at once, with no tokio task,
//! no join handle and no wake-up between threads. Any other attempt goes on
//! as its own tokio task (tokio polls a new task at once, so the future
//! registers that task's waker); the dispatcher holds it as an
//! [`AttemptFuture`] so that dropping the run aborts it.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::task::{JoinError, JoinHandle};
use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;

use crate::error::{ErrorKind, RunError};
use crate::plan::NodeIdx;
use crate::runner::verify::run_verify;
use crate::runner::{
    AttemptHandle, CancelReason, ContextSeed, RunContext, SubagentRunner, TaskOutput, TaskSpec,
};

use super::isolate::{CommitOnly, Isolation, Landing, Recovery, task_message};

/// How long after the grace period a runner that ignores its cancellation is
/// awaited before the attempt says so (it is still awaited after that).
const STOP_MARGIN: Duration = Duration::from_secs(2);

pub(super) type AttemptResult = Result<(TaskOutput, Option<Landing>), RunError>;
type RunnerResult = Result<TaskOutput, RunError>;
/// A spawned attempt of node `i`, resolving to `i` and its result (a named
/// future: no box per attempt); aborted if dropped before it finished.
pub(super) struct AttemptFuture {
    i: NodeIdx,
    handle: JoinHandle<AttemptResult>,
    done: bool,
}

impl AttemptFuture {
    pub(super) fn new(i: NodeIdx, handle: JoinHandle<AttemptResult>) -> Self {
        Self {
            i,
            handle,
            done: false,
        }
    }
}

impl Future for AttemptFuture {
    type Output = (NodeIdx, Result<AttemptResult, JoinError>);
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let i = self.i;
        let r = std::task::ready!(Pin::new(&mut self.handle).poll(cx));
        self.done = true;
        Poll::Ready((i, r))
    }
}

impl Drop for AttemptFuture {
    fn drop(&mut self) {
        if !self.done {
            self.handle.abort();
        }
    }
}

/// What [`start`] made of a new attempt.
pub(super) enum Started {
    /// Done at its first poll (or it panicked there).
    Done(AttemptResult),
    /// Still running, as a tokio task of its own.
    Spawned(JoinHandle<AttemptResult>),
}

/// Polls a new attempt once, here (on the dispatcher's thread, with a waker
/// that does nothing); if it is not done, spawns it, and tokio's first poll
/// of the task registers the task's own waker. A panic at that first poll
/// is reported as a spawned attempt's panic is ([`joined`]).
fn start_here<F>(fut: F) -> Started
where
    F: Future<Output = AttemptResult> + Send + 'static,
{
    let mut fut = Box::pin(fut);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
        Ok(Poll::Ready(r)) => Started::Done(r),
        Ok(Poll::Pending) => Started::Spawned(tokio::spawn(fut)),
        Err(p) => Started::Done(Err(runner_panicked(&*p))),
    }
}

/// The longest run of attempts spawned without a first poll here.
const MAX_SKIP: u32 = 64;

/// Where new attempts get their first poll: on the dispatcher's thread
/// while the run's attempts are done at it (an in-process runner), on the
/// runtime's workers while they are not.
///
/// A runner that is not done at its first poll did its first steps there:
/// for a process, building its command and spawning it, which would hold
/// up the dispatcher (and leave the workers idle) for every launch. So
/// after an attempt not done at its first poll, the next ones are spawned
/// straight away, as many as the number of such attempts in a row (1, 2,
/// 4, … up to [`MAX_SKIP`]) before one is tried here again; an attempt done
/// at its first poll brings every launch back here. A process runner is
/// then tried here about once in 65 attempts, an in-process one always.
#[derive(Debug, Default)]
pub(super) struct FirstPolls {
    /// Attempts still to spawn straight away.
    skip: u32,
    /// How many to skip after the next attempt not done at its first poll.
    backoff: u32,
}

impl FirstPolls {
    /// Starts a new attempt: polled here first, or spawned.
    pub(super) fn start<F>(&mut self, fut: F) -> Started
    where
        F: Future<Output = AttemptResult> + Send + 'static,
    {
        if self.skip > 0 {
            self.skip -= 1;
            return Started::Spawned(tokio::spawn(fut));
        }
        let started = start_here(fut);
        match started {
            Started::Done(_) => self.backoff = 0,
            Started::Spawned(_) => {
                self.backoff = (self.backoff * 2).clamp(1, MAX_SKIP);
                self.skip = self.backoff;
            }
        }
        started
    }
}

/// The result of a spawned attempt's task: a panic or an abort is a
/// failed attempt.
pub(super) fn joined(res: Result<AttemptResult, JoinError>) -> AttemptResult {
    match res {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(runner_panicked(&*e.into_panic())),
        Err(_) => Err(RunError::new(ErrorKind::Failed, "the attempt was aborted")),
    }
}

fn runner_panicked(p: &(dyn std::any::Any + Send)) -> RunError {
    RunError::new(
        ErrorKind::Failed,
        format!("the runner panicked: {}", panic_message(p)),
    )
}

pub(super) type TimerFuture = Pin<Box<dyn Future<Output = NodeIdx> + Send>>;

/// What an attempt needs beyond its runner, spec and context.
pub(super) struct AttemptEnv {
    pub(super) runner: Arc<dyn SubagentRunner>,
    pub(super) hard: CancellationToken,
    /// Worktree isolation, when on, with the run id.
    pub(super) isolation: Option<(Arc<Isolation>, String)>,
    /// `--commit` without isolation, with the run id.
    pub(super) commit: Option<(Arc<CommitOnly>, String)>,
}

/// The message of a panic payload.
pub(super) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// One attempt: the runner under its deadline and the run's cancellation,
/// then the verify command; with isolation, in a worktree of its own, and
/// landed through the merge queue (verify then runs on the merged result).
pub(super) async fn run_attempt(
    env: Arc<AttemptEnv>,
    spec: Arc<TaskSpec>,
    seed: ContextSeed,
) -> AttemptResult {
    // The common case, a runner and nothing else, is a small future (the
    // tokio task is sized for it, and moved when spawned): it holds the
    // seed of the runner's context and a handle on it, the runner the
    // context. Logs, verify and git get a boxed one.
    if seed.log_path().is_none()
        && spec.verify().is_none()
        && env.isolation.is_none()
        && env.commit.is_none()
    {
        let out = guarded(
            env.runner.run(&spec, seed.context()),
            &seed.handle,
            &env.hard,
        )
        .await?;
        return Ok((out, None));
    }
    Box::pin(run_attempt_full(env, spec, seed.context())).await
}

/// [`run_attempt`] with a log, a verify command, isolation or `--commit`.
async fn run_attempt_full(
    env: Arc<AttemptEnv>,
    spec: Arc<TaskSpec>,
    ctx: RunContext,
) -> AttemptResult {
    let AttemptEnv {
        runner,
        hard,
        isolation,
        commit,
    } = &*env;
    let (runner, hard) = (runner.clone(), hard.clone());
    let (isolation, commit) = (isolation.clone(), commit.clone());
    let mut ctx = ctx;
    if let Some(log) = ctx.log_path.clone() {
        // Its folder made (never through a planted symlink) and a log of the
        // same attempt number left by an earlier run removed: about three
        // metadata calls, made here like the spawn that follows (a trip
        // through the blocking pool cost two thread switches per task).
        if let Err(e) = crate::store::prepare_log(&log) {
            ctx.progress.line(format!(
                "{}; this attempt is not logged",
                crate::util::with_causes(&e)
            ));
            ctx.log_path = None;
        }
    }
    let h = ctx.handle();
    let Some((iso, run_id)) = isolation else {
        let out = guarded(runner.run(&spec, ctx.clone()), &h, &hard).await?;
        if let Some(verify) = spec.verify() {
            guarded(run_verify(verify, &spec, &ctx), &h, &hard).await?;
        }
        let Some((commit, run_id)) = commit else {
            return Ok((out, None));
        };
        let message = task_message(
            spec.id(),
            spec.text(),
            commit.task_file_rel(),
            ctx.attempt,
            runner.name(),
            &run_id,
        );
        let landing = match tokio::task::spawn_blocking(move || commit.commit(&message)).await {
            Ok(r) => r?,
            Err(e) => return Err(RunError::new(ErrorKind::Failed, format!("committing: {e}"))),
        };
        return Ok((out, Some(landing)));
    };

    let (id, attempt) = (spec.id().to_string(), ctx.attempt);
    match iso.take_recovery(&id) {
        Some(Recovery::Landed(commit)) => {
            ctx.progress.line(format!(
                "its change landed as {} in the interrupted run: checking its box without running it again",
                &commit[..commit.len().min(10)]
            ));
            let landing = Landing {
                commit: Some(commit),
                checkout_updated: false,
            };
            return Ok((TaskOutput::default(), Some(landing)));
        }
        Some(Recovery::Committed { commit, branch }) => {
            ctx.progress.line(format!(
                "the interrupted run committed its change ({}) but did not land it: landing it now",
                &commit[..commit.len().min(10)]
            ));
            let landed = in_queue(
                iso.clone(),
                spec.clone(),
                &ctx,
                &hard,
                move |iso, verify| iso.land_recovered(&id, &commit, &branch, verify),
            )
            .await;
            match landed {
                Ok(landing) => return Ok((TaskOutput::default(), Some(landing))),
                // It no longer applies: the task runs again, from the new head.
                Err(e) => ctx.progress.line(format!("{e}; running the task again")),
            }
        }
        None => {}
    }
    let id = spec.id().to_string();
    let opened = {
        let iso = iso.clone();
        let id = id.clone();
        tokio::task::spawn_blocking(move || iso.open_worktree(&id, attempt)).await
    };
    let (wt, workdir) = match opened {
        Ok(r) => r?,
        Err(e) => return Err(RunError::new(ErrorKind::Fatal, format!("git: {e}"))),
    };
    ctx.progress.line(format!(
        "worktree {} (branch {})",
        wt.path.display(),
        wt.branch
    ));
    // Its prompt is composed again for the worktree's folder.
    let mut isolated = (*spec).clone().with_workdir(workdir);
    if let Some(note) = ctx
        .previous_error
        .as_ref()
        .and_then(Isolation::conflict_note)
    {
        let prompt = format!("{}\n\n{note}", isolated.prompt());
        isolated = isolated.with_prompt(prompt);
    }
    let isolated = Arc::new(isolated);
    // On failure the worktree stays: kept for inspection when this was the
    // last attempt, removed when the next attempt starts.
    let out = guarded(runner.run(&isolated, ctx.clone()), &h, &hard).await?;
    ctx.progress
        .line("committing the change; queued to land".to_string());
    let message = task_message(
        &id,
        spec.text(),
        iso.task_file_rel(),
        attempt,
        runner.name(),
        &run_id,
    );
    let landing = in_queue(iso, isolated, &ctx, &hard, move |iso, verify| {
        let r = iso.land_blocking(&wt, &message, verify);
        if r.is_ok() {
            iso.landed(&message.task_id);
        }
        r
    })
    .await?;
    Ok((out, Some(landing)))
}

/// Runs `land` (a blocking landing through the queue) on a blocking thread,
/// with a verify step that runs `spec`'s verify command in the folder of
/// the merged result it is given, under the attempt's deadline and
/// cancellation.
async fn in_queue<F>(
    iso: Arc<Isolation>,
    spec: Arc<TaskSpec>,
    ctx: &RunContext,
    hard: &CancellationToken,
    land: F,
) -> Result<Landing, RunError>
where
    F: FnOnce(
            &Isolation,
            &mut dyn FnMut(&std::path::Path) -> Result<(), RunError>,
        ) -> Result<Landing, RunError>
        + Send
        + 'static,
{
    let handle = tokio::runtime::Handle::current();
    let (ctx, hard) = (ctx.clone(), hard.clone());
    let h = ctx.handle();
    let landed = tokio::task::spawn_blocking(move || {
        let mut verify = |dir: &std::path::Path| -> Result<(), RunError> {
            let Some(cmd) = spec.verify() else {
                return Ok(());
            };
            ctx.progress
                .line(format!("verifying the merged result: {cmd}"));
            // In the merged result's folder, with the attempt's prompt.
            let merged = (*spec).clone().with_prompt(spec.prompt()).with_workdir(dir);
            handle
                .block_on(guarded(run_verify(cmd, &merged, &ctx), &h, &hard))
                .map(|_| ())
        };
        land(&iso, &mut verify)
    })
    .await;
    match landed {
        Ok(r) => r,
        Err(e) => Err(RunError::new(ErrorKind::Failed, format!("landing: {e}"))),
    }
}

/// Awaits `fut`; at the deadline or on cancellation fires the runner's token
/// and keeps awaiting it: the attempt ends only when the runner returns (or
/// on a hard kill, which drops it), so a retry never runs beside it.
async fn guarded<F>(fut: F, ctx: &AttemptHandle, hard: &CancellationToken) -> RunnerResult
where
    F: Future<Output = RunnerResult>,
{
    tokio::pin!(fut);
    // A runner that is done at its first poll (an in-process one, a failure
    // found before anything starts) needs no timer and no watch on the
    // tokens: this poll is the one `select!` below would make first. If it
    // is not done, the next poll registers the task's own waker.
    if let Some(r) = futures::FutureExt::now_or_never(fut.as_mut()) {
        return r;
    }
    // A timer only when there is a deadline (boxed: most attempts have none,
    // and a timer would make every attempt's future larger). A cluster
    // job's deadline is the process layer's: time waiting in the cluster's
    // queue does not count against it.
    let deadline = async {
        match ctx.deadline {
            Some(at) if ctx.timed => Box::pin(sleep_until(at)).await,
            _ => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        r = &mut fut => return r,
        _ = hard.cancelled() => return Err(RunError::new(ErrorKind::Cancelled, "killed: interrupted twice")),
        _ = ctx.cancel.cancelled() => {}
        () = deadline => {
            ctx.cancel_with(CancelReason::Timeout);
        }
    }
    Box::pin(stopping(fut, ctx, hard)).await
}

/// The rest of [`guarded`] once the runner's token fired: wait for it
/// through the grace period, then say that it ignores its cancellation.
async fn stopping<F>(
    fut: Pin<&mut F>,
    ctx: &AttemptHandle,
    hard: &CancellationToken,
) -> RunnerResult
where
    F: Future<Output = RunnerResult>,
{
    let mut fut = fut;
    let reason = ctx.cancel_reason().unwrap_or(CancelReason::Interrupted);
    let stopped = |message: String| match reason {
        CancelReason::Timeout => RunError::new(ErrorKind::Timeout, message),
        _ => RunError::new(ErrorKind::Cancelled, message),
    };
    let late = |r: RunnerResult| match r {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> AttemptResult {
        Ok((TaskOutput::default(), None))
    }

    #[tokio::test]
    async fn an_attempt_done_at_its_first_poll_is_not_spawned() {
        assert!(matches!(start_here(async { ok() }), Started::Done(Ok(_))));
    }

    #[tokio::test]
    async fn an_attempt_not_done_at_its_first_poll_finishes_as_a_task_of_its_own() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let started = start_here(async move {
            // Its first poll registers a waker that does nothing; the
            // task's first poll must register the task's own.
            rx.await.expect("sent");
            ok()
        });
        let Started::Spawned(handle) = started else {
            panic!("an attempt still waiting was not spawned");
        };
        tx.send(()).expect("the attempt waits");
        assert!(joined(handle.await).is_ok());
    }

    #[tokio::test]
    async fn a_runner_panicking_at_its_first_poll_or_later_is_the_same_failed_attempt() {
        let Started::Done(at_once) = start_here(async {
            if true {
                panic!("at once");
            }
            ok()
        }) else {
            panic!("a panic at the first poll was spawned");
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let Started::Spawned(handle) = start_here(async move {
            rx.await.expect("sent");
            panic!("later");
        }) else {
            panic!("an attempt still waiting was not spawned");
        };
        tx.send(()).expect("the attempt waits");
        let later = joined(handle.await);
        for (r, what) in [(at_once, "at once"), (later, "later")] {
            let e = r.expect_err("a panic is a failed attempt");
            assert_eq!(e.kind, ErrorKind::Failed);
            assert_eq!(e.message, format!("the runner panicked: {what}"));
        }
    }

    #[tokio::test]
    async fn after_attempts_not_done_at_their_first_poll_the_next_are_spawned_unpolled_for_longer_each_time()
     {
        use std::sync::atomic::{AtomicU32, Ordering};
        // On this test's one thread a spawned task does not run before the
        // test awaits: an attempt polled here shows one poll at once.
        let polls = Arc::new(AtomicU32::new(0));
        let attempt = |done: bool| {
            let polls = polls.clone();
            std::future::poll_fn(move |_| {
                polls.fetch_add(1, Ordering::SeqCst);
                if done {
                    Poll::Ready(ok())
                } else {
                    Poll::Pending
                }
            })
        };
        let mut first = FirstPolls::default();
        let polled_here = |first: &mut FirstPolls, done: bool| {
            let before = polls.load(Ordering::SeqCst);
            let started = first.start(attempt(done));
            if let Started::Spawned(h) = started {
                h.abort();
            }
            polls.load(Ordering::SeqCst) > before
        };
        // An in-process runner: every attempt here.
        assert!((0..5).all(|_| polled_here(&mut first, true)));
        // A process: 1, then 2, then 4 spawned unpolled after each one
        // tried here.
        let seen: Vec<bool> = (0..11).map(|_| polled_here(&mut first, false)).collect();
        let (t, f) = (true, false);
        assert_eq!(seen, [t, f, t, f, f, t, f, f, f, f, t]);
        // One done at its first poll brings every launch back here.
        for _ in 0..8 {
            polled_here(&mut first, false);
        }
        let mut tried = 0;
        while !polled_here(&mut first, true) {
            tried += 1;
        }
        assert!(tried <= MAX_SKIP);
        assert!((0..5).all(|_| polled_here(&mut first, true)));
    }
}
