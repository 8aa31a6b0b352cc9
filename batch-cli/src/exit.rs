//! Exit codes, in one place.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | all done |
//! | 1 | a task failed or was skipped; `check` found errors |
//! | 2 | usage, parse or plan error; the file is locked or not writable |
//! | 3 | the run stopped at its spending cap (`--max-cost`, `--max-tokens`) |
//! | 124 | `wait --timeout`: the run is still going |
//! | 130 | interrupted (Ctrl-C / SIGTERM / SIGHUP / `mdbatch stop`) |

/// Everything done.
pub const SUCCESS: u8 = 0;
/// A task failed or was skipped; `check` found errors.
pub const TASKS_FAILED: u8 = 1;
/// Usage, parse or plan error; locked; not writable.
pub const USAGE: u8 = 2;
/// Interrupted.
pub const INTERRUPTED: u8 = 130;
/// `wait --timeout` gave up; the run goes on.
pub const TIMED_OUT: u8 = 124;
/// The run stopped launching at its spending cap.
pub const CAPPED: u8 = 3;
