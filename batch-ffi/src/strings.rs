//! Strings across the boundary: borrowing C strings as `&str` (NULL and UTF-8
//! checked) and handing Rust strings to C (`CString::into_raw`, freed only by
//! [`mdbatch_string_free`]).

use std::ffi::{CStr, CString, c_char};

use crate::boundary::ffi_void;
use crate::error::{Failure, mdbatch_status};

/// Borrows a NUL-terminated C string argument as UTF-8.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    utf8_arg(bytes, name)
}

/// Like [`str_arg`], but NULL gives `None`.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(
    ptr: *const c_char,
    name: &str,
) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { str_arg(ptr, name) }.map(Some)
}

/// Borrows `len` bytes at `ptr` (NULL is allowed only when `len` is 0).
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes that outlive `'a`.
pub(crate) unsafe fn bytes_arg<'a>(
    ptr: *const c_char,
    len: usize,
    name: &str,
) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    if len > isize::MAX as usize {
        return Err(Failure::new(
            mdbatch_status::InvalidArgument,
            format!("argument `{name}`: length {len} is too large"),
        ));
    }
    // SAFETY: non-NULL, `len` readable bytes per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}

/// Checks that `bytes` are UTF-8, naming the argument and the byte offset otherwise.
pub(crate) fn utf8_arg<'a>(bytes: &'a [u8], name: &str) -> Result<&'a str, Failure> {
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::new(
            mdbatch_status::InvalidUtf8,
            format!(
                "argument `{name}` is not valid UTF-8 (first bad byte at offset {}); pass UTF-8 text",
                e.valid_up_to()
            ),
        )
    })
}

/// A C string from any Rust string: an interior NUL (impossible in JSON,
/// possible in a message quoting user text) becomes U+FFFD.
pub(crate) fn c_string_lossy(text: String) -> CString {
    match CString::new(text) {
        Ok(c) => c,
        Err(e) => {
            let text = String::from_utf8_lossy(&e.into_vec()).replace('\0', "\u{fffd}");
            CString::new(text).expect("NULs were replaced")
        }
    }
}

/// Hands `text` to C; it must come back through [`mdbatch_string_free`].
pub(crate) fn into_c_string(text: String) -> *mut c_char {
    c_string_lossy(text).into_raw()
}

/// Frees a string returned by this library (`out_json` outputs and the
/// like). NULL is allowed (does nothing). Never pass these strings to
/// `free()`, and never pass other strings here.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_string_free(s: *mut c_char) {
    ffi_void!({
        if !s.is_null() {
            // SAFETY: a pointer from `CString::into_raw` in this library, freed once.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}

/// The library version (`"0.1.0"`): static, never free it.
#[unsafe(no_mangle)]
pub extern "C" fn mdbatch_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("the version has no NUL"),
        };
    VERSION.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interior_nuls_become_replacement_characters_instead_of_failing() {
        let c = c_string_lossy("a\0b".to_string());
        assert_eq!(c.to_str().unwrap(), "a\u{fffd}b");
    }

    #[test]
    fn invalid_utf8_is_reported_with_its_offset() {
        let err = utf8_arg(b"ab\xffcd", "text").unwrap_err();
        assert_eq!(err.status, mdbatch_status::InvalidUtf8);
        assert!(err.message.contains("offset 2"), "{}", err.message);
    }
}
