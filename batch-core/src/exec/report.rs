//! What a run did: [`RunReport`] and [`TaskReport`].

use serde::{Deserialize, Serialize};

use tokio::time::Instant;

use super::dispatcher::{Dispatcher, Stop};
use crate::error::ErrorKind;
use crate::events::{Outcome, RunSummary, millis};
use crate::runner::Usage;

/// How one task ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskReport {
    /// Task id.
    pub id: String,
    /// Outcome.
    pub outcome: Outcome,
    /// Attempts made.
    pub attempts: u32,
    /// The last error's kind, if it failed.
    pub kind: Option<ErrorKind>,
    /// The last error's message, or the skip reason.
    pub message: Option<String>,
    /// Duration over all attempts, ms.
    pub duration_ms: u64,
    /// Usage, when known.
    pub usage: Option<Usage>,
    /// Succeeded after a retry.
    pub flaky: bool,
    /// Skipped because the user checked its box by hand during the run: done,
    /// not a failure.
    #[serde(default)]
    pub checked_by_hand: bool,
    /// Skipped because the user removed it from the file during the run
    /// (before it started): their decision, not a failure.
    #[serde(default)]
    pub removed: bool,
    /// With worktree isolation or `--commit`: the commit its change landed as.
    #[serde(default)]
    pub commit: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunReport {
    /// The run id.
    pub run_id: String,
    /// Totals.
    pub summary: RunSummary,
    /// Per task, in plan order.
    pub tasks: Vec<TaskReport>,
}

/// The reason given to tasks the run skipped because it was interrupted.
pub(super) const INTERRUPTED_SKIP: &str = "interrupted";

impl Dispatcher {
    pub(super) fn summary(&self) -> RunSummary {
        let mut s = RunSummary {
            total: self.plan.nodes.len(),
            duration_ms: millis(Instant::now() - self.started),
            // An interrupt that arrived once every task had ended (its box
            // checked, or failed on its own) cancelled nothing.
            cancelled: matches!(self.stop, Some(Stop::Interrupted))
                && self.runs.iter().any(|r| match r.outcome {
                    None | Some(Outcome::Interrupted) => true,
                    Some(Outcome::Skipped) => r.message.as_deref() == Some(INTERRUPTED_SKIP),
                    Some(Outcome::Succeeded | Outcome::Failed) => false,
                }),
            capped: match &self.stop {
                Some(Stop::Cap(what)) => Some(what.clone()),
                _ => None,
            },
            ..RunSummary::default()
        };
        for r in &self.runs {
            match r.outcome {
                Some(Outcome::Succeeded) => {
                    s.succeeded += 1;
                    if r.had_failure {
                        s.flaky += 1;
                    }
                }
                Some(Outcome::Failed) => s.failed += 1,
                Some(Outcome::Skipped) | None => s.skipped += 1,
                Some(Outcome::Interrupted) => s.interrupted += 1,
            }
            if let Some(u) = &r.usage {
                s.usage.get_or_insert_with(Usage::default).add(u);
            }
        }
        s
    }

    pub(super) fn report(&self) -> RunReport {
        RunReport {
            run_id: self.run_id.clone(),
            summary: self.summary(),
            tasks: (0..self.runs.len())
                .map(|i| {
                    let r = &self.runs[i];
                    let outcome = r.outcome.unwrap_or(Outcome::Skipped);
                    TaskReport {
                        id: self.nodes[i].spec.id().to_string(),
                        outcome,
                        attempts: r.attempts,
                        kind: match outcome {
                            Outcome::Failed | Outcome::Interrupted => {
                                r.last_error.as_ref().map(|e| e.kind)
                            }
                            _ => None,
                        },
                        message: r.message.clone(),
                        duration_ms: self.task_ms(i),
                        usage: r.usage,
                        flaky: outcome == Outcome::Succeeded && r.had_failure,
                        checked_by_hand: r.checked_by_hand,
                        removed: r.removed,
                        commit: r.commit.clone(),
                    }
                })
                .collect(),
        }
    }
}
