//! Building the DAG.

use super::model::{Plan, PlanOptions};
use crate::doc::Document;
use crate::error::Diagnostics;

pub(crate) fn build(_doc: &Document, _options: &PlanOptions) -> Result<Plan, Diagnostics> {
    todo!("plan helper")
}
