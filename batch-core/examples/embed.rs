//! Embedding batch-core in a Rust program: a custom subagent, live events,
//! and the report at the end.
//!
//! ```sh
//! cargo run -p batch-core --example embed -- path/to/tasks.md
//! ```
//!
//! The runner here pretends to work for a moment and succeeds; a real one
//! would call an agent, an API or a cluster scheduler.

use std::sync::Arc;
use std::time::Duration;

use batch_core::{
    ExecutorBuilder, RunContext, RunError, RunOptions, SubagentRunner, TaskOutput, TaskSpec,
};

struct Pretend;

#[batch_core::async_trait]
impl SubagentRunner for Pretend {
    async fn run(&self, task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError> {
        ctx.progress.line(format!("thinking about {}", task.id));
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            () = ctx.cancel.cancelled() => {
                return Err(RunError::new(batch_core::ErrorKind::Cancelled, "stopped"));
            }
        }
        ctx.progress.line("done");
        Ok(TaskOutput::default())
    }

    fn name(&self) -> &str {
        "pretend"
    }
}

fn main() -> std::process::ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: embed TASK_FILE");
        return std::process::ExitCode::from(2);
    };
    let options = RunOptions::new().with_jobs(2);
    let result = ExecutorBuilder::new(path)
        .options(options)
        .runner(Arc::new(Pretend))
        .on_event(|event| println!("{}", event.to_json()))
        .build()
        .and_then(|executor| executor.run_blocking());
    match result {
        Ok(report) => {
            eprintln!(
                "{} succeeded, {} failed, {} skipped",
                report.summary.succeeded, report.summary.failed, report.summary.skipped
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
