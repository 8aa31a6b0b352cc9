//! Running a task file: `mdbatch_run_file`, `mdbatch_run_file_with_handle`
//! and the run handle that cancels a run from another thread.
//!
//! Threads: the executor runs on a worker thread of its own (with its own
//! tokio runtime); the thread that called `mdbatch_run_file` waits on a
//! channel and calls the event callback for each event, in order, so the
//! callback never runs concurrently with itself and always on the caller's
//! thread. A panic in a (Rust) event callback cancels the run; the run is
//! drained and `MDBATCH_STATUS_PANIC` returned.

use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;

use batch_core::exec::Outcome;
use batch_core::{ExecutorBuilder, RunOptions, RunReport, RunSetupError};
use tokio_util::sync::CancellationToken;

use crate::boundary::{ffi_boundary, ffi_fallible, ffi_void, non_null, panic_message};
use crate::error::{Failure, mdbatch_error, mdbatch_status};
use crate::runner::{CRunner, InFlight, mdbatch_runner};
use crate::strings::{c_string_lossy, opt_str_arg, str_arg};

/// Receives run events as JSON: one envelope per call,
/// `{"v":1,"type":"task_started","seq":3,"ts":"…","run_id":"…","data":{…}}`
/// (the schema of `mdbatch run --json`; ignore unknown types and fields).
/// `event_json` is borrowed for the call.
///
/// Threads: called on the thread that called `mdbatch_run_file`, one call
/// at a time (never concurrently), in event order, before
/// `mdbatch_run_file` returns. It must not unwind (no C++ exception, no
/// `longjmp` out of it).
pub type mdbatch_event_fn =
    Option<unsafe extern "C-unwind" fn(user_data: *mut c_void, event_json: *const c_char)>;

/// Cancels a run from another thread. Create one with
/// `mdbatch_run_handle_new`, pass it to `mdbatch_run_file_with_handle`, call
/// `mdbatch_run_cancel` from any thread, free it with
/// `mdbatch_run_handle_free` after the run has returned.
#[derive(Debug, Default)]
pub struct mdbatch_run_handle {
    token: CancellationToken,
}

/// A new run handle (NULL only if allocation failed). Free it with
/// `mdbatch_run_handle_free`.
#[unsafe(no_mangle)]
pub extern "C" fn mdbatch_run_handle_new() -> *mut mdbatch_run_handle {
    ffi_boundary!(std::ptr::null_mut(), { Box::into_raw(Box::default()) })
}

/// Cancels the run using `handle`, like Ctrl-C in the CLI: no new task or
/// retry starts, running attempts see `mdbatch_task_ctx_is_cancelled` turn
/// true (command runners get SIGTERM, then SIGKILL after the grace period),
/// and the run returns `MDBATCH_STATUS_CANCELLED`. Thread-safe, callable
/// from any thread, any number of times; a cancelled handle stays cancelled
/// (a run started with it returns `MDBATCH_STATUS_CANCELLED` at once,
/// running nothing). Fails only with
/// `MDBATCH_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_run_cancel(handle: *const mdbatch_run_handle) -> mdbatch_status {
    ffi_fallible!(std::ptr::null_mut(), {
        let handle = non_null!(handle, "handle");
        // SAFETY: a live handle from `mdbatch_run_handle_new`.
        unsafe { &*handle }.token.cancel();
        Ok(())
    })
}

/// Frees a run handle. NULL is allowed (does nothing). Free it only after
/// the run using it has returned and no other thread can call
/// `mdbatch_run_cancel` on it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_run_handle_free(handle: *mut mdbatch_run_handle) {
    ffi_void!({
        if !handle.is_null() {
            // SAFETY: a pointer from `mdbatch_run_handle_new`, freed once.
            drop(unsafe { Box::from_raw(handle) });
        }
    })
}

