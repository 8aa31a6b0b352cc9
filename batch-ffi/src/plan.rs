//! `mdbatch_doc_plan_json`: a document's plan in the versioned JSON schema.

use std::ffi::c_char;

use batch_core::plan::{PlanFormat, render};
use batch_core::{Dialect, Plan, PlanOptions};
use serde::Deserialize;

use crate::boundary::{ffi_fallible, non_null};
use crate::doc::mdbatch_doc;
use crate::error::{Failure, mdbatch_error, mdbatch_status};
use crate::strings::{into_c_string, opt_str_arg};

/// The planning subset of the run options (`mdbatch plan`'s flags).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct PlanJsonOptions {
    cross_wave: Option<bool>,
    only: Vec<String>,
    include_optional: bool,
    dialect: Option<Dialect>,
    wave_level: Option<u8>,
}

impl PlanJsonOptions {
    pub(crate) fn from_json(json: Option<&str>) -> Result<Self, Failure> {
        match json {
            None => Ok(Self::default()),
            Some(text) => serde_json::from_str(text).map_err(|e| {
                Failure::new(
                    mdbatch_status::InvalidOptions,
                    format!(
                        "options_json: {e}; plan options are `cross_wave`, `only`, \
                         `include_optional`, `dialect`, `wave_level`"
                    ),
                )
            }),
        }
    }
}

/// The plan of `doc` as JSON (the schema of `mdbatch plan --format json`).
///
/// `options_json` is NULL (defaults) or a JSON object with any of
/// `cross_wave` (bool), `only` (array of ids, ranges such as `"T004-T010"`,
/// or section names), `include_optional` (bool), `dialect` (`"waves"`,
/// `"spec-kit"`, `"kiro"`) and `wave_level` (1-6); any other key is an
/// error (`MDBATCH_STATUS_INVALID_OPTIONS`). Fails with
/// `MDBATCH_STATUS_PLAN_ERROR` when the document cannot be planned (unknown
/// ids, cycles: each at line:col). On success writes a new string to
/// `*out_json`; free it with `mdbatch_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mdbatch_doc_plan_json(
    doc: *const mdbatch_doc,
    options_json: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut mdbatch_error,
) -> mdbatch_status {
    ffi_fallible!(err, {
        let doc = non_null!(doc, "doc");
        let out_json = non_null!(out_json, "out_json");
        // SAFETY: NULL or a NUL-terminated string, per the contract.
        let options =
            PlanJsonOptions::from_json(unsafe { opt_str_arg(options_json, "options_json") }?)?;
        // SAFETY: a live document from `mdbatch_doc_parse`.
        let handle = unsafe { &*doc };
        let document = handle.with_options(options.dialect, options.wave_level)?;
        let mut plan_options = PlanOptions::new()
            .with_only(options.only)
            .with_include_optional(options.include_optional);
        if let Some(cross_wave) = options.cross_wave {
            plan_options = plan_options.with_cross_wave(cross_wave);
        }
        let plan = Plan::build(&document, &plan_options)
            .map_err(|d| Failure::diagnostics(mdbatch_status::PlanError, &d))?;
        let json = render(&document, &plan, PlanFormat::Json);
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { *out_json = into_c_string(json) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_options_reject_run_only_and_unknown_keys() {
        let err = PlanJsonOptions::from_json(Some(r#"{"jobs": 3}"#)).unwrap_err();
        assert_eq!(err.status, mdbatch_status::InvalidOptions);
        assert!(err.message.contains("jobs"), "{}", err.message);
        let ok = PlanJsonOptions::from_json(Some(
            r#"{"cross_wave": true, "only": ["T001"], "dialect": "spec-kit", "wave_level": 2}"#,
        ))
        .unwrap();
        assert_eq!(ok.cross_wave, Some(true));
        assert_eq!(ok.dialect, Some(Dialect::SpecKit));
        assert_eq!(ok.wave_level, Some(2));
    }
}
