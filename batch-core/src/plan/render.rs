//! Text, JSON, dot and mermaid renderings of a plan.

use super::model::Plan;
use crate::doc::Document;

/// An output format of `mdbatch plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanFormat {
    /// Waves > groups > tasks, for people.
    Text,
    /// The versioned JSON schema.
    Json,
    /// Graphviz.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// Renders `plan` of `doc` in `format`.
pub fn render(_doc: &Document, _plan: &Plan, _format: PlanFormat) -> String {
    todo!("plan helper")
}
