//! Running task files through the C interface with runners written against
//! the C ABI (in Rust, as a C program would write them).

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, mpsc};
use std::thread::ThreadId;

use mdbatch::*;

use crate::support::{Events, TaskFile, collect_event, run_file, take_error};

const FAST_RETRIES: &str =
    r#"{"jobs": 2, "retries": 2, "backoff_base": "1ms", "backoff_cap": "1ms"}"#;

/// What the test runner does, shared with it through `user_data`.
#[derive(Default)]
struct Script {
    /// Fail the first attempt of tasks whose text contains this, with this kind.
    fail_once: Option<(&'static str, mdbatch_error_kind)>,
    /// Fail every attempt, returning this.
    always_fail: Option<c_int>,
    /// Report this (possibly invalid) kind before failing.
    report_kind: Option<mdbatch_error_kind>,
    /// Panic inside the runner.
    panic: bool,
    /// Block until the attempt is cancelled (by its deadline), then return 1
    /// without describing the failure.
    wait_for_cancel: bool,
    /// Rendezvous: each call waits (up to 60 s) until this many calls are
    /// inside the runner at the same time.
    rendezvous: Option<(usize, Mutex<usize>, Condvar)>,
    /// The most calls seen inside the runner at once.
    max_inside: AtomicUsize,
    /// Announce the start here, then block until cancelled.
    block_until_cancelled: Option<Mutex<mpsc::Sender<Signal>>>,
    calls: AtomicUsize,
    threads: Mutex<Vec<ThreadId>>,
    task_jsons: Mutex<Vec<serde_json::Value>>,
    set_error_statuses: Mutex<Vec<mdbatch_status>>,
    wait_results: Mutex<Vec<bool>>,
}

impl Script {
    fn runner(&self) -> mdbatch_runner {
        mdbatch_runner {
            run: Some(script_runner),
            user_data: self as *const Script as *mut c_void,
        }
    }
}

unsafe extern "C-unwind" fn script_runner(
    user_data: *mut c_void,
    task_json: *const c_char,
    ctx: *mut mdbatch_task_ctx,
) -> c_int {
    let script = unsafe { &*(user_data as *const Script) };
    script.calls.fetch_add(1, Ordering::SeqCst);
    script
        .threads
        .lock()
        .unwrap()
        .push(std::thread::current().id());
    let json: serde_json::Value =
        serde_json::from_str(unsafe { CStr::from_ptr(task_json) }.to_str().unwrap()).unwrap();
    script.task_jsons.lock().unwrap().push(json.clone());
    let id = unsafe { CStr::from_ptr(mdbatch_task_ctx_task_id(ctx)) }
        .to_str()
        .unwrap()
        .to_string();
    let attempt = unsafe { mdbatch_task_ctx_attempt(ctx) };
    let line = CString::new(format!("working on {id}, attempt {attempt}")).unwrap();
    unsafe { mdbatch_task_ctx_emit(ctx, line.as_ptr()) };

    if script.panic {
        panic!("the runner panics on purpose");
    }
    if script.wait_for_cancel {
        let cancelled = unsafe { mdbatch_task_ctx_wait_cancelled(ctx, u64::MAX) };
        script.wait_results.lock().unwrap().push(cancelled);
        return 1;
    }
    if let Some((needed, inside, cv)) = &script.rendezvous {
        let mut n = inside.lock().unwrap();
        *n += 1;
        script.max_inside.fetch_max(*n, Ordering::SeqCst);
        cv.notify_all();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while *n < *needed && std::time::Instant::now() < deadline {
            n = cv
                .wait_timeout(n, deadline - std::time::Instant::now())
                .unwrap()
                .0;
        }
        let met = *n >= *needed;
        drop(n);
        return if met { 0 } else { 1 };
    }
    if let Some(started) = &script.block_until_cancelled {
        started.lock().unwrap().send(Signal::Started(id)).unwrap();
        let cancelled = unsafe { mdbatch_task_ctx_wait_cancelled(ctx, u64::MAX) };
        script.wait_results.lock().unwrap().push(cancelled);
        let status = unsafe {
            mdbatch_task_ctx_set_error(
                ctx,
                MDBATCH_ERROR_KIND_CANCELLED,
                c"stopped on request".as_ptr(),
            )
        };
        script.set_error_statuses.lock().unwrap().push(status);
        return 1;
    }
    if let Some(kind) = script.report_kind {
        let status =
            unsafe { mdbatch_task_ctx_set_error(ctx, kind, c"reported by the runner".as_ptr()) };
        script.set_error_statuses.lock().unwrap().push(status);
    }
    if let Some(rc) = script.always_fail {
        return rc;
    }
    if let Some((marker, kind)) = script.fail_once
        && attempt == 1
        && json["text"].as_str().unwrap_or("").contains(marker)
    {
        let status =
            unsafe { mdbatch_task_ctx_set_error(ctx, kind, c"simulated overload".as_ptr()) };
        script.set_error_statuses.lock().unwrap().push(status);
        return 1;
    }
    0
}

const THREE_TASKS: &str = "\
# Demo

## Wave 1
- [ ] alpha
- [ ] beta (flaky)

## Wave 2
- [ ] gamma
";

fn checked(text: &str) -> String {
    text.replace("- [ ]", "- [x]")
}

#[test]
fn a_c_runner_runs_every_task_and_its_progress_lines_arrive_as_events() {
    let file = TaskFile::new(THREE_TASKS);
    let script = Script::default();
    let events = Events::default();
    let (status, message) = run_file(&file, FAST_RETRIES, Some(&script.runner()), &events);
    assert_eq!(status, mdbatch_status::Ok, "{message:?}");
    assert_eq!(
        file.read(),
        checked(THREE_TASKS),
        "every box checked, nothing else changed"
    );
    assert_eq!(script.calls.load(Ordering::SeqCst), 3);

    let types = events.types();
    assert_eq!(types.first().map(String::as_str), Some("run_started"));
    assert_eq!(types.last().map(String::as_str), Some("run_finished"));
    assert_eq!(events.of_type("task_succeeded").len(), 3);
    let lines: Vec<String> = events
        .of_type("task_progress")
        .iter()
        .filter_map(|e| e["data"]["progress"]["line"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("working on "))
            .count(),
        3,
        "{lines:?}"
    );
    for (i, event) in events.items.lock().unwrap().iter().enumerate() {
        assert_eq!(event["v"], 1, "versioned envelope: {event}");
        assert_eq!(
            event["seq"], i,
            "events arrive in order, none missing: {event}"
        );
    }
}

#[test]
fn events_come_on_the_calling_thread_and_runners_on_other_threads() {
    let file = TaskFile::new(THREE_TASKS);
    let script = Script::default();
    let events = Events::default();
    let (status, message) = run_file(&file, FAST_RETRIES, Some(&script.runner()), &events);
    assert_eq!(status, mdbatch_status::Ok, "{message:?}");
    let me = std::thread::current().id();
    let event_threads = events.threads.lock().unwrap();
    assert!(!event_threads.is_empty());
    assert!(
        event_threads.iter().all(|t| *t == me),
        "every event on the caller's thread"
    );
    let runner_threads = script.threads.lock().unwrap();
    assert!(
        runner_threads.iter().all(|t| *t != me),
        "runners never on the caller's thread"
    );
}

#[test]
fn a_failure_kind_set_by_the_runner_drives_a_retry_seen_in_events() {
    let file = TaskFile::new(THREE_TASKS);
    let script = Script {
        fail_once: Some(("(flaky)", MDBATCH_ERROR_KIND_TRANSIENT)),
        ..Script::default()
    };
    let events = Events::default();
    let (status, message) = run_file(&file, FAST_RETRIES, Some(&script.runner()), &events);
    assert_eq!(status, mdbatch_status::Ok, "{message:?}");
    assert_eq!(
        *script.set_error_statuses.lock().unwrap(),
        vec![mdbatch_status::Ok]
    );

    let retrying = events.of_type("task_retrying");
    assert_eq!(retrying.len(), 1, "{retrying:?}");
    assert_eq!(retrying[0]["data"]["kind"], "transient");
    assert_eq!(retrying[0]["data"]["message"], "simulated overload");
    assert_eq!(retrying[0]["data"]["attempt"], 1);
    let flaky_id = retrying[0]["data"]["id"].as_str().unwrap().to_string();

    let second: Vec<serde_json::Value> = script
        .task_jsons
        .lock()
        .unwrap()
        .iter()
        .filter(|t| t["id"] == flaky_id.as_str() && t["attempt"] == 2)
        .cloned()
        .collect();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["previous_error"]["kind"], "transient");
    assert_eq!(second[0]["previous_error"]["message"], "simulated overload");

