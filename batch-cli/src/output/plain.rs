//! Plain timestamped lines, for stderr that is not a terminal (CI logs, pipes,
//! files) and for people watching `--json` runs: one line per lifecycle event,
//! no cursor movement, no escape codes unless `--color always`.
//!
//! ```text
//! 2026-11-25T09:00:00.120Z run: 3 tasks from task.md in 2 waves, 4 at a time (command)
//! 2026-11-25T09:00:00.131Z T001 started: Create the model
//! 2026-11-25T09:00:01.402Z T001 retrying in 1.0s: failed: exit status 1 (attempt 1)
//! 2026-11-25T09:00:02.409Z T001 started: Create the model (attempt 2)
//! 2026-11-25T09:00:03.950Z T001 succeeded in 3.8s (flaky: succeeded on attempt 2)
//! 2026-11-25T09:00:04.001Z T002 failed: timeout, no output for 90s (attempt 3, 1m32s)
//! 2026-11-25T09:00:04.002Z T003 skipped: dependency T002 failed
//! ```

use std::io::Write;
use std::time::Instant;

use batch_core::exec::{Envelope, RunEvent, RunReport};

use super::state::{Change, RunState, first_line};
use super::style::{Paint, clean, clean_lines, took};
use super::summary;

/// The plain reporter.
pub struct Plain {
    out: Box<dyn Write + Send>,
    paint: Paint,
    tag_output: bool,
    /// Only warnings (the `--json` case without a terminal).
    quiet: bool,
}

impl Plain {
    /// Lines to `out`.
    pub fn new(out: Box<dyn Write + Send>, paint: Paint, tag_output: bool, quiet: bool) -> Self {
        Self {
            out,
            paint,
            tag_output,
            quiet,
        }
    }

    /// Prints what an event says (after it was applied to `state`).
    pub fn event(&mut self, env: &Envelope, state: &RunState, change: &Change) {
        let text = match change {
            Change::Output(id, line) if self.tag_output => Some(format!("[{id}] {line}")),
            _ => line(env, state, self.paint),
        };
        let Some(text) = text else { return };
        if self.quiet && !matches!(env.event, RunEvent::Warning { .. }) {
            return;
        }
        // One write per line (stderr is unbuffered: `writeln!` would make
        // one per piece). A log that cannot be written (closed pipe) must
        // not stop the run.
        let line = format!("{} {text}\n", env.ts);
        let _ = self.out.write_all(line.as_bytes());
        let _ = self.out.flush();
    }

    /// Prints every running task's output so far.
    pub fn dump(&mut self, state: &RunState, now: Instant) {
        let _ = self
            .out
            .write_all(summary::dump(state, now, self.paint).as_bytes());
        let _ = self.out.flush();
    }

    /// Prints the summary.
    pub fn finish(&mut self, report: &RunReport, state: &RunState) {
        if self.quiet {
            return;
        }
        let _ = write!(
            self.out,
            "{} {}",
            batch_core::now_rfc3339(),
            summary::render(report, state, self.paint)
        );
        let _ = self.out.flush();
    }
}

