//! The verify step: a user's command that must pass after a subagent reports
//! success, before the task's box is checked.

use super::process::{ProcessCommand, spawn_streaming};
use super::{Progress, RunContext, TaskOutput, TaskSpec};
use crate::error::{ErrorKind, RunError};

type AttemptResult = Result<TaskOutput, RunError>;

/// Runs the verify command (`sh -c CMD`: the user wrote it as a shell command;
/// no task text is substituted into it) in the task's folder with the task's
/// `MDBATCH_*` variables.
pub(crate) async fn run_verify(verify: &str, spec: &TaskSpec, ctx: &RunContext) -> AttemptResult {
    let mut vctx = ctx.clone();
    vctx.log_path = ctx
        .log_path
        .as_ref()
        .map(|p| p.with_extension("verify.log"));
    let progress_file = super::command::progress_file_for(spec, &vctx);
    let cmd = ProcessCommand {
        argv: vec!["sh".into(), "-c".into(), verify.to_string()],
        env: super::command::task_env(spec, ctx.attempt, &progress_file),
        workdir: Some(spec.workdir().to_path_buf()),
        progress_file: None,
        stdin: None,
    };
    let sink = ctx.progress.clone();
    sink.line(format!("verify: {verify}"));
    let exit = spawn_streaming(&cmd, &vctx, |stream, line| {
        sink.send(Progress::Output {
            stream,
            line: format!("verify: {line}"),
        });
    })
    .await?;
    if let Some(e) = exit.stop_error(&format!("verify `{verify}`")) {
        return Err(e);
    }
    if exit.code() == Some(0) {
        return Ok(TaskOutput::default());
    }
    let last = exit
        .tail
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default();
    Err(RunError::new(
        ErrorKind::Failed,
        format!("verify `{verify}` failed with {}{last}", exit.describe()),
    )
    .with_output_tail(exit.tail_opt()))
}
