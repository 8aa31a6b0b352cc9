//! A subagent written in C: `mdbatch_runner` wrapped as a
//! [`SubagentRunner`], and `mdbatch_task_ctx`, its view of one attempt.
//!
//! Each attempt calls the C function on tokio's blocking pool
//! (`spawn_blocking`), so several attempts run at once on different threads
//! and a slow C function never stalls the executor. A C call cannot be
//! interrupted: the run waits for every call to return before
//! `mdbatch_run_file` does (see [`InFlight`]), so `user_data` is never used
//! after the run.

use std::ffi::{CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use batch_core::exec::SCHEMA_VERSION;
use batch_core::runner::CancelReason;
use batch_core::{
    ErrorKind, ProgressSink, RunContext, RunError, SubagentRunner, TaskOutput, TaskSpec,
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::boundary::{ffi_boundary, ffi_fallible, ffi_void, non_null, panic_message};
use crate::error::{Failure, error_kind_from_c, mdbatch_error, mdbatch_error_kind, mdbatch_status};
use crate::strings::{c_string_lossy, opt_str_arg};

/// A subagent written in C: runs one attempt of one task.
///
/// `task_json` is the task as JSON, borrowed for the call:
/// `{"v":1,"attempt":1,"previous_error":null|{"kind":"transient","message":"…"},
/// "id":"T001","text":"…","details":"…","section_path":["…"],"preamble":"…",
/// "prompt":"…","task_file":"…","workdir":"…","verify":null}`.
/// `ctx` is valid until the function returns; use it to report progress,
/// to check for cancellation and to describe a failure.
///
/// Return 0 for success; anything else is a failed attempt (of kind
/// `MDBATCH_ERROR_KIND_FAILED` unless `mdbatch_task_ctx_set_error` said
/// otherwise), retried per the run's options.
///
/// Threads: called on mdbatch's worker threads, never on the thread that
/// called `mdbatch_run_file`, and **possibly from several threads at once**
/// (one call per running task, up to `jobs`): `user_data` must be safe to
/// use concurrently. It must not unwind (no C++ exception, no `longjmp` out
/// of it).
pub type mdbatch_runner_fn = Option<
    unsafe extern "C-unwind" fn(
        user_data: *mut c_void,
        task_json: *const c_char,
        ctx: *mut mdbatch_task_ctx,
    ) -> c_int,
>;

/// A runner written in C: the function and the pointer it is given.
///
/// The struct is copied when a run starts; `user_data` must stay valid until
/// `mdbatch_run_file` returns, which happens only after every call of `run`
/// has returned.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct mdbatch_runner {
    /// Runs one attempt; must not be NULL.
    pub run: mdbatch_runner_fn,
    /// Passed to `run` as its first argument.
    pub user_data: *mut c_void,
}

/// One attempt of one task, as seen by a C runner. Valid only during the
/// `mdbatch_runner_fn` call it was passed to; its functions may be called
/// from any thread during that call (including threads the runner starts).
#[derive(Debug)]
pub struct mdbatch_task_ctx {
    task_id: CString,
    attempt: u32,
    progress: ProgressSink,
    cancel: CancellationToken,
    signal: Arc<CancelSignal>,
    error: Mutex<Option<(ErrorKind, String)>>,
}

/// Wakes threads blocked in `mdbatch_task_ctx_wait_cancelled`.
#[derive(Debug, Default)]
struct CancelSignal {
    fired: Mutex<bool>,
    cv: Condvar,
}

impl CancelSignal {
    fn fire(&self) {
        if let Ok(mut fired) = self.fired.lock() {
            *fired = true;
        }
        self.cv.notify_all();
    }

    /// Waits until fired or `timeout` passes; returns whether it fired.
    fn wait(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        let Ok(mut fired) = self.fired.lock() else {
            return false;
        };
        while !*fired {
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                return false;
            }
            // Bounded steps keep `Instant + timeout` from overflowing for huge timeouts.
            let step = (timeout - elapsed).min(Duration::from_secs(3600));
            match self.cv.wait_timeout(fired, step) {
                Ok((guard, _)) => fired = guard,
                Err(_) => return false,
            }
        }
        true
    }
}

/// Counts C runner calls still executing, so a run never returns (and
/// never lets `user_data` go) while one is.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: Mutex<usize>,
    idle: Condvar,
}

impl InFlight {
    fn enter(self: &Arc<Self>) -> InFlightGuard {
        if let Ok(mut n) = self.count.lock() {
            *n += 1;
        }
        InFlightGuard(Arc::clone(self))
    }

    /// Blocks until no call is executing.
    pub(crate) fn wait_idle(&self) {
        let Ok(mut n) = self.count.lock() else { return };
        while *n > 0 {
            match self.idle.wait(n) {
                Ok(guard) => n = guard,
                Err(_) => return,
            }
        }
    }
}

struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Ok(mut n) = self.0.count.lock() {
            *n = n.saturating_sub(1);
        }
        self.0.idle.notify_all();
    }
}

/// Aborts a tokio task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `user_data` crossing to worker threads.
#[derive(Debug, Clone, Copy)]
struct UserData(*mut c_void);