/// The line for one event, without its timestamp; `None` for events that get no line.
pub fn line(env: &Envelope, state: &RunState, p: Paint) -> Option<String> {
    Some(match &env.event {
        RunEvent::RunStarted {
            file,
            total,
            waves,
            jobs,
            runner,
            unfinished,
        } => {
            let mut s = format!(
                "run: {total} {} from {file} in {waves} {}, {jobs} at a time ({runner})",
                noun(*total, "task", "tasks"),
                noun(*waves, "wave", "waves")
            );
            if !unfinished.is_empty() {
                s.push_str(&format!(
                    "; a previous run left {} unfinished, retrying: {}",
                    unfinished.len(),
                    unfinished.join(", ")
                ));
            }
            s
        }
        RunEvent::TaskStarted {
            id, title, attempt, ..
        } => {
            let mut s = format!("{} started: {}", p.bold(id), first_line(title));
            if *attempt > 1 {
                s.push_str(&format!(" (attempt {attempt})"));
            }
            s
        }
        RunEvent::TaskProgress { .. } => return None,
        RunEvent::TaskRetrying {
            id,
            attempt,
            kind,
            message,
            delay_ms,
            counts,
        } => {
            let mut s = format!(
                "{} {}: {kind}: {} (attempt {attempt})",
                p.bold(id),
                p.yellow(&format!("retrying in {}", took(*delay_ms))),
                first_line(message)
            );
            if !counts {
                s.push_str(", not counted against its retries");
            }
            s
        }
        RunEvent::TaskSucceeded {
            id,
            attempt,
            duration_ms,
            flaky,
            usage,
            parents_checked,
        } => {
            let mut s = format!(
                "{} {} in {}",
                p.bold(id),
                p.green("succeeded"),
                took(*duration_ms)
            );
            if *flaky {
                s.push_str(&format!(
                    " ({}: succeeded on attempt {attempt})",
                    p.yellow("flaky")
                ));
            }
            if let Some(u) = usage {
                s.push_str(&format!(", {}", super::style::usage(u)));
            }
            if !parents_checked.is_empty() {
                s.push_str(&format!("; checked {}", parents_checked.join(", ")));
            }
            s
        }
        RunEvent::TaskFailed {
            id,
            attempt,
            kind,
            message,
            duration_ms,
        } => format!(
            "{} {}: {kind}, {} (attempt {attempt}, {})",
            p.bold(id),
            p.red("failed"),
            first_line(message),
            took(*duration_ms)
        ),
        RunEvent::TaskSkipped { id, reason } => {
            format!("{} {}: {}", p.bold(id), p.yellow("skipped"), clean(reason))
        }
        RunEvent::RateLimited {
            pause_ms,
            concurrency,
            id,
        } => format!(
            "{}: launches paused for {} (after {id}), at most {concurrency} at a time",
            p.yellow("rate limited"),
            took(*pause_ms)
        ),
        RunEvent::Warning { message } => {
            format!("{}: {}", p.yellow("warning"), clean_lines(message))
        }
        RunEvent::PlanChanged {
            changed,
            dropped,
            added,
        } => {
            // Each list says what this run does with those tasks: added ones
            // join it, dropped ones are not run, changed ones run as now
            // written.
            let mut parts = Vec::new();
            if !added.is_empty() {
                parts.push(format!("added {} (joins this run)", added.join(", ")));
            }
            if !dropped.is_empty() {
                parts.push(format!("dropped {} (not run)", dropped.join(", ")));
            }
            if !changed.is_empty() {
                parts.push(format!(
                    "changed {} (runs as now written)",
                    changed.join(", ")
                ));
            }
            format!("{}: {}", p.yellow("task file edited"), parts.join("; "))
        }
        RunEvent::TaskLanded {
            id,
            commit,
            branch,
            checkout_updated,
            ..
        } => match commit {
            Some(c) => format!(
                "{} {} as {} on {branch}{}",
                p.bold(id),
                p.green("landed"),
                &c[..c.len().min(10)],
                if *checkout_updated {
                    ", your checkout is up to date"
                } else {
                    ""
                }
            ),
            None => format!("{} {}: it changed no file", p.bold(id), p.green("landed")),
        },
        RunEvent::RunFinished { .. } => return None,
        _ => {
            let _ = state;
            return None;
        }
    })
}

