//! The prompt template.

use serde::{Deserialize, Serialize};

use super::TaskSpec;

/// Placeholders a prompt template may use.
pub const PLACEHOLDERS: &[&str] = &["preamble", "section", "task", "details", "file", "id"];

/// A prompt template (`--prompt-template FILE`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTemplate {
    text: String,
}

impl PromptTemplate {
    /// Parses a template; an unknown placeholder is an error naming it and its line.
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(Self {
            text: text.to_string(),
        })
    }

    /// Composes the prompt of a task (uses every field of `spec` but `prompt`).
    pub fn render(&self, spec: &TaskSpec) -> String {
        let _ = spec;
        todo!("presets helper")
    }
}
