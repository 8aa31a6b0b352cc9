//! The run as the reporters see it: every [`Envelope`] folded into counts,
//! the running attempts (with their latest activity and a bounded tail of
//! output), and the retry history (for the JUnit report).
//!
//! Pure data: no terminal, no clock of its own (callers pass `Instant`s), so
//! every reporter shares one tested model.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use batch_core::exec::{Envelope, RunEvent};
use batch_core::{ErrorKind, Progress, Usage};

/// Lines of output kept per running task for the on-demand dump: as many
/// as the core keeps of an attempt.
pub const TAIL_LINES: usize = batch_core::OUTPUT_TAIL_LINES;

/// One failed attempt that was retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryRecord {
    /// The failed attempt.
    pub attempt: u32,
    /// Its kind.
    pub kind: ErrorKind,
    /// Its message.
    pub message: String,
    /// The wait before the next attempt.
    pub delay: Duration,
}

/// Where a task that has started stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// An attempt is running.
    Running,
    /// The last attempt failed; the next starts at `until`.
    Waiting {
        /// When the next attempt is due.
        until: Instant,
        /// `kind: message` of the failed attempt.
        reason: String,
    },
}

/// A task that started and has not finished.
#[derive(Debug, Clone)]
pub struct Live {
    /// Task id.
    pub id: String,
    /// Task text.
    pub title: String,
    /// Current attempt (1-based).
    pub attempt: u32,
    /// 0-based wave.
    pub wave: usize,
    /// When the current attempt started.
    pub since: Instant,
    /// Running or waiting to retry.
    pub phase: Phase,
    /// The newest output line, tool call or message.
    pub activity: Option<String>,
    /// The last [`TAIL_LINES`] lines of output of this task (all attempts).
    pub tail: VecDeque<String>,
    /// Usage the current attempt reported so far.
    pub usage: Option<Usage>,
    /// The last attempt's failure, while a later attempt runs.
    pub last_failure: Option<String>,
    /// Usage of this task's earlier (failed) attempts.
    pub usage_before: Option<Usage>,
}

impl Live {
    /// Usage of every attempt of this task so far.
    pub fn usage_so_far(&self) -> Option<Usage> {
        let mut u = self.usage_before;
        if let Some(cur) = &self.usage {
            add_usage(&mut u, cur);
        }
        u
    }
}

/// The folded run.
#[derive(Debug, Default)]
pub struct RunState {
    /// Task file.
    pub file: String,
    /// Tasks in the plan.
    pub total: usize,
    /// Waves in the plan.
    pub waves: usize,
    /// `--jobs`.
    pub jobs: u32,
    /// Succeeded.
    pub succeeded: usize,
    /// Of those, after a retry.
    pub flaky: usize,
    /// Failed for good.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
    /// Started and not finished, in start order.
    pub live: BTreeMap<u64, Live>,
    /// Usage of finished tasks.
    pub usage_done: Option<Usage>,
    /// Failed attempts that were retried, per task id.
    pub retries: BTreeMap<String, Vec<RetryRecord>>,
    /// The run has been paused by a rate limit until then.
    pub paused_until: Option<Instant>,
    /// Highest wave started (0-based).
    pub wave_started: Option<usize>,
    /// Titles of the tasks that started, by id.
    pub titles: BTreeMap<String, String>,
    /// Attempts of every task that started, by id (the latest attempt number).
    pub attempts: BTreeMap<String, u32>,
    next_key: u64,
}

/// What a reporter should show for an event, beyond the state change.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Nothing to print.
    None,
    /// A task's output line (for `-v`): id, rendered line.
    Output(String, String),
}

