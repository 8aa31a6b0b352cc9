//! Run events and the versioned JSON envelope shared by `--json`, the journal
//! consumers and the C interface.
//!
//! Every event is serialised as
//! `{"v":1,"type":"task_started","seq":3,"ts":"2026-11-25T09:00:00.123Z","run_id":"…","data":{…}}`.
//! Consumers must ignore unknown `type`s and unknown fields; `v` is bumped
//! when the meaning of an existing field changes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::runner::{Progress, Usage};

/// The schema version of [`Envelope`] and the plan JSON.
pub const SCHEMA_VERSION: u32 = 1;

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Succeeded (box checked).
    Succeeded,
    /// Failed after its retries.
    Failed,
    /// Not run: a dependency failed, or the run stopped.
    Skipped,
    /// Interrupted by Ctrl-C / cancellation.
    Interrupted,
}

/// Totals at the end of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunSummary {
    /// Tasks in the plan.
    pub total: usize,
    /// Succeeded in this run.
    pub succeeded: usize,
    /// Of those, succeeded only after a retry.
    pub flaky: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
    /// Interrupted.
    pub interrupted: usize,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Summed usage, when any agent reported it.
    pub usage: Option<Usage>,
    /// The run was interrupted.
    pub cancelled: bool,
}

/// A lifecycle or progress event of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "data")]
#[non_exhaustive]
pub enum RunEvent {
    /// The run starts.
    RunStarted {
        /// The task file.
        file: String,
        /// Tasks to run.
        total: usize,
        /// Waves in the plan.
        waves: usize,
        /// `--jobs`.
        jobs: u32,
        /// The runner's name.
        runner: String,
        /// Attempts the journal shows started and never finished (a previous run was killed).
        unfinished: Vec<String>,
    },
    /// An attempt starts.
    TaskStarted {
        /// Task id.
        id: String,
        /// Task text.
        title: String,
        /// 1-based attempt.
        attempt: u32,
        /// Wave index (0-based).
        wave: usize,
        /// Group title.
        group: String,
    },
    /// Live progress of a running attempt.
    TaskProgress {
        /// Task id.
        id: String,
        /// Attempt.
        attempt: u32,
        /// What happened.
        progress: Progress,
    },
    /// An attempt failed and another will follow after `delay_ms`.
    TaskRetrying {
        /// Task id.
        id: String,
        /// The attempt that failed.
        attempt: u32,
        /// Its kind.
        kind: ErrorKind,
        /// Its message.
        message: String,
        /// Wait before the next attempt.
        delay_ms: u64,
        /// Whether this retry spends the task's retry budget (rate limits do not).
        counts: bool,
    },
    /// The task succeeded and its box is checked.
    TaskSucceeded {
        /// Task id.
        id: String,
        /// The successful attempt.
        attempt: u32,
        /// Duration of the task, all attempts, in ms.
        duration_ms: u64,
        /// Succeeded only after a retry.
        flaky: bool,
        /// Usage over all attempts, when known.
        usage: Option<Usage>,
        /// Parent tasks checked as a consequence.
        parents_checked: Vec<String>,
    },
    /// The task failed for good.
    TaskFailed {
        /// Task id.
        id: String,
        /// The last attempt.
        attempt: u32,
        /// Its kind.
        kind: ErrorKind,
        /// Its message.
        message: String,
        /// Duration of the task, all attempts, in ms.
        duration_ms: u64,
    },
    /// The task will not run.
    TaskSkipped {
        /// Task id.
        id: String,
        /// Why (`dependency T003 failed`, `--fail-fast`, `interrupted`).
        reason: String,
    },
    /// The account is rate limited: launches pause.
    RateLimited {
        /// How long launches pause, ms.
        pause_ms: u64,
        /// The effective concurrency from now on.
        concurrency: u32,
        /// The task whose error triggered it.
        id: String,
    },
    /// A non-fatal problem (write-back, journal) worth showing.
    Warning {
        /// The message.
        message: String,
    },
    /// The run ends.
    RunFinished {
        /// Totals.
        summary: RunSummary,
    },
}

impl RunEvent {
    /// The `type` string of the event.
    pub fn type_name(&self) -> &'static str {
        match self {
            RunEvent::RunStarted { .. } => "run_started",
            RunEvent::TaskStarted { .. } => "task_started",
            RunEvent::TaskProgress { .. } => "task_progress",
            RunEvent::TaskRetrying { .. } => "task_retrying",
            RunEvent::TaskSucceeded { .. } => "task_succeeded",
            RunEvent::TaskFailed { .. } => "task_failed",
            RunEvent::TaskSkipped { .. } => "task_skipped",
            RunEvent::RateLimited { .. } => "rate_limited",
            RunEvent::Warning { .. } => "warning",
            RunEvent::RunFinished { .. } => "run_finished",
        }
    }
}

/// An event with its envelope: version, sequence number, timestamp, run id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Envelope {
    /// [`SCHEMA_VERSION`].
    pub v: u32,
    /// 0-based, increasing by one per event of the run.
    pub seq: u64,
    /// RFC 3339 UTC timestamp with milliseconds.
    pub ts: String,
    /// The run's id (a UUID).
    pub run_id: String,
    /// The event (`type` + `data`, flattened into the envelope).
    #[serde(flatten)]
    pub event: RunEvent,
}

impl Envelope {
    /// The envelope as one JSON line (no trailing newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events serialise to JSON")
    }
}

/// Formats a duration as milliseconds for events.
#[allow(dead_code)] // used by the executor
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