/// Runs the task file at `path` (UTF-8): plans it, runs every unchecked task
/// through `runner`, checks each box in the file as its task succeeds, and
/// returns when the run is over. Blocks the calling thread.
///
/// - `options_json`: NULL (defaults) or a JSON object with the CLI's
///   settings: `jobs`, `retries`, `timeout` (`"90s"`, `"30m"` or seconds),
///   `grace`, `max_wait`, `backoff_base`, `backoff_cap`, `verify`,
///   `fail_fast`, `cross_wave`, `only`, `include_optional`, `dialect`,
///   `wave_level`, `workdir`, `resume_sessions`, `cmd`, `trust_verify`. An unknown key is
///   an error (`MDBATCH_STATUS_INVALID_OPTIONS`).
/// - `runner`: NULL to use the command runner built from options `"cmd"`
///   (a template such as `"claude -p {prompt}"`), or a runner written in C
///   (see `mdbatch_runner_fn` for its threads).
/// - `on_event`: NULL, or called with each event's JSON on this thread, one
///   at a time; `user_data` is passed to it.
///
/// Returns `MDBATCH_STATUS_OK` when every task succeeded,
/// `MDBATCH_STATUS_TASK_FAILED` when the run finished but some task failed
/// or was skipped, or the status of what stopped it (`PARSE_ERROR`, `IO`,
/// `LOCKED`, `INVALID_OPTIONS`, `PANIC`, …), with a message in `*err` when
/// `err` is not NULL. It returns only after every runner call has returned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_run_file(
    path: *const c_char,
    options_json: *const c_char,
    runner: *const mdbatch_runner,
    on_event: mdbatch_event_fn,
    user_data: *mut c_void,
    err: *mut *mut mdbatch_error,
) -> mdbatch_status {
    ffi_fallible!(err, {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            run(
                path,
                options_json,
                runner,
                on_event,
                user_data,
                CancellationToken::new(),
            )
        }
    })
}

/// `mdbatch_run_file` with a handle through which another thread may cancel
/// the run (`mdbatch_run_cancel`); then it returns
/// `MDBATCH_STATUS_CANCELLED` once running attempts have stopped. `handle`
/// must not be NULL and must stay alive until this function returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_run_file_with_handle(
    path: *const c_char,
    options_json: *const c_char,
    runner: *const mdbatch_runner,
    on_event: mdbatch_event_fn,
    user_data: *mut c_void,
    handle: *const mdbatch_run_handle,
    err: *mut *mut mdbatch_error,
) -> mdbatch_status {
    ffi_fallible!(err, {
        let handle = non_null!(handle, "handle");
        // SAFETY: a live handle from `mdbatch_run_handle_new`.
        let token = unsafe { &*handle }.token.clone();
        // SAFETY: forwarded from this function's contract.
        unsafe { run(path, options_json, runner, on_event, user_data, token) }
    })
}

/// What the worker thread sends to the caller's thread.
enum Message {
    Event(String),
    Done(std::thread::Result<Result<RunReport, RunSetupError>>),
}