impl RunState {
    /// A fresh state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one event in; `now` is when it arrived.
    pub fn apply(&mut self, env: &Envelope, now: Instant) -> Change {
        match &env.event {
            RunEvent::RunStarted {
                file,
                total,
                waves,
                jobs,
                ..
            } => {
                self.file.clone_from(file);
                self.total = *total;
                self.waves = *waves;
                self.jobs = *jobs;
            }
            RunEvent::TaskStarted {
                id,
                title,
                attempt,
                wave,
                ..
            } => {
                self.wave_started = Some(self.wave_started.map_or(*wave, |w| w.max(*wave)));
                self.titles.insert(id.clone(), title.clone());
                self.attempts.insert(id.clone(), *attempt);
                if let Some(live) = self.find_mut(id) {
                    live.attempt = *attempt;
                    live.since = now;
                    live.phase = Phase::Running;
                    live.usage = None;
                    live.activity = None;
                } else {
                    let key = self.next_key;
                    self.next_key += 1;
                    self.live.insert(
                        key,
                        Live {
                            id: id.clone(),
                            title: title.clone(),
                            attempt: *attempt,
                            wave: *wave,
                            since: now,
                            phase: Phase::Running,
                            activity: None,
                            tail: VecDeque::new(),
                            usage: None,
                            last_failure: None,
                            usage_before: None,
                        },
                    );
                }
            }
            RunEvent::TaskProgress { id, progress, .. } => {
                let Some(live) = self.find_mut(id) else {
                    return Change::None;
                };
                match progress {
                    Progress::Usage { usage } => {
                        live.usage = Some(*usage);
                        return Change::None;
                    }
                    Progress::Session { .. } => return Change::None,
                    _ => {}
                }
                let Some(text) = activity_text(progress) else {
                    return Change::None;
                };
                if live.tail.len() == TAIL_LINES {
                    live.tail.pop_front();
                }
                live.tail.push_back(text.clone());
                if !text.trim().is_empty() {
                    live.activity = Some(text.clone());
                }
                return Change::Output(id.clone(), text);
            }
            RunEvent::TaskRetrying {
                id,
                attempt,
                kind,
                message,
                delay_ms,
                ..
            } => {
                let delay = Duration::from_millis(*delay_ms);
                self.retries
                    .entry(id.clone())
                    .or_default()
                    .push(RetryRecord {
                        attempt: *attempt,
                        kind: *kind,
                        message: message.clone(),
                        delay,
                    });
                let reason = format!("{kind}: {}", first_line(message));
                if let Some(live) = self.find_mut(id) {
                    if let Some(u) = live.usage.take() {
                        add_usage(&mut live.usage_before, &u);
                    }
                    live.phase = Phase::Waiting {
                        until: now + delay,
                        reason: reason.clone(),
                    };
                    live.last_failure = Some(reason);
                }
            }
            RunEvent::TaskSucceeded {
                id, flaky, usage, ..
            } => {
                self.succeeded += 1;
                if *flaky {
                    self.flaky += 1;
                }
                let live = self.remove(id);
                // The event's usage covers every attempt; without it, count what
                // the attempts reported while they ran.
                match (usage, live) {
                    (Some(total), _) => add_usage(&mut self.usage_done, total),
                    (None, Some(l)) => {
                        if let Some(u) = l.usage_so_far() {
                            add_usage(&mut self.usage_done, &u);
                        }
                    }
                    (None, None) => {}
                }
            }
            RunEvent::TaskFailed { id, .. } => {
                self.failed += 1;
                if let Some(u) = self.remove(id).and_then(|l| l.usage_so_far()) {
                    add_usage(&mut self.usage_done, &u);
                }
            }
            RunEvent::TaskSkipped { id, .. } => {
                self.skipped += 1;
                self.remove(id);
            }
            RunEvent::PlanChanged { added, .. } => {
                // Added tasks join the run; dropped ones arrive as skips.
                self.total += added.len();
            }
            RunEvent::RateLimited { pause_ms, .. } => {
                self.paused_until = Some(now + Duration::from_millis(*pause_ms));
            }
            _ => {}
        }
        Change::None
    }

    /// Tasks running or waiting to retry.
    pub fn running(&self) -> usize {
        self.live.len()
    }

    /// Tasks not yet started.
    pub fn remaining(&self) -> usize {
        self.total
            .saturating_sub(self.succeeded + self.failed + self.skipped + self.live.len())
    }

    /// Usage of finished tasks plus what running attempts reported so far.
    pub fn usage(&self) -> Option<Usage> {
        let mut total = self.usage_done;
        for l in self.live.values() {
            if let Some(u) = l.usage_so_far() {
                add_usage(&mut total, &u);
            }
        }
        total
    }

    /// The waves tasks are running in now (1-based, lowest and highest), or the
    /// last wave started when nothing runs.
    pub fn wave_span(&self) -> Option<(usize, usize)> {
        let lo = self.live.values().map(|l| l.wave).min();
        let hi = self.live.values().map(|l| l.wave).max();
        match (lo, hi) {
            (Some(lo), Some(hi)) => Some((lo + 1, hi + 1)),
            _ => self.wave_started.map(|w| (w + 1, w + 1)),
        }
    }

    fn find_mut(&mut self, id: &str) -> Option<&mut Live> {
        self.live.values_mut().find(|l| l.id == id)
    }

    fn remove(&mut self, id: &str) -> Option<Live> {
        let key = self
            .live
            .iter()
            .find(|(_, l)| l.id == id)
            .map(|(k, _)| *k)?;
        self.live.remove(&key)
    }
}

fn add_usage(total: &mut Option<Usage>, u: &Usage) {
    match total {
        Some(t) => t.add(u),
        None => *total = Some(*u),
    }
}

/// The first line of a message, cleaned for a human reader: escape codes
/// and control characters (from a subagent's output, which error messages
/// quote) are removed, so they can never recolour or move a terminal's cursor
/// nor reach a piped log.
pub fn first_line(s: &str) -> String {
    super::style::clean(s.lines().next().unwrap_or(""))
        .trim_end()
        .to_string()
}

