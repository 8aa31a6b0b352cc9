//! `mdbatch wait`: block until the run in progress ends (or `--timeout`),
//! printing one line per change, then the summary. The exit code says how
//! it ended: the run's own code when it finished, 124 when the timeout came
//! first (the run goes on).

use crate::args::{ColorChoice, WaitArgs};
use crate::cmd::detach::{self, WaitEnd};
use crate::exit;
use crate::resolve;

/// Runs `mdbatch wait`.
pub fn run(args: &WaitArgs, _color: ColorChoice) -> anyhow::Result<u8> {
    let path = resolve::task_file(args.file.as_deref())?;
    let (end, status) = detach::wait(
        &path,
        args.timeout,
        |s| {
            if s.running.is_some() {
                eprintln!("{}", detach::summary_line(s));
            }
        },
        &|| false,
    )?;
    let line = detach::summary_line(&status);
    match end {
        WaitEnd::TimedOut => {
            let run = status
                .running
                .as_ref()
                .and_then(|r| r.run_id.clone())
                .unwrap_or_else(|| "?".into());
            println!("still running (run {run}): {line}");
            Ok(exit::TIMED_OUT)
        }
        WaitEnd::Finished => Ok(finished(&status, &line)),
    }
}

/// Prints how the last run ended and returns the exit code a foreground run
/// would have had.
fn finished(status: &batch_core::Status, line: &str) -> u8 {
    let Some(run) = &status.last_run else {
        println!("no run yet: {line}");
        return exit::SUCCESS;
    };
    match &run.summary {
        Some(sum) => {
            let how = if sum.cancelled {
                "stopped"
            } else if sum.capped.is_some() {
                "stopped at its cap"
            } else if sum.failed > 0 || sum.skipped > 0 {
                "finished with failures"
            } else {
                "finished"
            };
            println!(
                "run {} {how}: {} succeeded, {} failed, {} skipped, {} interrupted of {}; {line}",
                run.run_id, sum.succeeded, sum.failed, sum.skipped, sum.interrupted, sum.total
            );
            if let Some(what) = &sum.capped {
                println!("{what}");
            }
            if sum.cancelled {
                exit::INTERRUPTED
            } else if sum.capped.is_some() {
                exit::CAPPED
            } else if sum.failed > 0 || sum.skipped > 0 {
                exit::TASKS_FAILED
            } else {
                exit::SUCCESS
            }
        }
        None => {
            println!(
                "run {} never finished (killed); {line}; `mdbatch run` again resumes it",
                run.run_id
            );
            exit::INTERRUPTED
        }
    }
}
