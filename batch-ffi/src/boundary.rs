//! The one place where panics stop: every exported function runs its body
//! through [`ffi_boundary!`], [`ffi_fallible!`] or [`ffi_void!`].
//!
//! Unwinding into C is undefined behaviour, so each body runs inside
//! `catch_unwind`: a panic becomes [`mdbatch_status::Panic`] (with a message
//! in the optional `mdbatch_error **`), a NULL pointer, `false` or nothing,
//! as the function's return type allows. The panic payload's message is kept
//! so the C side can report it.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{Failure, mdbatch_error, mdbatch_status};

/// Runs `body`; a panic returns `on_panic` instead.
macro_rules! ffi_boundary {
    ($on_panic:expr, $body:block) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(value) => value,
            Err(_) => $on_panic,
        }
    };
}

/// Runs a body of type `Result<(), Failure>`, turning a failure or a panic
/// into a status and an optional error object written to `$err`.
macro_rules! ffi_fallible {
    ($err:expr, $body:block) => {{
        let err: *mut *mut $crate::error::mdbatch_error = $err;
        // The body is outside the `unsafe` block below so that its own
        // unsafe operations need (and get) their own blocks and comments.
        let body = || -> Result<(), $crate::error::Failure> { $body };
        // SAFETY: `err` is the caller's optional `mdbatch_error **`, checked for NULL inside.
        unsafe { $crate::boundary::fallible(err, body) }
    }};
}

/// Runs a body returning nothing; a panic is swallowed (there is no way to report it).
macro_rules! ffi_void {
    ($body:block) => {
        $crate::boundary::ffi_boundary!((), $body)
    };
}

/// Borrows `*const T` / `*mut T` as a reference, or fails with
/// [`Failure::null`] naming the argument.
macro_rules! non_null {
    ($ptr:expr, $name:literal) => {
        match $ptr.is_null() {
            true => return Err($crate::error::Failure::null($name)),
            false => $ptr,
        }
    };
}

pub(crate) use {ffi_boundary, ffi_fallible, ffi_void, non_null};

/// The message of a panic payload (`&str` and `String` payloads; anything else is opaque).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// The body of [`ffi_fallible!`].
///
/// # Safety
/// `err` is NULL or points to writable storage for one `mdbatch_error *`.
pub(crate) unsafe fn fallible(
    err: *mut *mut mdbatch_error,
    body: impl FnOnce() -> Result<(), Failure>,
) -> mdbatch_status {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return mdbatch_status::Ok,
        Ok(Err(failure)) => failure,
        Err(payload) => Failure::new(
            mdbatch_status::Panic,
            format!(
                "internal error: mdbatch panicked: {}",
                panic_message(&*payload)
            ),
        ),
    };
    let status = failure.status;
    if !err.is_null() {
        // Building the error allocates; a panic there (out of memory aborts anyway)
        // must not escape either.
        if let Ok(boxed) = catch_unwind(AssertUnwindSafe(|| failure.into_raw())) {
            // SAFETY: checked non-NULL; the caller promises it is writable.
            unsafe { *err = boxed };
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_a_fallible_body_becomes_the_panic_status_with_its_message() {
        let mut err: *mut mdbatch_error = std::ptr::null_mut();
        let status = unsafe { fallible(&mut err, || panic!("boom {}", 42)) };
        assert_eq!(status, mdbatch_status::Panic);
        assert!(!err.is_null());
        let message = unsafe { &*err }.message_str().to_string();
        assert!(message.contains("boom 42"), "{message}");
        unsafe { crate::error::mdbatch_error_free(err) };
    }

    #[test]
    fn success_leaves_the_error_pointer_untouched() {
        let mut err: *mut mdbatch_error = std::ptr::null_mut();
        let status = unsafe { fallible(&mut err, || Ok(())) };
        assert_eq!(status, mdbatch_status::Ok);
        assert!(err.is_null());
    }
}