/// `1 task`, `2 tasks`.
/// The word for `n` things: `one` or `many` (without the number).
pub fn noun(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::testing::{sample_report, sample_run};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn run(tag: bool, quiet: bool, color: bool) -> String {
        let buf = Buf::default();
        let mut p = Plain::new(Box::new(buf.clone()), Paint { on: color }, tag, quiet);
        let mut st = RunState::new();
        let t0 = Instant::now();
        for e in sample_run() {
            let c = st.apply(&e, t0);
            p.event(&e, &st, &c);
        }
        p.finish(&sample_report(), &st);
        buf.text()
    }

    #[test]
    fn plain_lines_are_timestamped_and_say_what_happened() {
        let out = run(false, false, false);
        let lines: Vec<&str> = out.lines().collect();
        let expected = [
            "2026-11-25T09:00:00.000Z run: 4 tasks from task.md in 2 waves, 2 at a time (command)",
            "2026-11-25T09:00:01.000Z T001 started: Create the model",
            "2026-11-25T09:00:02.000Z T002 started: Parse hints",
            "2026-11-25T09:00:05.000Z T001 retrying in 1.0s: failed: exit status 1 (attempt 1)",
            "2026-11-25T09:00:06.000Z T001 started: Create the model (attempt 2)",
            "2026-11-25T09:00:08.000Z T001 succeeded in 2.3s (flaky: succeeded on attempt 2), 1.8k tokens, $0.30",
            "2026-11-25T09:00:09.000Z T002 failed: fatal, claude: not found (attempt 1, 40ms)",
            "2026-11-25T09:00:10.000Z T003 skipped: dependency T002 failed",
            "2026-11-25T09:00:11.000Z T004 started: Docs",
            "2026-11-25T09:00:12.000Z T004 succeeded in 500ms; checked T000",
        ];
        assert_eq!(&lines[..expected.len()], &expected);
        let summary = &lines[expected.len()..];
        assert!(
            summary[0].ends_with(
                " summary: 4 tasks in 3.1s: 2 succeeded (1 flaky), 1 failed, 1 skipped; 1.8k tokens, $0.30"
            ),
            "{summary:?}"
        );
        assert_eq!(
            summary[1],
            "  failed  T002 Parse hints: fatal, claude: not found (1 attempt; see `mdbatch logs T002`)"
        );
        assert_eq!(
            summary[2],
            "  flaky   T001 Create the model (succeeded on attempt 2)"
        );
        assert_eq!(summary[3], "  skipped T003: dependency T002 failed");
    }

    #[test]
    fn plain_output_has_no_escape_codes_without_colour() {
        assert!(!run(true, false, false).contains('\x1b'));
        assert!(run(false, false, true).contains('\x1b'));
    }

    #[test]
    fn verbose_tags_every_output_line_with_its_task_id() {
        let out = run(true, false, false);
        assert!(
            out.contains("2026-11-25T09:00:03.000Z [T001] writing model.rs\n"),
            "{out}"
        );
        assert!(
            out.contains("2026-11-25T09:00:04.000Z [T002] Write src/hints.rs\n"),
            "{out}"
        );
        assert!(!run(false, false, false).contains("[T001]"));
    }

    #[test]
    fn quiet_prints_nothing_but_warnings() {
        let buf = Buf::default();
        let mut p = Plain::new(Box::new(buf.clone()), Paint { on: false }, false, true);
        let mut st = RunState::new();
        let t0 = Instant::now();
        let mut evs = sample_run();
        evs.push(crate::output::testing::env(
            99,
            "warning",
            serde_json::json!({"message":"journal: disk full"}),
        ));
        for e in evs {
            let c = st.apply(&e, t0);
            p.event(&e, &st, &c);
        }
        p.finish(&sample_report(), &st);
        assert_eq!(
            buf.text(),
            "2026-11-25T09:00:39.000Z warning: journal: disk full\n"
        );
    }

    #[test]
    fn an_edited_task_file_is_announced_with_what_this_run_does_with_each_task() {
        let st = RunState::new();
        let p = Paint { on: false };
        let ev = |data| crate::output::testing::env(7, "plan_changed", data);
        let all = ev(serde_json::json!({"changed":["b"],"dropped":["c","x"],"added":["d"]}));
        assert_eq!(
            line(&all, &st, p).as_deref(),
            Some(
                "task file edited: added d (joins this run); dropped c, x (not run); \
                 changed b (runs as now written)"
            )
        );
        let added = ev(serde_json::json!({"changed":[],"dropped":[],"added":["c"]}));
        let text = line(&added, &st, p).unwrap();
        assert_eq!(text, "task file edited: added c (joins this run)");
        assert!(!text.contains("next run"), "{text}");
    }

    #[test]
    fn the_dump_shows_each_running_task_output_so_far() {
        let mut st = RunState::new();
        let t0 = Instant::now();
        for e in &sample_run()[..5] {
            st.apply(e, t0);
        }
        let text = summary::dump(
            &st,
            t0 + std::time::Duration::from_secs(3),
            Paint { on: false },
        );
        assert_eq!(
            text,
            "── T001 Create the model · attempt 1, 3s ──\n   writing model.rs\n\
             ── T002 Parse hints · attempt 1, 3s ──\n   Write src/hints.rs\n"
        );
    }
}
