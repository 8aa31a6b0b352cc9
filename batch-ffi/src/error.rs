//! Status codes, the error object, and the failure kinds a C runner reports.

use std::ffi::{CString, c_char, c_int};

use batch_core::{Diagnostics, ErrorKind, RunSetupError};

use crate::boundary::{ffi_boundary, ffi_void};
use crate::strings::c_string_lossy;

/// The result of a fallible `mdbatch_` function. `MDBATCH_STATUS_OK` (0) is
/// success; every other value names the failure, and the optional
/// `mdbatch_error **` receives a message.
///
/// New values may be added: treat an unknown value as a failure.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum mdbatch_status {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 2,
    /// An integer argument was out of range (an unknown `mdbatch_error_kind`, …).
    InvalidArgument = 3,
    /// The task-file text has errors; the message lists each at `line:col`.
    /// `mdbatch_run_file` also returns it when the task file cannot be planned.
    ParseError = 4,
    /// The document cannot be planned (unknown ids, cycles, …).
    PlanError = 5,
    /// `options_json` is not valid JSON, has an unknown key or a bad value,
    /// or the options are inconsistent (e.g. no runner and no `cmd`).
    InvalidOptions = 6,
    /// The task file or mdbatch's state beside it could not be read or written.
    Io = 7,
    /// Another mdbatch run holds the lock on this task file.
    Locked = 8,
    /// The run finished, but at least one task failed or was skipped.
    TaskFailed = 9,
    /// The run was cancelled (`mdbatch_run_cancel`) before every task finished.
    Cancelled = 10,
    /// A bug: mdbatch (or a Rust callback) panicked; the panic was stopped at
    /// the boundary and the process is intact.
    Panic = 11,
    /// An error the library has no more specific status for.
    Internal = 12,
}

impl mdbatch_status {
    /// The C name of the status (`"MDBATCH_STATUS_OK"`, …).
    pub fn name(self) -> &'static str {
        static_name(self).to_str().expect("status names are ASCII")
    }

    /// The status with this integer value, if there is one (ints from C are matched).
    pub fn from_int(value: c_int) -> Option<Self> {
        Some(match value {
            0 => mdbatch_status::Ok,
            1 => mdbatch_status::NullArgument,
            2 => mdbatch_status::InvalidUtf8,
            3 => mdbatch_status::InvalidArgument,
            4 => mdbatch_status::ParseError,
            5 => mdbatch_status::PlanError,
            6 => mdbatch_status::InvalidOptions,
            7 => mdbatch_status::Io,
            8 => mdbatch_status::Locked,
            9 => mdbatch_status::TaskFailed,
            10 => mdbatch_status::Cancelled,
            11 => mdbatch_status::Panic,
            12 => mdbatch_status::Internal,
            _ => return None,
        })
    }
}

/// A failure: a status and a message, returned through `mdbatch_error **`.
///
/// Created by the library; read it with `mdbatch_error_message` and
/// `mdbatch_error_status`; free it with `mdbatch_error_free`.
#[derive(Debug)]
pub struct mdbatch_error {
    status: mdbatch_status,
    message: CString,
}

impl mdbatch_error {
    /// The message (for Rust callers and tests).
    pub fn message_str(&self) -> &str {
        self.message.to_str().unwrap_or("(message is not UTF-8)")
    }

    /// The status this error was returned with.
    pub fn status(&self) -> mdbatch_status {
        self.status
    }
}

/// A failure on its way to the boundary.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: mdbatch_status,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: mdbatch_status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A NULL argument.
    pub(crate) fn null(name: &str) -> Self {
        Self::new(
            mdbatch_status::NullArgument,
            format!("argument `{name}` is NULL"),
        )
    }

    /// Task-file diagnostics, rendered compiler-style.
    pub(crate) fn diagnostics(status: mdbatch_status, diagnostics: &Diagnostics) -> Self {
        Self::new(status, diagnostics.to_string())
    }

    /// Why a run could not start.
    pub(crate) fn setup(error: &RunSetupError) -> Self {
        let status = match error {
            RunSetupError::Invalid(_) => mdbatch_status::ParseError,
            RunSetupError::Io { .. } => mdbatch_status::Io,
            RunSetupError::Locked { .. } => mdbatch_status::Locked,
            RunSetupError::Options(_) | RunSetupError::Runner(_) => mdbatch_status::InvalidOptions,
            RunSetupError::Store(_) => mdbatch_status::Io,
            _ => mdbatch_status::Internal,
        };
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        Self::new(status, message)
    }

    pub(crate) fn into_raw(self) -> *mut mdbatch_error {
        Box::into_raw(Box::new(mdbatch_error {
            status: self.status,
            message: c_string_lossy(self.message),
        }))
    }
}

/// The message of `err`: UTF-8, NUL-terminated, borrowed until
/// `mdbatch_error_free(err)`. NULL when `err` is NULL.
///
/// Parse and plan errors are multi-line and compiler-style, each problem at
/// `path:line:col`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_error_message(err: *const mdbatch_error) -> *const c_char {
    ffi_boundary!(std::ptr::null(), {
        // SAFETY: NULL or a pointer from this library that has not been freed.
        match unsafe { err.as_ref() } {
            Some(err) => err.message.as_ptr(),
            None => std::ptr::null(),
        }
    })
}

/// The status `err` was returned with (`MDBATCH_STATUS_NULL_ARGUMENT` when `err` is NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_error_status(err: *const mdbatch_error) -> mdbatch_status {
    ffi_boundary!(mdbatch_status::Panic, {
        // SAFETY: NULL or a pointer from this library that has not been freed.
        match unsafe { err.as_ref() } {
            Some(err) => err.status,
            None => mdbatch_status::NullArgument,
        }
    })
}

