//! The conventions every export keeps: NULLs, frees, UTF-8, outputs only on
//! success, options checked before anything runs.

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use mdbatch::*;

use crate::support::{TaskFile, take_error};

#[test]
fn every_free_function_accepts_null() {
    unsafe {
        mdbatch_doc_free(ptr::null_mut());
        mdbatch_error_free(ptr::null_mut());
        mdbatch_string_free(ptr::null_mut());
        mdbatch_run_handle_free(ptr::null_mut());
    }
}

#[test]
fn null_required_arguments_fail_with_null_argument_and_name_the_argument() {
    let mut doc = ptr::null_mut();
    let mut err = ptr::null_mut();
    let status = unsafe { mdbatch_doc_parse(ptr::null(), 0, &mut doc, &mut err) };
    assert_eq!(status, mdbatch_status::NullArgument);
    assert!(doc.is_null());
    assert!(take_error(err).contains("`text`"));

    let text = "- [ ] a\n";
    let mut err = ptr::null_mut();
    let status =
        unsafe { mdbatch_doc_parse(text.as_ptr().cast(), text.len(), ptr::null_mut(), &mut err) };
    assert_eq!(status, mdbatch_status::NullArgument);
    assert!(take_error(err).contains("`out`"));

    let mut out: *mut c_char = ptr::null_mut();
    let mut err = ptr::null_mut();
    let status = unsafe { mdbatch_doc_plan_json(ptr::null(), ptr::null(), &mut out, &mut err) };
    assert_eq!(status, mdbatch_status::NullArgument);
    assert!(out.is_null());
    assert!(take_error(err).contains("`doc`"));

    let mut err = ptr::null_mut();
    let status = unsafe { mdbatch_doc_to_json(ptr::null(), &mut out, &mut err) };
    assert_eq!(status, mdbatch_status::NullArgument);
    assert!(take_error(err).contains("`doc`"));

    let mut err = ptr::null_mut();
    let status = unsafe {
        mdbatch_run_file(
            ptr::null(),
            ptr::null(),
            ptr::null(),
            None,
            ptr::null_mut(),
            &mut err,
        )
    };
    assert_eq!(status, mdbatch_status::NullArgument);
    assert!(take_error(err).contains("`path`"));

    let file = TaskFile::new("- [ ] a\n");
    let mut err = ptr::null_mut();
    let status = unsafe {
        mdbatch_run_file_with_handle(
            file.c_path().as_ptr(),
            ptr::null(),
            ptr::null(),
            None,
            ptr::null_mut(),
            ptr::null(),
            &mut err,
        )
    };
    assert_eq!(status, mdbatch_status::NullArgument);
    assert!(take_error(err).contains("`handle`"));

    assert_eq!(
        unsafe { mdbatch_run_cancel(ptr::null()) },
        mdbatch_status::NullArgument
    );
}

#[test]
fn the_error_pointer_itself_may_be_null() {
    let status = unsafe { mdbatch_doc_parse(ptr::null(), 0, ptr::null_mut(), ptr::null_mut()) };
    assert_eq!(status, mdbatch_status::NullArgument);
}

#[test]
fn a_runner_without_a_function_is_a_null_argument() {
    let file = TaskFile::new("- [ ] a\n");
    let runner = mdbatch_runner {
        run: None,
        user_data: ptr::null_mut(),
    };
    let mut err = ptr::null_mut();
    let status = unsafe {
        mdbatch_run_file(
            file.c_path().as_ptr(),
            ptr::null(),
            &runner,
            None,
            ptr::null_mut(),
            &mut err,
        )
    };
    assert_eq!(status, mdbatch_status::NullArgument);
    assert!(take_error(err).contains("runner->run"));
    assert_eq!(file.read(), "- [ ] a\n");
}

#[test]
fn error_accessors_on_null_return_null_and_a_status() {
    assert!(unsafe { mdbatch_error_message(ptr::null()) }.is_null());
    assert_eq!(
        unsafe { mdbatch_error_status(ptr::null()) },
        mdbatch_status::NullArgument
    );
}

#[test]
fn invalid_utf8_text_is_reported_at_its_line_and_column() {
    let text = b"# Tasks\n\n- [ ] caf\xe9\n";
    let mut doc = ptr::null_mut();
    let mut err = ptr::null_mut();
    let status = unsafe { mdbatch_doc_parse(text.as_ptr().cast(), text.len(), &mut doc, &mut err) };
    assert_eq!(status, mdbatch_status::InvalidUtf8);
    assert!(doc.is_null(), "no output on failure");
    assert_eq!(
        unsafe { mdbatch_error_status(err) },
        mdbatch_status::InvalidUtf8
    );
    let message = take_error(err);
    assert!(message.contains("<input>:3:10"), "{message}");
    assert!(message.contains("UTF-8"), "{message}");
}