    let succeeded = events.of_type("task_succeeded");
    let flaky = succeeded
        .iter()
        .find(|e| e["data"]["id"] == flaky_id.as_str())
        .expect("flaky task succeeded");
    assert_eq!(flaky["data"]["attempt"], 2);
    assert_eq!(file.read(), checked(THREE_TASKS));
}

#[test]
fn a_task_that_keeps_failing_makes_the_run_return_task_failed_and_leaves_its_box() {
    let text = "# Demo\n\n## Wave 1\n- [ ] alpha\n\n## Wave 2\n- [ ] gamma\n";
    let file = TaskFile::new(text);
    let script = Script {
        always_fail: Some(3),
        ..Script::default()
    };
    let events = Events::default();
    let (status, message) = run_file(&file, r#"{"retries": 0}"#, Some(&script.runner()), &events);
    assert_eq!(status, mdbatch_status::TaskFailed);
    let message = message.unwrap();
    let failed = events.of_type("task_failed");
    assert_eq!(failed.len(), 1, "{:#?}", events.types());
    assert_eq!(failed[0]["data"]["kind"], "failed");
    assert!(
        failed[0]["data"]["message"]
            .as_str()
            .unwrap()
            .contains("returned 3")
    );
    let failed_id = failed[0]["data"]["id"].as_str().unwrap();
    assert!(message.contains(failed_id), "{message}");
    assert_eq!(
        events.of_type("task_skipped").len(),
        1,
        "the next wave's task is skipped"
    );
    assert_eq!(file.read(), text, "no box checked");
}

#[test]
fn an_unknown_error_kind_is_refused_and_the_attempt_fails_as_failed() {
    let text = "- [ ] alpha\n";
    let file = TaskFile::new(text);
    let script = Script {
        report_kind: Some(99),
        always_fail: Some(1),
        ..Script::default()
    };
    let events = Events::default();
    let (status, _) = run_file(&file, r#"{"retries": 0}"#, Some(&script.runner()), &events);
    assert_eq!(status, mdbatch_status::TaskFailed);
    assert_eq!(
        *script.set_error_statuses.lock().unwrap(),
        vec![mdbatch_status::InvalidArgument]
    );
    assert_eq!(events.of_type("task_failed")[0]["data"]["kind"], "failed");
    assert_eq!(file.read(), text);
}

#[test]
fn a_fatal_kind_is_not_retried() {
    let text = "- [ ] alpha\n";
    let file = TaskFile::new(text);
    let script = Script {
        report_kind: Some(MDBATCH_ERROR_KIND_FATAL),
        always_fail: Some(1),
        ..Script::default()
    };
    let events = Events::default();
    let (status, _) = run_file(&file, FAST_RETRIES, Some(&script.runner()), &events);
    assert_eq!(status, mdbatch_status::TaskFailed);
    assert_eq!(
        script.calls.load(Ordering::SeqCst),
        1,
        "fatal errors are never retried"
    );
    assert!(events.of_type("task_retrying").is_empty());
    assert_eq!(events.of_type("task_failed")[0]["data"]["kind"], "fatal");
}

#[test]
fn a_panicking_runner_fails_its_task_and_the_process_survives() {
    let text = "- [ ] alpha\n";
    let file = TaskFile::new(text);
    let script = Script {
        panic: true,
        ..Script::default()
    };
    let events = Events::default();
    let (status, message) = run_file(&file, r#"{"retries": 0}"#, Some(&script.runner()), &events);
    assert_eq!(status, mdbatch_status::TaskFailed, "{message:?}");
    let failed = events.of_type("task_failed");
    assert!(
        failed[0]["data"]["message"]
            .as_str()
            .unwrap()
            .contains("panicked"),
        "{failed:?}"
    );
    assert_eq!(file.read(), text);
}

unsafe extern "C-unwind" fn panicking_event(_user_data: *mut c_void, _event_json: *const c_char) {
    panic!("the event callback panics on purpose");
}

#[test]
fn a_panicking_event_callback_returns_panic_and_the_file_can_be_run_again() {
    let file = TaskFile::new(THREE_TASKS);
    let script = Script::default();
    let options = CString::new(FAST_RETRIES).unwrap();
    let runner = script.runner();
    let mut err = ptr::null_mut();
    let status = unsafe {
        mdbatch_run_file(
            file.c_path().as_ptr(),
            options.as_ptr(),
            &runner,
            Some(panicking_event),
            ptr::null_mut(),
            &mut err,
        )
    };
    assert_eq!(status, mdbatch_status::Panic);
    assert!(take_error(err).contains("the event callback panicked"));

    // The run was drained and its lock released: the same file runs to the end.
    let events = Events::default();
    let (status, message) = run_file(&file, FAST_RETRIES, Some(&runner), &events);
    assert_eq!(status, mdbatch_status::Ok, "{message:?}");
    assert_eq!(file.read(), checked(THREE_TASKS));
}

/// What a blocked run tells the test.
enum Signal {
    /// The runner started this task and now blocks until cancelled.
    Started(String),
    /// `mdbatch_run_file_with_handle` returned.
    Returned,
}

/// Waits for the runner to start; a run that returns first fails the test
/// instead of hanging it.
fn wait_started(rx: &mpsc::Receiver<Signal>) -> String {
    match rx.recv().expect("a signal") {
        Signal::Started(id) => id,
        Signal::Returned => panic!("the run returned before the runner started"),
    }
}

/// Raw pointers handed to the thread that runs the file.
struct RunArgs {
    returned: Option<mpsc::Sender<Signal>>,
    path: CString,
    runner: *const mdbatch_runner,
    handle: *const mdbatch_run_handle,
    events: *const Events,
}
// SAFETY: the test keeps every pointee alive until the thread is joined;
// the library's contract allows these calls from any thread.
unsafe impl Send for RunArgs {}

fn run_in_thread(args: RunArgs) -> std::thread::JoinHandle<(mdbatch_status, Option<String>)> {
    std::thread::spawn(move || {
        let args = args;
        let mut err = ptr::null_mut();
        let status = unsafe {
            mdbatch_run_file_with_handle(
                args.path.as_ptr(),
                c"{\"jobs\": 1}".as_ptr(),
                args.runner,
                Some(collect_event),
                args.events as *mut c_void,
                args.handle,
                &mut err,
            )
        };
        let message = (status != mdbatch_status::Ok).then(|| take_error(err));
        if let Some(tx) = args.returned {
            let _ = tx.send(Signal::Returned);
        }
        (status, message)
    })
}

#[test]
fn a_run_blocked_in_a_c_runner_is_cancelled_from_another_thread() {
    let text = "# Demo\n\n## Wave 1\n- [ ] alpha\n\n## Wave 2\n- [ ] gamma\n";
    let file = TaskFile::new(text);
    let (started_tx, started_rx) = mpsc::channel();
    let script = Script {
        block_until_cancelled: Some(Mutex::new(started_tx.clone())),
        ..Script::default()
    };
    let runner = script.runner();
    let events = Events::default();
    let handle = mdbatch_run_handle_new();
    let run = run_in_thread(RunArgs {
        returned: Some(started_tx.clone()),
        path: file.c_path(),
        runner: &runner,
        handle,
        events: &events,
    });

    let started = wait_started(&started_rx);
    assert_eq!(unsafe { mdbatch_run_cancel(handle) }, mdbatch_status::Ok);
    let (status, message) = run.join().expect("the run thread returns");
    unsafe { mdbatch_run_handle_free(handle) };

    assert_eq!(status, mdbatch_status::Cancelled, "{message:?}");
    assert!(message.unwrap().contains("cancelled"));
    assert_eq!(
        *script.wait_results.lock().unwrap(),
        vec![true],
        "the wait saw the cancellation"
    );
    assert_eq!(
        *script.set_error_statuses.lock().unwrap(),
        vec![mdbatch_status::Ok]
    );
    assert_eq!(
        script.calls.load(Ordering::SeqCst),
        1,
        "nothing starts after the cancel"
    );
    assert_eq!(file.read(), text, "no box checked");
    assert!(events.of_type("task_succeeded").is_empty());
    assert!(
        events
            .of_type("task_started")
            .iter()
            .any(|e| e["data"]["id"] == started.as_str())
    );
    let finished = events.of_type("run_finished");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["data"]["summary"]["cancelled"], true);
}

#[test]
fn a_handle_cancelled_before_the_run_starts_runs_nothing() {
    let text = "- [ ] alpha\n";
    let file = TaskFile::new(text);
    let script = Script::default();
    let runner = script.runner();
    let events = Events::default();
    let handle = mdbatch_run_handle_new();
    assert_eq!(unsafe { mdbatch_run_cancel(handle) }, mdbatch_status::Ok);
    let (status, _) = run_in_thread(RunArgs {
        returned: None,
        path: file.c_path(),
        runner: &runner,
        handle,
        events: &events,
    })
    .join()
    .unwrap();
    unsafe { mdbatch_run_handle_free(handle) };
    assert_eq!(status, mdbatch_status::Cancelled);
    assert_eq!(script.calls.load(Ordering::SeqCst), 0);
    assert_eq!(file.read(), text);
}

#[test]
fn a_second_run_of_a_file_being_run_is_refused_as_locked() {
    let text = "- [ ] alpha\n";
    let file = TaskFile::new(text);
    let (started_tx, started_rx) = mpsc::channel();
    let script = Script {
        block_until_cancelled: Some(Mutex::new(started_tx.clone())),
        ..Script::default()
    };
    let runner = script.runner();
    let events = Events::default();
    let handle = mdbatch_run_handle_new();
    let run = run_in_thread(RunArgs {
        returned: Some(started_tx.clone()),
        path: file.c_path(),
        runner: &runner,
        handle,
        events: &events,
    });
    wait_started(&started_rx);

    let other = Script::default();
    let (status, message) = run_file(&file, "{}", Some(&other.runner()), &Events::default());
    assert_eq!(status, mdbatch_status::Locked, "{message:?}");
    assert!(message.unwrap().contains("locked"));
    assert_eq!(other.calls.load(Ordering::SeqCst), 0);

    assert_eq!(unsafe { mdbatch_run_cancel(handle) }, mdbatch_status::Ok);
    let (status, _) = run.join().unwrap();
    unsafe { mdbatch_run_handle_free(handle) };
    assert_eq!(status, mdbatch_status::Cancelled);
}

#[test]
fn without_a_runner_the_command_from_options_runs_each_task() {
    let text = "# Demo\n\n## One\n- [ ] alpha\n- [ ] beta\n";
    let file = TaskFile::new(text);
    let events = Events::default();
    let (status, message) = run_file(&file, r#"{"cmd": "true"}"#, None, &events);
    assert_eq!(status, mdbatch_status::Ok, "{message:?}");
    assert_eq!(file.read(), checked(text));
    assert_eq!(events.of_type("task_succeeded").len(), 2);
}

#[test]
fn a_missing_task_file_is_an_io_or_parse_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.md");
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    let script = Script::default();
    let runner = script.runner();
    let mut err = ptr::null_mut();
    let status = unsafe {
        mdbatch_run_file(
            c_path.as_ptr(),
            ptr::null(),
            &runner,
            None,
            ptr::null_mut(),
            &mut err,
        )
    };
    assert!(
        matches!(status, mdbatch_status::Io | mdbatch_status::ParseError),
        "{status:?}"
    );
    assert!(take_error(err).contains("absent.md"));
    assert_eq!(script.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn with_two_jobs_two_runner_calls_run_at_the_same_time() {
    let text = "# Demo\n\n## One\n- [ ] alpha\n- [ ] beta\n";
    let file = TaskFile::new(text);
    let script = Script {
        rendezvous: Some((2, Mutex::new(0), Condvar::new())),
        ..Script::default()
    };
    let events = Events::default();
    let (status, message) = run_file(
        &file,
        r#"{"jobs": 2, "retries": 0}"#,
        Some(&script.runner()),
        &events,
    );
    assert_eq!(status, mdbatch_status::Ok, "{message:?}");
    assert_eq!(script.max_inside.load(Ordering::SeqCst), 2);
    let threads = script.threads.lock().unwrap();
    assert_ne!(
        threads[0], threads[1],
        "concurrent calls come from different threads"
    );
    assert_eq!(file.read(), checked(text));
}

#[test]
fn a_runner_blocked_past_its_timeout_is_woken_and_fails_as_timeout() {
    let text = "- [ ] alpha\n";
    let file = TaskFile::new(text);
    let script = Script {
        wait_for_cancel: true,
        ..Script::default()
    };
    let events = Events::default();
    let (status, message) = run_file(
        &file,
        r#"{"retries": 0, "timeout": "50ms", "grace": "5s"}"#,
        Some(&script.runner()),
        &events,
    );
    assert_eq!(status, mdbatch_status::TaskFailed, "{message:?}");
    assert_eq!(*script.wait_results.lock().unwrap(), vec![true]);
    let failed = events.of_type("task_failed");
    assert_eq!(failed[0]["data"]["kind"], "timeout", "{failed:?}");
    assert_eq!(file.read(), text);
}