/// The body of both run functions.
///
/// # Safety
/// The pointer arguments follow `mdbatch_run_file`'s contract.
unsafe fn run(
    path: *const c_char,
    options_json: *const c_char,
    runner: *const mdbatch_runner,
    on_event: mdbatch_event_fn,
    user_data: *mut c_void,
    handle_token: CancellationToken,
) -> Result<(), Failure> {
    // SAFETY: NUL-terminated strings per the contract.
    let path = PathBuf::from(unsafe { str_arg(path, "path") }?);
    // SAFETY: as above.
    let options = parse_run_options(unsafe { opt_str_arg(options_json, "options_json") }?)?;
    if handle_token.is_cancelled() {
        return Err(Failure::new(
            mdbatch_status::Cancelled,
            "the run handle was already cancelled; nothing was run (use a new handle)",
        ));
    }
    let in_flight = Arc::new(InFlight::default());
    // SAFETY: NULL or a valid `mdbatch_runner` per the contract.
    let runner = match unsafe { runner.as_ref() } {
        Some(runner) => Some(CRunner::new(runner, Arc::clone(&in_flight))?),
        None => None,
    };
    // Cancelling the child stops this run (a callback panic) without
    // cancelling the caller's handle.
    let token = handle_token.child_token();
    let (tx, rx) = mpsc::channel::<Message>();
    let worker = {
        let token = token.clone();
        let wants_events = on_event.is_some();
        std::thread::Builder::new()
            .name("mdbatch-run".into())
            .spawn(move || {
                let result = catch_unwind(AssertUnwindSafe(|| {
                    let mut builder = ExecutorBuilder::new(path)
                        .options(options)
                        .cancel_token(token);
                    if let Some(runner) = runner {
                        builder = builder.runner(Arc::new(runner));
                    }
                    if wants_events {
                        let tx = tx.clone();
                        builder = builder.on_event(move |envelope| {
                            // The receiver outlives the run; a send error means it is gone.
                            let _ = tx.send(Message::Event(envelope.to_json()));
                        });
                    }
                    builder.build()?.run_blocking()
                }));
                in_flight.wait_idle();
                let _ = tx.send(Message::Done(result));
            })
            .map_err(|e| {
                Failure::new(
                    mdbatch_status::Internal,
                    format!("cannot start the run thread: {e}"),
                )
            })?
    };

    let mut callback_panic: Option<String> = None;
    let done = loop {
        match rx.recv() {
            Ok(Message::Event(json)) => {
                let Some(callback) = on_event else { continue };
                if callback_panic.is_some() {
                    continue;
                }
                let json = c_string_lossy(json);
                // SAFETY: the caller's callback and its user_data; `json` outlives the call.
                let called = catch_unwind(AssertUnwindSafe(|| unsafe {
                    callback(user_data, json.as_ptr())
                }));
                if let Err(payload) = called {
                    callback_panic = Some(panic_message(&*payload));
                    token.cancel();
                }
            }
            Ok(Message::Done(result)) => break Some(result),
            Err(_) => break None,
        }
    };
    let _ = worker.join();

    if let Some(message) = callback_panic {
        return Err(Failure::new(
            mdbatch_status::Panic,
            format!("the event callback panicked: {message}; the run was cancelled"),
        ));
    }
    match done {
        Some(Ok(Ok(report))) => report_status(&report),
        Some(Ok(Err(setup))) => Err(Failure::setup(&setup)),
        Some(Err(payload)) => Err(Failure::new(
            mdbatch_status::Panic,
            format!(
                "internal error: mdbatch panicked during the run: {}",
                panic_message(&*payload)
            ),
        )),
        None => Err(Failure::new(
            mdbatch_status::Internal,
            "the run thread ended without a result",
        )),
    }
}

/// Parses `options_json` into the run options (NULL = defaults).
pub(crate) fn parse_run_options(json: Option<&str>) -> Result<RunOptions, Failure> {
    match json {
        None => Ok(RunOptions::default()),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            Failure::new(mdbatch_status::InvalidOptions, format!("options_json: {e}"))
        }),
    }
}

/// OK, or why not: cancelled, or which tasks did not succeed.
fn report_status(report: &RunReport) -> Result<(), Failure> {
    let summary = &report.summary;
    let unfinished: Vec<String> = report
        .tasks
        .iter()
        .filter(|t| t.outcome != Outcome::Succeeded)
        .map(|t| {
            let outcome = match t.outcome {
                Outcome::Failed => "failed",
                Outcome::Skipped => "skipped",
                Outcome::Interrupted => "interrupted",
                _ => "did not finish",
            };
            match &t.message {
                Some(message) => format!("{} {outcome}: {message}", t.id),
                None => format!("{} {outcome}", t.id),
            }
        })
        .collect();
    if summary.cancelled {
        return Err(Failure::new(
            mdbatch_status::Cancelled,
            format!(
                "the run was cancelled: {} of {} tasks succeeded, {} interrupted, {} skipped",
                summary.succeeded, summary.total, summary.interrupted, summary.skipped
            ),
        ));
    }
    if summary.failed + summary.skipped + summary.interrupted > 0 || !unfinished.is_empty() {
        return Err(Failure::new(
            mdbatch_status::TaskFailed,
            format!(
                "{} of {} tasks succeeded; {}",
                summary.succeeded,
                summary.total,
                unfinished.join("; ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_options_accept_the_cli_settings_and_reject_unknown_keys() {
        let options = parse_run_options(Some(
            r#"{"jobs":2,"cross_wave":true,"retries":1,"timeout":"90s","grace":"2s","cmd":"true","dialect":"kiro","wave_level":2,"fail_fast":true}"#,
        ))
        .unwrap();
        assert_eq!(options.jobs, Some(2));
        assert_eq!(options.timeout, Some(std::time::Duration::from_secs(90)));
        assert!(options.fail_fast);
        let err = parse_run_options(Some(r#"{"job":2}"#)).unwrap_err();
        assert_eq!(err.status, mdbatch_status::InvalidOptions);
        assert!(
            err.message.contains("unknown field `job`"),
            "{}",
            err.message
        );
    }
}