#[test]
fn invalid_utf8_in_a_path_or_options_is_refused_before_running() {
    let bad = CString::new(b"/tmp/caf\xe9.md".to_vec()).unwrap();
    let mut err = ptr::null_mut();
    let status = unsafe {
        mdbatch_run_file(
            bad.as_ptr(),
            ptr::null(),
            ptr::null(),
            None,
            ptr::null_mut(),
            &mut err,
        )
    };
    assert_eq!(status, mdbatch_status::InvalidUtf8);
    assert!(take_error(err).contains("`path`"));

    let file = TaskFile::new("- [ ] a\n");
    let bad_options = CString::new(b"{\"cmd\": \"caf\xe9\"}".to_vec()).unwrap();
    let mut err = ptr::null_mut();
    let status = unsafe {
        mdbatch_run_file(
            file.c_path().as_ptr(),
            bad_options.as_ptr(),
            ptr::null(),
            None,
            ptr::null_mut(),
            &mut err,
        )
    };
    assert_eq!(status, mdbatch_status::InvalidUtf8);
    assert!(take_error(err).contains("`options_json`"));
    assert_eq!(file.read(), "- [ ] a\n");
}

#[test]
fn an_unknown_run_option_is_an_error_naming_the_key_and_nothing_runs() {
    let file = TaskFile::new("- [ ] a\n");
    let options = CString::new(r#"{"jobs": 2, "parallelism": 3}"#).unwrap();
    let mut err = ptr::null_mut();
    let status = unsafe {
        mdbatch_run_file(
            file.c_path().as_ptr(),
            options.as_ptr(),
            ptr::null(),
            None,
            ptr::null_mut(),
            &mut err,
        )
    };
    assert_eq!(status, mdbatch_status::InvalidOptions);
    let message = take_error(err);
    assert!(message.contains("unknown field `parallelism`"), "{message}");
    assert_eq!(file.read(), "- [ ] a\n");
    assert!(
        !file.dir.path().join(".mdbatch").exists(),
        "no state is written for a refused run"
    );
}

#[test]
fn a_bad_option_value_is_an_invalid_options_error() {
    let file = TaskFile::new("- [ ] a\n");
    let options = CString::new(r#"{"timeout": "soon"}"#).unwrap();
    let mut err = ptr::null_mut();
    let status = unsafe {
        mdbatch_run_file(
            file.c_path().as_ptr(),
            options.as_ptr(),
            ptr::null(),
            None,
            ptr::null_mut(),
            &mut err,
        )
    };
    assert_eq!(status, mdbatch_status::InvalidOptions);
    assert!(take_error(err).contains("soon"));
}

#[test]
fn status_names_cover_every_value_and_unknown_values() {
    let name = |v: i32| {
        unsafe { CStr::from_ptr(mdbatch_status_name(v)) }
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(name(0), "MDBATCH_STATUS_OK");
    assert_eq!(name(mdbatch_status::Panic as i32), "MDBATCH_STATUS_PANIC");
    assert_eq!(
        name(mdbatch_status::TaskFailed as i32),
        "MDBATCH_STATUS_TASK_FAILED"
    );
    assert_eq!(name(999), "MDBATCH_STATUS_UNKNOWN");
    assert_eq!(name(-1), "MDBATCH_STATUS_UNKNOWN");
}

#[test]
fn the_version_is_the_crate_version() {
    let v = unsafe { CStr::from_ptr(mdbatch_version()) }
        .to_str()
        .unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
}

#[test]
fn task_ctx_functions_tolerate_a_null_context() {
    unsafe {
        mdbatch_task_ctx_emit(ptr::null_mut(), c"line".as_ptr());
        assert!(!mdbatch_task_ctx_is_cancelled(ptr::null()));
        assert!(!mdbatch_task_ctx_wait_cancelled(ptr::null(), 0));
        assert!(mdbatch_task_ctx_task_id(ptr::null()).is_null());
        assert_eq!(mdbatch_task_ctx_attempt(ptr::null()), 0);
        assert_eq!(
            mdbatch_task_ctx_set_error(ptr::null_mut(), MDBATCH_ERROR_KIND_FAILED, ptr::null()),
            mdbatch_status::NullArgument
        );
    }
}

#[test]
fn run_handles_can_be_cancelled_repeatedly_and_freed() {
    let handle = mdbatch_run_handle_new();
    assert!(!handle.is_null());
    assert_eq!(unsafe { mdbatch_run_cancel(handle) }, mdbatch_status::Ok);
    assert_eq!(unsafe { mdbatch_run_cancel(handle) }, mdbatch_status::Ok);
    unsafe { mdbatch_run_handle_free(handle) };
}