// SAFETY: the header requires `user_data` to be usable from any thread,
// concurrently; mdbatch only passes it back to the runner.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

impl UserData {
    /// A method (not a field access) so closures capture the whole `Send` wrapper.
    fn get(self) -> *mut c_void {
        self.0
    }
}

type RawRunFn =
    unsafe extern "C-unwind" fn(*mut c_void, *const c_char, *mut mdbatch_task_ctx) -> c_int;

/// An [`mdbatch_runner`] as a [`SubagentRunner`].
pub(crate) struct CRunner {
    run: RawRunFn,
    user_data: UserData,
    in_flight: Arc<InFlight>,
}

impl CRunner {
    /// Wraps `runner`, failing when its function is NULL.
    pub(crate) fn new(runner: &mdbatch_runner, in_flight: Arc<InFlight>) -> Result<Self, Failure> {
        let run = runner.run.ok_or_else(|| Failure::null("runner->run"))?;
        Ok(Self {
            run,
            user_data: UserData(runner.user_data),
            in_flight,
        })
    }
}

#[derive(Serialize)]
struct TaskJson<'a> {
    v: u32,
    attempt: u32,
    previous_error: Option<PreviousError<'a>>,
    #[serde(flatten)]
    task: &'a TaskSpec,
}

#[derive(Serialize)]
struct PreviousError<'a> {
    kind: ErrorKind,
    message: &'a str,
}

/// The task JSON a C runner receives.
pub(crate) fn task_json(task: &TaskSpec, ctx: &RunContext) -> Result<String, serde_json::Error> {
    serde_json::to_string(&TaskJson {
        v: SCHEMA_VERSION,
        attempt: ctx.attempt,
        previous_error: ctx.previous_error.as_ref().map(|e| PreviousError {
            kind: e.kind(),
            message: &e.message,
        }),
        task,
    })
}

#[async_trait]
impl SubagentRunner for CRunner {
    async fn run(&self, task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError> {
        let json = task_json(task, &ctx).map_err(|e| {
            RunError::new(
                ErrorKind::Fatal,
                format!("cannot pass task `{}` to the C runner: {e}", task.id()),
            )
        })?;
        let signal = Arc::new(CancelSignal::default());
        // Aborted when this attempt ends, also when the executor drops it.
        let _watcher = AbortOnDrop({
            let signal = Arc::clone(&signal);
            let token = ctx.cancel.clone();
            tokio::spawn(async move {
                token.cancelled().await;
                signal.fire();
            })
        });
        let c_ctx = mdbatch_task_ctx {
            task_id: c_string_lossy(task.id().to_string()),
            attempt: ctx.attempt,
            progress: ctx.progress.clone(),
            cancel: ctx.cancel.clone(),
            signal,
            error: Mutex::new(None),
        };
        let (run, user_data) = (self.run, self.user_data);
        let guard = self.in_flight.enter();
        let joined = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            let json = c_string_lossy(json);
            let mut c_ctx = c_ctx;
            let ctx_ptr: *mut mdbatch_task_ctx = &mut c_ctx;
            let rc = catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: the runner's contract (header docs); `json` and
                // `c_ctx` outlive the call.
                unsafe { run(user_data.get(), json.as_ptr(), ctx_ptr) }
            }));
            let reported = c_ctx.error.into_inner().ok().flatten();
            (rc.map_err(|p| panic_message(&*p)), reported)
        })
        .await;
        match joined {
            Ok((Ok(0), _)) => Ok(TaskOutput::default()),
            Ok((Ok(_), Some((kind, message)))) => Err(RunError::new(kind, message)),
            Ok((Ok(rc), None)) => Err(match ctx.cancel_reason() {
                Some(CancelReason::Timeout) => RunError::new(
                    ErrorKind::Timeout,
                    format!("the runner stopped at its deadline (returned {rc})"),
                ),
                Some(_) => RunError::new(
                    ErrorKind::Cancelled,
                    format!("the runner stopped on cancellation (returned {rc})"),
                ),
                None => RunError::new(ErrorKind::Failed, format!("the runner returned {rc}")),
            }),
            Ok((Err(panic), _)) => Err(RunError::new(
                ErrorKind::Failed,
                format!("the runner panicked: {panic}"),
            )),
            Err(e) => Err(RunError::new(
                ErrorKind::Failed,
                format!("the runner's thread failed: {e}"),
            )),
        }
    }

    fn name(&self) -> &str {
        "c"
    }
}

/// Reports a live progress line (shown by displays, sent as a
/// `task_progress` event). A string with several lines is reported line by
/// line; invalid UTF-8 is replaced. NULL `ctx` or `line` does nothing.
/// Never blocks: when the consumer falls behind, lines are dropped and counted.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_task_ctx_emit(ctx: *mut mdbatch_task_ctx, line: *const c_char) {
    ffi_void!({
        // SAFETY: NULL or the live context of the current runner call.
        let Some(ctx) = (unsafe { ctx.as_ref() }) else {
            return;
        };
        if line.is_null() {
            return;
        }
        // SAFETY: non-NULL, NUL-terminated per the contract.
        let bytes = unsafe { std::ffi::CStr::from_ptr(line) }.to_bytes();
        let text = String::from_utf8_lossy(bytes);
        for part in text.lines() {
            ctx.progress.line(part.to_string());
        }
    })
}

