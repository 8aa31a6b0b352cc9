//! Run events and the versioned JSON envelope shared by `--json`, the journal
//! consumers and the C interface.
//!
//! Every event is serialised as
//! `{"v":1,"type":"task_started","seq":3,"ts":"2026-11-25T09:00:00.123Z","run_id":"…","data":{…}}`.
//! Consumers must ignore unknown `type`s and unknown fields; `v` is bumped
//! when the meaning of an existing field changes.
//!
//! The envelope fields: `v` ([`SCHEMA_VERSION`]), `seq` (0-based, one more per
//! event, no gaps), `ts` (RFC 3339 UTC with milliseconds), `run_id` (the run's
//! UUID, also in the journal), `type` ([`RunEvent::type_name`]) and `data`
//! (the variant's fields, documented on each [`RunEvent`] variant). Progress
//! items inside `task_progress` are [`Progress`] values tagged by `kind`.
//!
//! Order: `run_started` first and `run_finished` last (also when interrupted);
//! per task, `task_started` once per attempt, any number of `task_progress`,
//! `task_retrying` between attempts, then exactly one of `task_succeeded` /
//! `task_failed`; a task that never runs gets only `task_skipped`.
//! `docs/events.md` in the repository has the same schema as tables.
//!
//! A full run of three tasks (T001 flaky, T002 failing, T003 skipped because
//! it depends on T002), one event per line:
//!
//! ```
//! # use batch_core::events::{Envelope, RunEvent};
//! let lines = r#"
//! {"v":1,"seq":0,"ts":"2026-11-25T09:00:00.120Z","run_id":"6f1c2a9e","type":"run_started","data":{"file":"task.md","total":3,"waves":2,"jobs":2,"runner":"command","unfinished":[]}}
//! {"v":1,"seq":1,"ts":"2026-11-25T09:00:00.131Z","run_id":"6f1c2a9e","type":"task_started","data":{"id":"T001","title":"Create the model","attempt":1,"wave":0,"group":"Setup"}}
//! {"v":1,"seq":2,"ts":"2026-11-25T09:00:00.133Z","run_id":"6f1c2a9e","type":"task_started","data":{"id":"T002","title":"Parse the hints","attempt":1,"wave":0,"group":"Setup"}}
//! {"v":1,"seq":3,"ts":"2026-11-25T09:00:00.140Z","run_id":"6f1c2a9e","type":"task_progress","data":{"id":"T001","attempt":1,"progress":{"kind":"spawned","pid":41873}}}
//! {"v":1,"seq":4,"ts":"2026-11-25T09:00:00.512Z","run_id":"6f1c2a9e","type":"task_progress","data":{"id":"T001","attempt":1,"progress":{"kind":"output","stream":"stdout","line":"writing src/model.rs"}}}
//! {"v":1,"seq":5,"ts":"2026-11-25T09:00:00.730Z","run_id":"6f1c2a9e","type":"task_progress","data":{"id":"T002","attempt":1,"progress":{"kind":"tool_call","tool":"Write","arg":"src/hints.rs"}}}
//! {"v":1,"seq":6,"ts":"2026-11-25T09:00:01.402Z","run_id":"6f1c2a9e","type":"task_retrying","data":{"id":"T001","attempt":1,"kind":"failed","message":"exit status 1","delay_ms":1000,"counts":true}}
//! {"v":1,"seq":7,"ts":"2026-11-25T09:00:02.409Z","run_id":"6f1c2a9e","type":"task_started","data":{"id":"T001","title":"Create the model","attempt":2,"wave":0,"group":"Setup"}}
//! {"v":1,"seq":8,"ts":"2026-11-25T09:00:02.950Z","run_id":"6f1c2a9e","type":"task_progress","data":{"id":"T001","attempt":2,"progress":{"kind":"usage","usage":{"input_tokens":5120,"output_tokens":812,"cost_usd":0.031,"turns":4}}}}
//! {"v":1,"seq":9,"ts":"2026-11-25T09:00:03.950Z","run_id":"6f1c2a9e","type":"task_succeeded","data":{"id":"T001","attempt":2,"duration_ms":3819,"flaky":true,"usage":{"input_tokens":9876,"output_tokens":1402,"cost_usd":0.058,"turns":7},"parents_checked":[]}}
//! {"v":1,"seq":10,"ts":"2026-11-25T09:00:04.001Z","run_id":"6f1c2a9e","type":"task_failed","data":{"id":"T002","attempt":3,"kind":"timeout","message":"no result within 90s","duration_ms":3868}}
//! {"v":1,"seq":11,"ts":"2026-11-25T09:00:04.002Z","run_id":"6f1c2a9e","type":"task_skipped","data":{"id":"T003","reason":"dependency T002 failed"}}
//! {"v":1,"seq":12,"ts":"2026-11-25T09:00:04.010Z","run_id":"6f1c2a9e","type":"run_finished","data":{"summary":{"total":3,"succeeded":1,"flaky":1,"failed":1,"skipped":1,"interrupted":0,"duration_ms":3890,"usage":null,"cancelled":false}}}
//! "#;
//! let events: Vec<Envelope> = lines
//!     .trim()
//!     .lines()
//!     .map(|l| serde_json::from_str(l).unwrap())
//!     .collect();
//! assert!(matches!(events[0].event, RunEvent::RunStarted { total: 3, .. }));
//! assert!(matches!(events.last().unwrap().event, RunEvent::RunFinished { .. }));
//! // Every line round-trips byte for byte.
//! for (e, l) in events.iter().zip(lines.trim().lines()) {
//!     assert_eq!(e.to_json(), l);
//! }
//! ```

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
    /// The run stopped launching at its spending cap (`--max-cost` /
    /// `--max-tokens`): what was reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capped: Option<String>,
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
        /// Tasks a previous run left unfinished: an attempt the journal shows
        /// started and never ended (that run was killed), or one it interrupted.
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
    /// The task file was edited during the run and the run follows it: a
    /// task not started yet whose text changed runs with the new text; one
    /// removed from the file is not run (it also gets a `task_skipped`); an
    /// unchecked task added to the file is planned into the run where its
    /// wave and dependencies put them.
    PlanChanged {
        /// Tasks not started yet whose text changed: they run as now written.
        changed: Vec<String>,
        /// Tasks not started yet that are gone from the file: not run.
        dropped: Vec<String>,
        /// Unchecked tasks added to the file, now part of the run.
        added: Vec<String>,
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
    /// With worktree isolation: the task's change landed on the run's
    /// integration branch as one commit (its box is checked next).
    TaskLanded {
        /// Task id.
        id: String,
        /// The attempt whose change landed.
        attempt: u32,
        /// The landed commit (`None`: the task changed no file).
        commit: Option<String>,
        /// The branch it landed on (`mdbatch/<run>/integration`).
        branch: String,
        /// Whether the user's checkout was fast-forwarded to it.
        checkout_updated: bool,
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
            RunEvent::PlanChanged { .. } => "plan_changed",
            RunEvent::RateLimited { .. } => "rate_limited",
            RunEvent::TaskLanded { .. } => "task_landed",
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

/// `t` as the envelope's `ts` and the journal's: RFC 3339 UTC with
/// milliseconds (`2026-11-25T09:00:00.123Z`).
///
/// Written out by hand: events and journal lines are stamped several times
/// per task, and the general formatter of the `time` crate cost more than
/// the rest of building an event. Times before 1970 or after 9999 are
/// clamped.
#[cfg(feature = "exec")]
pub(crate) fn rfc3339_millis(t: std::time::SystemTime) -> String {
    let since = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    // 9999-12-31T23:59:59.999Z at most (four digits of year).
    let secs = since.as_secs().min(253_402_300_799);
    let millis = since.subsec_millis();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Howard Hinnant's `civil_from_days`, for days since 1970-01-01 >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let mut out = [0u8; 24];
    let mut put = |at: usize, n: u64, width: usize| {
        let mut n = n;
        for k in (0..width).rev() {
            out[at + k] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, hour, 2);
    put(14, minute, 2);
    put(17, second, 2);
    put(20, u64::from(millis), 3);
    for (at, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        out[at] = c;
    }
    // Only ASCII digits and separators were written.
    String::from_utf8_lossy(&out).into_owned()
}

/// Formats a duration as milliseconds for events.
#[allow(dead_code)] // used by the executor
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(all(test, feature = "exec"))]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::rfc3339_millis;

    fn by_time_crate(t: SystemTime) -> String {
        let fmt = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        time::OffsetDateTime::from(t).format(&fmt).unwrap()
    }

    #[test]
    fn the_timestamp_is_the_time_crates_to_the_millisecond() {
        // Leap days, century years (2100 is not a leap year, 2000 is), the
        // ends of months and years, and a spread of instants between.
        let mut instants: Vec<u64> = vec![
            0,
            951_782_400,   // 2000-02-29
            951_868_799,   // 2000-02-29T23:59:59
            1_709_164_800, // 2024-02-29
            1_735_689_599, // 2024-12-31T23:59:59
            1_735_689_600, // 2025-01-01
            4_107_542_400, // 2100-03-01
            4_107_455_999, // 2100-02-28T23:59:59
            253_402_300_799,
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            instants.push(x % 253_402_300_800);
        }
        for secs in instants {
            for nanos in [0, 999_999, 1_000_000, 123_456_789, 999_999_999] {
                let t = UNIX_EPOCH + Duration::new(secs, nanos);
                assert_eq!(rfc3339_millis(t), by_time_crate(t), "{secs}.{nanos:09}");
            }
        }
        let now = SystemTime::now();
        assert_eq!(rfc3339_millis(now), by_time_crate(now));
    }
}
