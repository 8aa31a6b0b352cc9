//! Multi-line texts shared by the human reporters: the end-of-run summary and
//! the on-demand dump of every running subagent's output (key press, SIGUSR1).

use std::time::Instant;

use batch_core::exec::{Outcome, RunReport};

use super::plain::noun;
use super::state::{Phase, RunState, first_line};
use super::style::{Paint, clean, elapsed, took, usage};

/// Skipped tasks listed by name before the rest are counted.
const SKIPPED_LISTED: usize = 20;

/// The summary: a totals line, then the failed, interrupted, flaky and skipped tasks. Ends with a newline.
pub fn render(report: &RunReport, state: &RunState, p: Paint) -> String {
    let s = &report.summary;
    let mut parts = vec![p.green(&format!("{} succeeded", s.succeeded))];
    if s.flaky > 0 {
        parts[0].push_str(&format!(" ({} flaky)", s.flaky));
    }
    if s.failed > 0 {
        parts.push(p.red(&format!("{} failed", s.failed)));
    }
    if s.skipped > 0 {
        parts.push(p.yellow(&format!("{} skipped", s.skipped)));
    }
    if s.interrupted > 0 {
        parts.push(p.yellow(&format!("{} interrupted", s.interrupted)));
    }
    let head = if s.cancelled {
        p.yellow("interrupted")
    } else {
        p.bold("summary")
    };
    let mut out = format!(
        "{head}: {} {} in {}: {}",
        s.total,
        noun(s.total, "task", "tasks"),
        took(s.duration_ms),
        parts.join(", ")
    );
    if let Some(u) = &s.usage {
        out.push_str(&format!("; {}", usage(u)));
    }
    out.push('\n');

    let title = |id: &str| {
        state
            .titles
            .get(id)
            .map(|t| format!(" {}", first_line(t)))
            .unwrap_or_default()
    };
    for t in report.tasks.iter().filter(|t| t.outcome == Outcome::Failed) {
        let kind = t
            .kind
            .map(|k| k.to_string())
            .unwrap_or_else(|| "failed".into());
        let msg = t.message.as_deref().map(first_line).unwrap_or_default();
        out.push_str(&format!(
            "  {} {}{}: {kind}, {msg} ({} {}; see `mdbatch logs {}`)\n",
            p.red("failed "),
            p.bold(&t.id),
            title(&t.id),
            t.attempts,
            noun(t.attempts as usize, "attempt", "attempts"),
            t.id
        ));
    }
    for t in report
        .tasks
        .iter()
        .filter(|t| t.outcome == Outcome::Interrupted)
    {
        out.push_str(&format!(
            "  {} {}{} (attempt {}; the next run retries it)\n",
            p.yellow("interrupted"),
            p.bold(&t.id),
            title(&t.id),
            t.attempts.max(1)
        ));
    }
    for t in report.tasks.iter().filter(|t| t.flaky) {
        out.push_str(&format!(
            "  {} {}{} (succeeded on attempt {})\n",
            p.yellow("flaky  "),
            p.bold(&t.id),
            title(&t.id),
            t.attempts
        ));
    }
    let skipped: Vec<_> = report
        .tasks
        .iter()
        .filter(|t| t.outcome == Outcome::Skipped)
        .collect();
    for t in skipped.iter().take(SKIPPED_LISTED) {
        out.push_str(&format!(
            "  {} {}: {}\n",
            p.yellow("skipped"),
            p.bold(&t.id),
            t.message
                .as_deref()
                .map(clean)
                .as_deref()
                .unwrap_or("not run")
        ));
    }
    if skipped.len() > SKIPPED_LISTED {
        out.push_str(&format!(
            "  … and {} more skipped\n",
            skipped.len() - SKIPPED_LISTED
        ));
    }
    out
}

/// Every running subagent's output so far, newest last. Ends with a newline.
pub fn dump(state: &RunState, now: Instant, p: Paint) -> String {
    if state.live.is_empty() {
        return format!("{}\n", p.dim("(no subagent is running)"));
    }
    let mut out = String::new();
    for l in state.live.values() {
        let what = match &l.phase {
            Phase::Running => format!("attempt {}, {}", l.attempt, elapsed(now - l.since)),
            Phase::Waiting { reason, .. } => {
                format!("attempt {} failed ({reason}), waiting to retry", l.attempt)
            }
        };
        out.push_str(&format!(
            "{} {} {} {}\n",
            p.cyan("──"),
            p.bold(&l.id),
            first_line(&l.title),
            p.dim(&format!("· {what} ──"))
        ));
        if l.tail.is_empty() {
            out.push_str(&format!("{}\n", p.dim("   (no output yet)")));
        }
        for line in &l.tail {
            out.push_str(&format!("   {line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::testing::env;
    use serde_json::json;

    #[test]
    fn the_summary_names_each_interrupted_task_with_its_title() {
        let mut st = RunState::new();
        let t0 = Instant::now();
        st.apply(
            &env(
                1,
                "task_started",
                json!({"id":"wave-1/a/slow-one","title":"slow \u{1b}[31mone","attempt":1,"wave":0,"group":"a"}),
            ),
            t0,
        );
        let report: RunReport = serde_json::from_value(json!({
            "run_id": "r1",
            "summary": {"total":3,"succeeded":1,"flaky":0,"failed":0,"skipped":1,"interrupted":1,
                        "duration_ms":2000,"usage":null,"cancelled":true},
            "tasks": [
                {"id":"wave-1/a/fast-one","outcome":"succeeded","attempts":1,"kind":null,"message":null,
                 "duration_ms":5,"usage":null,"flaky":false},
                {"id":"wave-1/a/slow-one","outcome":"interrupted","attempts":1,"kind":"cancelled",
                 "message":"interrupted","duration_ms":1900,"usage":null,"flaky":false},
                {"id":"wave-2/a/later","outcome":"skipped","attempts":0,"kind":null,
                 "message":"interrupted","duration_ms":0,"usage":null,"flaky":false}
            ]
        }))
        .unwrap();
        let text = render(&report, &st, Paint { on: false });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "interrupted: 3 tasks in 2.0s: 1 succeeded, 1 skipped, 1 interrupted"
        );
        assert_eq!(
            lines[1],
            "  interrupted wave-1/a/slow-one slow one (attempt 1; the next run retries it)"
        );
        assert_eq!(lines[2], "  skipped wave-2/a/later: interrupted");
    }
}