/// A progress item as one line of text (what `-v`, the dump and the activity
/// column show), or `None` for items that are not activity.
pub fn activity_text(p: &Progress) -> Option<String> {
    Some(match p {
        Progress::Output { line, .. } => super::style::clean(line),
        Progress::ToolCall { tool, arg } => match arg {
            Some(a) => super::style::clean(&format!("{tool} {a}")),
            None => super::style::clean(tool),
        },
        Progress::Message { text } => first_line(text),
        Progress::ApiRetry {
            attempt,
            status,
            error,
            ..
        } => {
            let mut s = format!("API retry {attempt}");
            if let Some(st) = status {
                s.push_str(&format!(" ({st})"));
            }
            if let Some(e) = error {
                s.push_str(": ");
                s.push_str(&first_line(e));
            }
            s
        }
        Progress::Adjusted { what } => format!("adjusted: {what}"),
        Progress::Spawned { pid } => format!("started, pid {pid}"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::testing::{env, sample_run};
    use serde_json::json;

    #[test]
    fn folding_a_run_counts_every_outcome_and_leaves_nothing_running() {
        let t0 = Instant::now();
        let mut st = RunState::new();
        for e in sample_run() {
            st.apply(&e, t0);
        }
        assert_eq!((st.total, st.waves), (4, 2));
        assert_eq!(st.succeeded, 2);
        assert_eq!(st.flaky, 1);
        assert_eq!(st.failed, 1);
        assert_eq!(st.skipped, 1);
        assert_eq!(st.running(), 0);
        assert_eq!(st.remaining(), 0);
        let u = st.usage().expect("usage reported");
        // T001's success event carries the total of both attempts.
        assert_eq!(u.input_tokens, 1500);
        assert_eq!(u.cost_usd, Some(0.3));
        assert_eq!(st.retries["T001"][0].attempt, 1);
        assert_eq!(st.retries["T001"][0].message, "exit status 1\nmore");
    }

    #[test]
    fn a_retried_task_waits_then_runs_its_next_attempt_on_the_same_line() {
        let t0 = Instant::now();
        let mut st = RunState::new();
        let run = sample_run();
        for e in &run[..6] {
            st.apply(e, t0);
        }
        let l = st.live.values().find(|l| l.id == "T001").unwrap();
        match &l.phase {
            Phase::Waiting { until, reason } => {
                assert_eq!(*until, t0 + Duration::from_secs(1));
                assert_eq!(reason, "failed: exit status 1");
            }
            other => panic!("expected waiting, got {other:?}"),
        }
        st.apply(&run[6], t0 + Duration::from_secs(1));
        assert_eq!(st.running(), 2);
        let l = st.live.values().find(|l| l.id == "T001").unwrap();
        assert_eq!(l.attempt, 2);
        assert_eq!(l.phase, Phase::Running);
        assert_eq!(l.since, t0 + Duration::from_secs(1));
        // The first attempt's output stays in the tail for the dump.
        assert_eq!(l.tail.back().map(String::as_str), Some("writing model.rs"));
        assert_eq!(l.last_failure.as_deref(), Some("failed: exit status 1"));
    }

    #[test]
    fn activity_is_the_newest_output_line_or_tool_call() {
        let t0 = Instant::now();
        let mut st = RunState::new();
        for e in &sample_run()[..5] {
            st.apply(e, t0);
        }
        let act: Vec<_> = st
            .live
            .values()
            .map(|l| l.activity.clone().unwrap())
            .collect();
        assert_eq!(act, ["writing model.rs", "Write src/hints.rs"]);
    }

    #[test]
    fn the_output_tail_is_bounded() {
        let t0 = Instant::now();
        let mut st = RunState::new();
        st.apply(
            &env(
                0,
                "task_started",
                json!({"id":"a","title":"A","attempt":1,"wave":0,"group":"g"}),
            ),
            t0,
        );
        for i in 0..(TAIL_LINES + 25) {
            let c = st.apply(
                &env(
                    1,
                    "task_progress",
                    json!({"id":"a","attempt":1,"progress":{"kind":"output","stream":"stderr","line":format!("line {i}")}}),
                ),
                t0,
            );
            assert_eq!(c, Change::Output("a".into(), format!("line {i}")));
        }
        let l = st.live.values().next().unwrap();
        assert_eq!(l.tail.len(), TAIL_LINES);
        assert_eq!(l.tail.front().unwrap(), "line 25");
    }

    #[test]
    fn usage_of_running_attempts_counts_toward_the_total() {
        let t0 = Instant::now();
        let mut st = RunState::new();
        for e in &sample_run()[..8] {
            st.apply(e, t0);
        }
        assert_eq!(st.usage().unwrap().input_tokens, 1000);
    }

    #[test]
    fn progress_for_an_unknown_task_is_ignored() {
        let mut st = RunState::new();
        let c = st.apply(
            &env(0, "task_progress", json!({"id":"x","attempt":1,"progress":{"kind":"output","stream":"stdout","line":"hi"}})),
            Instant::now(),
        );
        assert_eq!(c, Change::None);
    }
}