/// Frees an error. NULL is allowed (does nothing). The message returned by
/// `mdbatch_error_message` is invalid afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_error_free(err: *mut mdbatch_error) {
    ffi_void!({
        if !err.is_null() {
            // SAFETY: a pointer from `Box::into_raw` in this library, freed once.
            drop(unsafe { Box::from_raw(err) });
        }
    })
}

/// The name of a status value (`"MDBATCH_STATUS_OK"`, …), or
/// `"MDBATCH_STATUS_UNKNOWN"` for a value this library does not define.
/// The string is static: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn mdbatch_status_name(status: c_int) -> *const c_char {
    ffi_boundary!(c"MDBATCH_STATUS_UNKNOWN".as_ptr(), {
        match mdbatch_status::from_int(status) {
            Some(status) => static_name(status).as_ptr(),
            None => c"MDBATCH_STATUS_UNKNOWN".as_ptr(),
        }
    })
}

fn static_name(status: mdbatch_status) -> &'static std::ffi::CStr {
    match status {
        mdbatch_status::Ok => c"MDBATCH_STATUS_OK",
        mdbatch_status::NullArgument => c"MDBATCH_STATUS_NULL_ARGUMENT",
        mdbatch_status::InvalidUtf8 => c"MDBATCH_STATUS_INVALID_UTF8",
        mdbatch_status::InvalidArgument => c"MDBATCH_STATUS_INVALID_ARGUMENT",
        mdbatch_status::ParseError => c"MDBATCH_STATUS_PARSE_ERROR",
        mdbatch_status::PlanError => c"MDBATCH_STATUS_PLAN_ERROR",
        mdbatch_status::InvalidOptions => c"MDBATCH_STATUS_INVALID_OPTIONS",
        mdbatch_status::Io => c"MDBATCH_STATUS_IO",
        mdbatch_status::Locked => c"MDBATCH_STATUS_LOCKED",
        mdbatch_status::TaskFailed => c"MDBATCH_STATUS_TASK_FAILED",
        mdbatch_status::Cancelled => c"MDBATCH_STATUS_CANCELLED",
        mdbatch_status::Panic => c"MDBATCH_STATUS_PANIC",
        mdbatch_status::Internal => c"MDBATCH_STATUS_INTERNAL",
    }
}

/// The kind of a failed task attempt, reported by a C runner through
/// `mdbatch_task_ctx_set_error`; it decides whether and how the attempt is
/// retried. One of the `MDBATCH_ERROR_KIND_*` values.
pub type mdbatch_error_kind = u32;

/// Rate limit, overload, network: retried after a backoff.
pub const MDBATCH_ERROR_KIND_TRANSIENT: mdbatch_error_kind = 1;
/// The attempt ran out of time.
pub const MDBATCH_ERROR_KIND_TIMEOUT: mdbatch_error_kind = 2;
/// The prompt no longer fits the model's context.
pub const MDBATCH_ERROR_KIND_CONTEXT_OVERFLOW: mdbatch_error_kind = 3;
/// The agent ran out of turns.
pub const MDBATCH_ERROR_KIND_TURN_LIMIT: mdbatch_error_kind = 4;
/// The subagent ran and reported failure (the default for a non-zero return).
pub const MDBATCH_ERROR_KIND_FAILED: mdbatch_error_kind = 5;
/// Authentication, a missing tool, bad configuration: never retried.
pub const MDBATCH_ERROR_KIND_FATAL: mdbatch_error_kind = 6;
/// The attempt stopped because the run was cancelled.
pub const MDBATCH_ERROR_KIND_CANCELLED: mdbatch_error_kind = 7;

/// The core kind for a C value (matched, never transmuted).
pub(crate) fn error_kind_from_c(kind: mdbatch_error_kind) -> Option<ErrorKind> {
    Some(match kind {
        MDBATCH_ERROR_KIND_TRANSIENT => ErrorKind::Transient,
        MDBATCH_ERROR_KIND_TIMEOUT => ErrorKind::Timeout,
        MDBATCH_ERROR_KIND_CONTEXT_OVERFLOW => ErrorKind::ContextOverflow,
        MDBATCH_ERROR_KIND_TURN_LIMIT => ErrorKind::TurnLimit,
        MDBATCH_ERROR_KIND_FAILED => ErrorKind::Failed,
        MDBATCH_ERROR_KIND_FATAL => ErrorKind::Fatal,
        MDBATCH_ERROR_KIND_CANCELLED => ErrorKind::Cancelled,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_integer_and_has_a_static_name() {
        for value in 0..=12 {
            let status = mdbatch_status::from_int(value).expect("defined");
            assert_eq!(status as c_int, value);
            assert!(status.name().starts_with("MDBATCH_STATUS_"));
        }
        assert_eq!(mdbatch_status::from_int(13), None);
        assert_eq!(mdbatch_status::from_int(-1), None);
    }

    #[test]
    fn unknown_error_kinds_are_rejected_not_transmuted() {
        assert_eq!(error_kind_from_c(0), None);
        assert_eq!(error_kind_from_c(8), None);
        assert_eq!(error_kind_from_c(u32::MAX), None);
        assert_eq!(
            error_kind_from_c(MDBATCH_ERROR_KIND_TRANSIENT),
            Some(ErrorKind::Transient)
        );
        assert_eq!(
            error_kind_from_c(MDBATCH_ERROR_KIND_CANCELLED),
            Some(ErrorKind::Cancelled)
        );
    }
}
