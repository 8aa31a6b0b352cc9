//! The `shell` runner: a task whose text is a single inline code span
//! (`` - [ ] `cargo test -p core` ``) runs that code with `sh -c`.
//!
//! This is the one runner that hands task text to a shell, and only because
//! the user chose it (`--runner shell`) for a task file that is a script. A
//! task that is anything but one code span is a `Fatal` error with a message
//! saying so; nothing is guessed.

use async_trait::async_trait;
use pulldown_cmark::{Event, Parser, Tag, TagEnd};

use crate::error::{ErrorKind, RunError};
use crate::runner::command::{classify_exit, progress_file_for, task_env};
use crate::runner::process::{ProcessCommand, spawn_streaming};
use crate::runner::{Progress, RunContext, SubagentRunner, TaskOutput, TaskSpec};

/// Runs each task's inline code span with `sh -c`.
#[derive(Debug, Clone, Default)]
pub struct ShellRunner {
    _private: (),
}

impl ShellRunner {
    /// A shell runner.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The code of a task text that is exactly one inline code span.
pub fn task_command(text: &str) -> Option<String> {
    let mut code = None;
    for ev in Parser::new(text.trim()) {
        match ev {
            Event::Start(Tag::Paragraph) | Event::End(TagEnd::Paragraph) => {}
            Event::Code(c) if code.is_none() => code = Some(c.to_string()),
            _ => return None,
        }
    }
    code.filter(|c| !c.trim().is_empty())
}

#[async_trait]
impl SubagentRunner for ShellRunner {
    async fn run(&self, task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError> {
        let Some(code) = task_command(task.text()) else {
            return Err(RunError::new(
                ErrorKind::Fatal,
                format!(
                    "task {}: the shell runner runs tasks written as one inline code span \
                     (- [ ] `make test`); this task is prose: run it with an agent runner instead",
                    task.id()
                ),
            ));
        };
        let progress_file = progress_file_for(task, &ctx);
        let cmd = ProcessCommand {
            argv: vec!["sh".into(), "-c".into(), code.clone()],
            env: task_env(task, ctx.attempt, &progress_file),
            workdir: Some(task.workdir().to_path_buf()),
            progress_file: Some(progress_file.clone()),
            stdin: None,
        };
        let sink = ctx.progress.clone();
        let exit = spawn_streaming(&cmd, &ctx, |stream, line| {
            sink.send(Progress::Output {
                stream,
                line: line.to_string(),
            });
        })
        .await;
        let _ = std::fs::remove_file(&progress_file);
        let exit = exit?;
        classify_exit(
            &exit,
            &format!("`{}`", crate::runner::presets::summary_line(&code, 60)),
        )?;
        Ok(TaskOutput {
            summary: crate::util::last_line(&exit.tail)
                .map(|l| crate::runner::presets::summary_line(l, 200)),
            output_tail: exit.tail_opt(),
            ..TaskOutput::default()
        })
    }

    fn name(&self) -> &str {
        "shell"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_single_code_span_is_a_command() {
        assert_eq!(
            task_command("`cargo test -p core`").as_deref(),
            Some("cargo test -p core")
        );
        assert_eq!(
            task_command("`` echo `date` ``").as_deref(),
            Some("echo `date`")
        );
        assert_eq!(task_command("run `cargo test`"), None);
        assert_eq!(task_command("`a` and `b`"), None);
        assert_eq!(task_command("Write the README"), None);
        assert_eq!(task_command("``"), None);
    }
}
