//! Planning: a [`Document`] in, a [`Plan`] (a DAG of
//! tasks) out; renderers for text, JSON, dot and mermaid; and the lints of
//! `mdbatch check`.

mod build;
mod lint;
mod model;
mod ready;
mod render;
#[cfg(test)]
mod testdoc;

pub use lint::{attach_source_lines, check, check_document};
pub use model::*;
pub use ready::ReadyTracker;
pub use render::{PlanFormat, render, render_to};

use crate::doc::Document;
use crate::error::Diagnostics;

impl Plan {
    /// Builds the plan of `doc`.
    ///
    /// Errors (unknown ids, self-dependencies, cycles with every member and its
    /// line) are collected and returned together.
    pub fn build(doc: &Document, options: &PlanOptions) -> Result<Plan, Diagnostics> {
        build::build(doc, options)
    }
}