/// Whether the attempt must stop (the run was cancelled or the task reached
/// its timeout). A runner should check it between steps and return non-zero
/// soon after it turns true. False when `ctx` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_task_ctx_is_cancelled(ctx: *const mdbatch_task_ctx) -> bool {
    ffi_boundary!(false, {
        // SAFETY: NULL or the live context of the current runner call.
        unsafe { ctx.as_ref() }.is_some_and(|ctx| ctx.cancel.is_cancelled())
    })
}

/// Blocks the calling thread until the attempt is cancelled or `timeout_ms`
/// milliseconds pass; returns whether it was cancelled. A runner that waits
/// on something else can call it with a short timeout in its loop; a runner
/// with nothing to do but wait can pass `UINT64_MAX`. False when `ctx` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_task_ctx_wait_cancelled(
    ctx: *const mdbatch_task_ctx,
    timeout_ms: u64,
) -> bool {
    ffi_boundary!(false, {
        // SAFETY: NULL or the live context of the current runner call.
        let Some(ctx) = (unsafe { ctx.as_ref() }) else {
            return false;
        };
        ctx.cancel.is_cancelled() || ctx.signal.wait(Duration::from_millis(timeout_ms))
    })
}

/// Describes why this attempt failed, for the retry policy: `kind` is one
/// of the `MDBATCH_ERROR_KIND_*` values, `message` (UTF-8, may be NULL) a
/// one-line description, copied. Takes effect when the runner returns
/// non-zero (a return of 0 is a success whatever was set); a later call
/// replaces an earlier one.
///
/// Fails with `MDBATCH_STATUS_NULL_ARGUMENT` (NULL `ctx`),
/// `MDBATCH_STATUS_INVALID_ARGUMENT` (unknown `kind`) or
/// `MDBATCH_STATUS_INVALID_UTF8`; nothing is recorded then.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_task_ctx_set_error(
    ctx: *mut mdbatch_task_ctx,
    kind: mdbatch_error_kind,
    message: *const c_char,
) -> mdbatch_status {
    let err: *mut *mut mdbatch_error = std::ptr::null_mut();
    ffi_fallible!(err, {
        let ctx = non_null!(ctx, "ctx");
        let Some(kind) = error_kind_from_c(kind) else {
            return Err(Failure::new(
                mdbatch_status::InvalidArgument,
                format!("unknown mdbatch_error_kind {kind}"),
            ));
        };
        // SAFETY: NULL or NUL-terminated per the contract.
        let message = unsafe { opt_str_arg(message, "message") }?
            .map(str::to_string)
            .unwrap_or_else(|| format!("the runner reported {kind}"));
        // SAFETY: the live context of the current runner call.
        let ctx = unsafe { &*ctx };
        if let Ok(mut slot) = ctx.error.lock() {
            *slot = Some((kind, message));
        }
        Ok(())
    })
}

/// The id of the task being run, borrowed for the duration of the call
/// (also in `task_json`). NULL when `ctx` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_task_ctx_task_id(ctx: *const mdbatch_task_ctx) -> *const c_char {
    ffi_boundary!(std::ptr::null(), {
        // SAFETY: NULL or the live context of the current runner call.
        unsafe { ctx.as_ref() }.map_or(std::ptr::null(), |ctx| ctx.task_id.as_ptr())
    })
}

/// The 1-based attempt number (also in `task_json`); 0 when `ctx` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_task_ctx_attempt(ctx: *const mdbatch_task_ctx) -> u32 {
    ffi_boundary!(0, {
        // SAFETY: NULL or the live context of the current runner call.
        unsafe { ctx.as_ref() }.map_or(0, |ctx| ctx.attempt)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fired_signal_wakes_a_waiter_and_an_unfired_one_times_out() {
        let signal = Arc::new(CancelSignal::default());
        assert!(!signal.wait(Duration::from_millis(1)));
        let waiter = {
            let signal = Arc::clone(&signal);
            std::thread::spawn(move || signal.wait(Duration::from_secs(3600)))
        };
        signal.fire();
        assert!(waiter.join().unwrap());
    }

    #[test]
    fn task_json_carries_the_attempt_and_the_previous_error() {
        let spec = TaskSpec::new("T001", "write it");
        let mut ctx = RunContext::new(2, ProgressSink::discard(), CancellationToken::new());
        ctx.previous_error = Some(RunError::new(ErrorKind::Transient, "slow down"));
        let json: serde_json::Value =
            serde_json::from_str(&task_json(&spec, &ctx).unwrap()).unwrap();
        assert_eq!(json["v"], 1);
        assert_eq!(json["attempt"], 2);
        assert_eq!(json["id"], "T001");
        assert_eq!(json["text"], "write it");
        assert_eq!(json["previous_error"]["kind"], "transient");
        assert_eq!(json["previous_error"]["message"], "slow down");
    }
}
