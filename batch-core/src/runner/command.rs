//! The command runner (`--cmd TEMPLATE`).

use async_trait::async_trait;

use super::{RunContext, SubagentRunner, TaskOutput, TaskSpec};
use crate::error::RunError;

/// Runs each task as a command built from a template.
#[derive(Debug, Clone)]
pub struct CommandRunner {
    argv: Vec<String>,
}

/// Builds a [`CommandRunner`].
#[derive(Debug, Clone, Default)]
pub struct CommandRunnerBuilder {
    template: String,
}

impl CommandRunnerBuilder {
    /// A builder for `template` (split by shell-word rules).
    pub fn new(template: impl Into<String>) -> Self {
        Self {
            template: template.into(),
        }
    }

    /// Splits the template; errors on unbalanced quotes or an empty command.
    pub fn build(self) -> Result<CommandRunner, String> {
        let argv = shlex::split(&self.template).ok_or("unbalanced quotes in --cmd")?;
        Ok(CommandRunner { argv })
    }
}

#[async_trait]
impl SubagentRunner for CommandRunner {
    async fn run(&self, _task: &TaskSpec, _ctx: RunContext) -> Result<TaskOutput, RunError> {
        let _ = &self.argv;
        todo!("engine helper")
    }

    fn name(&self) -> &str {
        "command"
    }
}
