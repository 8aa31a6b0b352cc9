//! `mdbatch_status_json`: what is done, open, failed and running for a task
//! file, from its checkboxes and its journal (the JSON of `mdbatch status --json`).

use std::ffi::c_char;

use batch_core::{Document, ParseOptions, ReadError, Status};

use crate::boundary::{ffi_fallible, non_null};
use crate::error::{Failure, mdbatch_error, mdbatch_status};
use crate::strings::{into_c_string, str_arg};

/// The status of the task file at `path` as JSON: done and open tasks per
/// wave and group, the last run, a run in progress, failed, flaky, skipped
/// and interrupted tasks, attempts, durations, tokens and cost (the schema
/// of `mdbatch status --json`, versioned by its `v` field).
///
/// Reads the file and the journal beside it; never writes. Fails with
/// `MDBATCH_STATUS_IO` when the file cannot be read (or the journal or lock
/// exists but cannot be), `MDBATCH_STATUS_PARSE_ERROR` when it does not
/// parse. On success writes a new string to `*out_json`; free it with
/// `mdbatch_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_status_json(
    path: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut mdbatch_error,
) -> mdbatch_status {
    ffi_fallible!(err, {
        let out_json = non_null!(out_json, "out_json");
        // SAFETY: a NUL-terminated string, per the contract.
        let path = std::path::Path::new(unsafe { str_arg(path, "path") }?);
        let doc = Document::read(path, &ParseOptions::with_path(path)).map_err(|e| match e {
            ReadError::Invalid(d) => Failure::diagnostics(mdbatch_status::ParseError, &d),
            other => Failure::new(mdbatch_status::Io, other.to_string()),
        })?;
        let status = Status::read(path, &doc)
            .map_err(|e| Failure::new(mdbatch_status::Io, e.to_string()))?;
        let json = serde_json::to_string(&status)
            .map_err(|e| Failure::new(mdbatch_status::Internal, e.to_string()))?;
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { *out_json = into_c_string(json) };
        Ok(())
    })
}
