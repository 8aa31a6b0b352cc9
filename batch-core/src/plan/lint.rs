//! The lints of `mdbatch check`.

use super::model::Plan;
use crate::doc::Document;
use crate::error::Diagnostic;

/// Every warning `mdbatch check` reports beyond parse and plan errors.
pub fn check(_doc: &Document, _plan: &Plan) -> Vec<Diagnostic> {
    todo!("plan helper")
}
