//! `mdbatch stop`: end the run in progress (a detached one or any other):
//! gracefully first, at once on a second stop or with `--now`.

use crate::args::{ColorChoice, StopArgs};
use crate::cmd::detach;
use crate::exit;
use crate::resolve;

/// Runs `mdbatch stop`.
pub fn run(args: &StopArgs, _color: ColorChoice) -> anyhow::Result<u8> {
    let path = resolve::task_file(args.file.as_deref())?;
    let s = detach::stop(&path, args.now)?;
    let run = s.run_id.as_deref().unwrap_or("?");
    if s.forced {
        println!(
            "stopping run {run} (pid {}) now: running subagents are killed",
            s.pid
        );
    } else {
        println!(
            "stopping run {run} (pid {}): running subagents are ended gracefully; \
             `mdbatch stop --now` to end it at once, `mdbatch wait` to see it end",
            s.pid
        );
    }
    Ok(exit::SUCCESS)
}
