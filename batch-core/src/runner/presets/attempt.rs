//! Retries with adjusted parameters: the session, prompt and turn budget of
//! each attempt, from the previous attempt's error (see the module docs of
//! [`presets`](super)).

use super::agent::{AttemptPlan, Caps, Session};
use super::classify::{summary_line, tail_chars};
use crate::error::{ErrorKind, RunError};
use crate::runner::{RunContext, TaskSpec};

/// Details longer than this are cut after a context overflow (halved on each
/// further overflow).
pub(crate) const DETAILS_LIMIT: usize = 2000;
/// How much of the previous attempt's output a retry prompt carries.
pub(crate) const TAIL_FOR_PROMPT: usize = 2000;
/// The turn budget after a turn limit when none was set.
const DEFAULT_TURN_BUMP: u32 = 20;

/// Decides the session, prompt and turn budget of an attempt (see the module docs).
pub(crate) fn plan_attempt(
    task: &TaskSpec,
    ctx: &RunContext,
    caps: Caps,
    base_max_turns: Option<u32>,
) -> AttemptPlan {
    let fresh = || {
        Session::Fresh(
            caps.chooses_session_id
                .then(|| uuid::Uuid::new_v4().to_string()),
        )
    };
    let mut plan = AttemptPlan {
        session: fresh(),
        prompt: task.prompt().to_string(),
        max_turns: base_max_turns,
        adjustments: Vec::new(),
    };
    // `--resume-sessions`: the journal's session of an earlier, unfinished
    // run (whose attempt the executor reports as cancelled, or not at all).
    if let (Some(id), true) = (&ctx.resume_session, caps.resume)
        && ctx
            .previous_error
            .as_ref()
            .is_none_or(|e| e.kind == ErrorKind::Cancelled)
    {
        plan.session = Session::Resume(id.clone());
        plan.prompt = continue_prompt(task, "mdbatch was interrupted while you worked on it");
        plan.adjustments.push(format!(
            "resuming session {id} left unfinished by an earlier run"
        ));
        return plan;
    }
    let Some(prev) = &ctx.previous_error else {
        return plan;
    };
    let prev_session = prev.session_id.clone().filter(|_| caps.resume);
    match prev.kind {
        ErrorKind::TurnLimit => {
            let used = prev.usage.as_ref().and_then(|u| u.turns).unwrap_or(0);
            let doublings = ctx.attempt.saturating_sub(1).min(8);
            let next = match base_max_turns {
                Some(b) => b.max(1).saturating_mul(1 << doublings).max(used + 1),
                None => (used.saturating_mul(2)).max(DEFAULT_TURN_BUMP),
            };
            let mut what = Vec::new();
            if let Some(id) = prev_session {
                what.push(format!("turn limit: resuming session {id}"));
                plan.prompt = continue_prompt(task, "you ran out of turns before finishing");
                plan.session = Session::Resume(id);
            } else {
                what.push("turn limit: fresh session (no session to resume)".to_string());
            }
            if caps.max_turns {
                plan.max_turns = Some(next);
                what.push(match base_max_turns {
                    Some(b) => format!("max turns {next} (was {b})"),
                    None => format!("max turns {next}"),
                });
            }
            plan.adjustments.push(what.join(", "));
        }
        ErrorKind::Transient => match prev_session.filter(|_| {
            // Claude Code keeps a session even when its first request was
            // refused; Gemini CLI only once the model answered.
            !caps.resume_needs_progress || prev.usage.as_ref().is_some_and(|u| u.output_tokens > 0)
        }) {
            Some(id) => {
                plan.prompt = continue_prompt(
                    task,
                    &format!(
                        "the previous attempt stopped on an API error ({})",
                        summary_line(&prev.message, 160)
                    ),
                );
                plan.adjustments.push(format!(
                    "transient error: resuming session {id} after the wait"
                ));
                plan.session = Session::Resume(id);
            }
            None => plan.adjustments.push(
                "transient error: fresh session with the same prompt (no session worth resuming)"
                    .to_string(),
            ),
        },
        ErrorKind::ContextOverflow => {
            let overflows = ctx.attempt.saturating_sub(1).max(1);
            let limit = DETAILS_LIMIT >> (overflows - 1).min(4);
            let (prompt, what) = trim_prompt(task, limit);
            plan.adjustments.push(format!(
                "context overflow: fresh session (never a resume), prompt trimmed from {} to {} chars{what}",
                task.prompt().chars().count(),
                prompt.chars().count()
            ));
            plan.prompt = prompt;
        }
        ErrorKind::Failed | ErrorKind::Timeout => {
            plan.prompt = failure_prompt(task, ctx.attempt.saturating_sub(1), prev);
            plan.adjustments.push(format!(
                "previous attempt {}: fresh session, prompt carries its error{}",
                if prev.kind == ErrorKind::Timeout {
                    "timed out"
                } else {
                    "failed"
                },
                if prev.output_tail.is_some() {
                    " and output tail"
                } else {
                    ""
                }
            ));
        }
        ErrorKind::Cancelled => {
            if let Some(id) = prev_session {
                plan.prompt =
                    continue_prompt(task, "mdbatch was interrupted while you worked on it");
                plan.adjustments
                    .push(format!("resuming interrupted session {id}"));
                plan.session = Session::Resume(id);
            }
        }
        _ => {}
    }
    plan
}

