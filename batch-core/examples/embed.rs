//! Embedding batch-core in a Rust program: a custom subagent, live events
//! consumed as a stream on a thread of their own, and the report at the end.
//! Piped into `head`, the event printer stops when stdout closes; the run
//! goes on to its report.
//!
//! ```sh
//! cargo run -p batch-core --example embed -- path/to/tasks.md
//! ```
//!
//! The runner here pretends to work for a moment and succeeds; a real one
//! would call an agent, an API or a cluster scheduler.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use batch_core::{
    ExecutorBuilder, RunContext, RunError, RunOptions, SubagentRunner, TaskOutput, TaskSpec,
};

struct Pretend;

#[batch_core::async_trait]
impl SubagentRunner for Pretend {
    async fn run(&self, task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError> {
        ctx.progress.line(format!("thinking about {}", task.id()));
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
    let mut executor = match ExecutorBuilder::new(path)
        .options(options)
        .runner(Arc::new(Pretend))
        .build()
    {
        Ok(executor) => executor,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // The stream never stalls the run, however slow this thread is.
    let mut events = executor.events();
    let printer = std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        while let Some(event) = events.blocking_next() {
            if writeln!(out, "{}", event.to_json()).is_err() {
                break; // stdout closed (`| head`): stop printing, not the run
            }
        }
    });
    let result = executor.run_blocking();
    let _ = printer.join();
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
