//! `mdbatch_doc`: a parsed task file.

use std::ffi::c_char;

use batch_core::{Dialect, Document, ParseOptions};

use crate::boundary::{ffi_fallible, ffi_void, non_null};
use crate::error::{Failure, mdbatch_error, mdbatch_status};
use crate::strings::{bytes_arg, into_c_string};

/// A parsed task file. Created by `mdbatch_doc_parse`, freed by
/// `mdbatch_doc_free`. Immutable: it may be read from several threads at
/// once.
#[derive(Debug)]
pub struct mdbatch_doc {
    /// The source, kept so a plan with another dialect or wave level can re-parse it.
    pub(crate) text: String,
    /// The document parsed with detected dialect and wave level.
    pub(crate) doc: Document,
}

impl mdbatch_doc {
    /// The document as parsed with `dialect` / `wave_level` forced (re-parses only when needed).
    pub(crate) fn with_options(
        &self,
        dialect: Option<Dialect>,
        wave_level: Option<u8>,
    ) -> Result<std::borrow::Cow<'_, Document>, Failure> {
        if dialect.is_none() && wave_level.is_none() {
            return Ok(std::borrow::Cow::Borrowed(&self.doc));
        }
        let mut options = ParseOptions::default();
        if let Some(d) = dialect {
            options = options.with_dialect(d);
        }
        if let Some(l) = wave_level {
            options = options.with_wave_level(l);
        }
        Document::parse(&self.text, &options)
            .map(std::borrow::Cow::Owned)
            .map_err(|d| Failure::diagnostics(mdbatch_status::ParseError, &d))
    }
}

/// Parses task-file text: `len` bytes of UTF-8 at `text` (no NUL needed).
///
/// On success writes a new document to `*out` (free it with
/// `mdbatch_doc_free`). Fails with `MDBATCH_STATUS_NULL_ARGUMENT`,
/// `MDBATCH_STATUS_INVALID_UTF8` (the message gives line:col) or
/// `MDBATCH_STATUS_PARSE_ERROR` (every problem, compiler-style, at
/// `<input>:line:col`). `err` may be NULL; when it is not, `*err` is set on
/// failure only. `*out` is written on success only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_doc_parse(
    text: *const c_char,
    len: usize,
    out: *mut *mut mdbatch_doc,
    err: *mut *mut mdbatch_error,
) -> mdbatch_status {
    ffi_fallible!(err, {
        let out = non_null!(out, "out");
        // SAFETY: the caller passes `len` readable bytes at `text`.
        let bytes = unsafe { bytes_arg(text, len, "text") }?;
        let options = ParseOptions::default();
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            // `parse_bytes` reports where the bad byte is, as line:col.
            Err(_) => {
                let message = match Document::parse_bytes(bytes, &options) {
                    Err(d) => d.to_string(),
                    Ok(_) => "the text is not valid UTF-8".to_string(),
                };
                return Err(Failure::new(mdbatch_status::InvalidUtf8, message));
            }
        };
        let doc = Document::parse(text, &options)
            .map_err(|d| Failure::diagnostics(mdbatch_status::ParseError, &d))?;
        let handle = Box::new(mdbatch_doc {
            text: text.to_string(),
            doc,
        });
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { *out = Box::into_raw(handle) };
        Ok(())
    })
}

/// The parsed document as JSON (sections, tasks with ids, text, details,
/// hints, waves, groups, dialect, warnings). On success writes a new string
/// to `*out_json`; free it with `mdbatch_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_doc_to_json(
    doc: *const mdbatch_doc,
    out_json: *mut *mut c_char,
    err: *mut *mut mdbatch_error,
) -> mdbatch_status {
    ffi_fallible!(err, {
        let doc = non_null!(doc, "doc");
        let out_json = non_null!(out_json, "out_json");
        // SAFETY: a live document from `mdbatch_doc_parse`.
        let doc = unsafe { &*doc };
        let json = serde_json::to_string(&doc.doc).map_err(|e| {
            Failure::new(
                mdbatch_status::Internal,
                format!("cannot serialise the document: {e}"),
            )
        })?;
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { *out_json = into_c_string(json) };
        Ok(())
    })
}

/// Frees a document. NULL is allowed (does nothing).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_doc_free(doc: *mut mdbatch_doc) {
    ffi_void!({
        if !doc.is_null() {
            // SAFETY: a pointer from `Box::into_raw` in `mdbatch_doc_parse`, freed once.
            drop(unsafe { Box::from_raw(doc) });
        }
    })
}