fn continue_prompt(task: &TaskSpec, why: &str) -> String {
    format!(
        "Continue task {} (\"{}\") from where you stopped: {why}. \
         The instructions you were given at the start of this session still apply: \
         do this one task only and leave the checkboxes of the task file to mdbatch.",
        task.id(),
        summary_line(task.text(), 200)
    )
}

fn failure_prompt(task: &TaskSpec, prev_attempt: u32, prev: &RunError) -> String {
    let mut p = task.prompt().to_string();
    p.push_str(&format!(
        "\n\nNote from mdbatch: attempt {prev_attempt} at this task did not succeed: {}.\n",
        summary_line(&prev.message, 500)
    ));
    if let Some(tail) = &prev.output_tail {
        p.push_str("The last lines of its output:\n```\n");
        p.push_str(tail_chars(tail, TAIL_FOR_PROMPT));
        p.push_str("\n```\n");
    }
    p.push_str("Check what that attempt left behind in the working folder, then finish the task.");
    p
}

/// The task's prompt without the preamble and with details cut to `limit`
/// characters; works on the composed prompt whatever the template was.
pub(crate) fn trim_prompt(task: &TaskSpec, limit: usize) -> (String, String) {
    let mut prompt = task.prompt().to_string();
    let mut what = Vec::new();
    let preamble = task.preamble().trim();
    if !preamble.is_empty() && prompt.contains(preamble) {
        prompt = prompt.replacen(preamble, "", 1);
        what.push("preamble dropped".to_string());
    }
    let details = task.details().trim_end();
    if details.chars().count() > limit && prompt.contains(details) {
        let cut: String = details.chars().take(limit).collect();
        let replacement = format!(
            "{cut}\n[… {} more characters of details cut by mdbatch: the previous attempt overflowed the model's context]",
            details.chars().count() - limit
        );
        prompt = prompt.replacen(details, &replacement, 1);
        what.push(format!("details cut to {limit} chars"));
    }
    let prompt = crate::runner::prompt::collapse_blank_lines(&prompt);
    let what = if what.is_empty() {
        " (nothing left to trim)".to_string()
    } else {
        format!(" ({})", what.join(", "))
    };
    (prompt, what)
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::runner::{ProgressSink, Usage};

    fn ctx(attempt: u32, prev: Option<RunError>) -> RunContext {
        let mut c = RunContext::new(attempt, ProgressSink::discard(), CancellationToken::new());
        c.previous_error = prev;
        c
    }

    fn task() -> TaskSpec {
        let t = TaskSpec::new("T7", "add the parser")
            .with_preamble("# Project\nLots of context here.")
            .with_details("d".repeat(5000));
        let prompt = format!(
            "{}\n\nTask T7: add the parser\n\n{}\n\nRules.",
            t.preamble(),
            t.details()
        );
        t.with_prompt(prompt)
    }

    const ALL: Caps = Caps {
        resume: true,
        max_turns: true,
        resume_needs_progress: false,
        chooses_session_id: true,
    };

    fn usage(out: u64, turns: u32) -> Option<Usage> {
        Some(Usage {
            output_tokens: out,
            turns: Some(turns),
            ..Usage::default()
        })
    }

    #[test]
    fn first_attempt_is_a_fresh_session_with_the_task_prompt() {
        let p = plan_attempt(&task(), &ctx(1, None), ALL, Some(10));
        assert!(matches!(p.session, Session::Fresh(Some(_))));
        assert_eq!(p.prompt, task().prompt());
        assert_eq!(p.max_turns, Some(10));
        assert!(p.adjustments.is_empty());
    }

    #[test]
    fn resume_sessions_continues_the_journalled_session_on_the_first_attempt() {
        let mut c = ctx(1, None);
        c.resume_session = Some("s-old".into());
        let p = plan_attempt(&task(), &c, ALL, None);
        assert_eq!(p.session, Session::Resume("s-old".into()));
        assert!(p.adjustments[0].contains("s-old"));
        // An attempt a killed run left unfinished comes back as `Cancelled`.
        let mut c = ctx(
            2,
            Some(RunError::new(
                ErrorKind::Cancelled,
                "the previous run stopped",
            )),
        );
        c.resume_session = Some("s-old".into());
        let p = plan_attempt(&task(), &c, ALL, None);
        assert_eq!(p.session, Session::Resume("s-old".into()));
    }

    #[test]
    fn turn_limit_resumes_the_same_session_with_a_doubled_budget() {
        let e = RunError::new(ErrorKind::TurnLimit, "max turns")
            .with_session(Some("s1".into()))
            .with_usage(usage(20, 11));
        let p = plan_attempt(&task(), &ctx(2, Some(e)), ALL, Some(10));
        assert_eq!(p.session, Session::Resume("s1".into()));
        assert_eq!(p.max_turns, Some(20));
        assert_eq!(
            p.adjustments,
            vec!["turn limit: resuming session s1, max turns 20 (was 10)"]
        );
        assert!(p.prompt.contains("ran out of turns"));
    }

    #[test]
    fn context_overflow_never_resumes_and_trims_preamble_and_details() {
        let e = RunError::new(ErrorKind::ContextOverflow, "prompt is too long")
            .with_session(Some("s1".into()));
        let p = plan_attempt(&task(), &ctx(2, Some(e)), ALL, None);
        assert!(matches!(p.session, Session::Fresh(Some(ref id)) if id != "s1"));
        assert!(!p.prompt.contains("Lots of context"));
        assert!(p.prompt.contains("more characters of details cut"));
        assert!(p.prompt.chars().count() < 2300, "{}", p.prompt.len());
        assert!(
            p.adjustments[0].starts_with(
                "context overflow: fresh session (never a resume), prompt trimmed from"
            )
        );
        assert!(p.adjustments[0].contains("preamble dropped, details cut to 2000 chars"));
    }

    #[test]
    fn failed_starts_afresh_with_the_error_and_output_tail_in_the_prompt() {
        let e = RunError::new(ErrorKind::Failed, "claude exited with status 1")
            .with_session(Some("s1".into()))
            .with_output_tail(Some("error: tests failed\nthread main panicked".into()));
        let p = plan_attempt(&task(), &ctx(2, Some(e)), ALL, None);
        assert!(matches!(p.session, Session::Fresh(_)));
        assert!(p.prompt.starts_with(task().prompt()));
        assert!(
            p.prompt
                .contains("attempt 1 at this task did not succeed: claude exited with status 1")
        );
        assert!(p.prompt.contains("thread main panicked"));
    }

    #[test]
    fn transient_resumes_the_session_when_there_is_one() {
        let e = RunError::new(ErrorKind::Transient, "429");
        let p = plan_attempt(&task(), &ctx(2, Some(e.clone())), ALL, None);
        assert!(matches!(p.session, Session::Fresh(_)));
        assert_eq!(p.prompt, task().prompt());
        let e = e.with_session(Some("s1".into()));
        let p = plan_attempt(&task(), &ctx(2, Some(e)), ALL, None);
        assert_eq!(p.session, Session::Resume("s1".into()));
        assert!(p.prompt.contains("stopped on an API error (429)"));
    }
}
