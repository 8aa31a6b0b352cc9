//! The stand-in agent of `mdbatch demo`: no process, nothing to install.
//!
//! For each task it plays a short, plausible session on tokio's clock (so
//! tests can run it on a paused clock): it reads a file, runs a command,
//! writes a file into the working folder (`out/<id>.md`), reports usage and a
//! final message, about two seconds in all. A task whose text says
//! `fails once` fails its first attempt (a failing test run, with output) and
//! succeeds on the retry, which then carries the previous error (shown as an
//! adjustment), the way an agent preset's retry does.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::{ErrorKind, RunError};
use crate::runner::{
    CancelReason, Progress, RunContext, Stream, SubagentRunner, TaskOutput, TaskSpec, Usage,
};

/// The sample task file `mdbatch demo` writes: three waves, two modules, a
/// dependency across modules, and one task that fails once.
pub fn demo_task_file() -> &'static str {
    DEMO_TASKS
}

const DEMO_TASKS: &str = "\
# Demo: a tiny web shop

This is an mdbatch task file. Every `- [ ]` line is one task for a subagent;
headings make waves (`##`) and groups (`###`). Groups of a wave run side by
side, waves run one after the other, and each box is checked in this file the
moment its task succeeds.

## Wave 1: foundations

### backend
- [ ] Create the database schema for products and orders
- [ ] Add the product catalogue API

### frontend
- [ ] Set up the page layout and styles
- [ ] Build the product list page

## Wave 2: features

### backend
- [ ] Add the checkout endpoint (the demo agent fails once here, then the retry succeeds)
  <!-- id: checkout -->

### frontend
- [ ] Build the cart page, which posts to the checkout endpoint
  <!-- after: checkout -->

## Wave 3: release
- [ ] Write the README
- [ ] Tag the first release
";

/// The demo's stand-in agent.
#[derive(Debug, Clone)]
pub struct DemoRunner {
    step: Duration,
}

impl Default for DemoRunner {
    fn default() -> Self {
        Self::new()
    }
}

impl DemoRunner {
    /// A stand-in agent taking about two seconds per task.
    pub fn new() -> Self {
        Self {
            step: Duration::from_millis(300),
        }
    }

    /// The same agent with a different pace (each of its ~7 steps takes `step`).
    pub fn with_step(step: Duration) -> Self {
        Self { step }
    }
}

fn slug(text: &str) -> String {
    let s: String = text
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.split('-')
        .filter(|p| !p.is_empty())
        .take(5)
        .collect::<Vec<_>>()
        .join("-")
}

#[async_trait]
impl SubagentRunner for DemoRunner {
    async fn run(&self, task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError> {
        let fails_once = task.text().contains("fails once") && ctx.attempt == 1;
        if let Some(prev) = &ctx.previous_error {
            ctx.progress.send(Progress::Adjusted {
                what: format!("previous attempt failed ({}): fresh session, prompt carries its error and output tail", prev.message),
            });
        }
        let session = format!("demo-{}-{}", slug(task.id()), ctx.attempt);
        let file = format!("out/{}.md", slug(task.id()));
        let steps: Vec<Progress> = vec![
            Progress::Session {
                id: session.clone(),
            },
            Progress::Message {
                text: format!(
                    "Looking at what \"{}\" needs.",
                    crate::runner::presets::summary_line(task.text(), 60)
                ),
            },
            Progress::ToolCall {
                tool: "Read".into(),
                arg: Some(task.task_file().display().to_string()),
            },
            Progress::ToolCall {
                tool: "Bash".into(),
                arg: Some("ls src".into()),
            },
            Progress::Output {
                stream: Stream::Stdout,
                line: "main.rs  lib.rs  routes.rs".into(),
            },
            Progress::ToolCall {
                tool: "Write".into(),
                arg: Some(file.clone()),
            },
            Progress::ToolCall {
                tool: "Bash".into(),
                arg: Some("cargo test".into()),
            },
        ];
        let mut usage = Usage::default();
        for (i, p) in steps.into_iter().enumerate() {
            if i > 0 {
                tokio::select! {
                    _ = tokio::time::sleep(self.step) => {}
                    _ = ctx.cancel.cancelled() => {
                        let kind = match ctx.cancel_reason() {
                            Some(CancelReason::Timeout) => ErrorKind::Timeout,
                            _ => ErrorKind::Cancelled,
                        };
                        return Err(RunError::new(kind, "demo agent stopped").with_session(Some(session)));
                    }
                }
            }
            if let Progress::ToolCall {
                tool,
                arg: Some(path),
            } = &p
                && tool == "Write"
            {
                let target = task.workdir().join(path);
                if let Some(dir) = target.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let _ = std::fs::write(
                    &target,
                    format!("# {}\n\nDone by the mdbatch demo agent.\n", task.text()),
                );
            }
            ctx.progress.send(p);
            usage.input_tokens += 1200;
            usage.output_tokens += 90;
        }
        usage.turns = Some(6);
        usage.cost_usd = Some(0.0042);
        tokio::time::sleep(self.step).await;
        if fails_once {
            let tail = "running 12 tests\ntest checkout::rejects_empty_cart ... FAILED\ntest result: FAILED. 11 passed; 1 failed";
            for l in tail.lines() {
                ctx.progress.send(Progress::Output {
                    stream: Stream::Stdout,
                    line: l.into(),
                });
            }
            return Err(RunError::new(
                ErrorKind::Failed,
                "cargo test failed: 1 of 12 tests (the demo fails this task once on purpose)",
            )
            .with_session(Some(session))
            .with_output_tail(Some(tail.into()))
            .with_usage(Some(usage)));
        }
        ctx.progress.send(Progress::Output {
            stream: Stream::Stdout,
            line: "test result: ok. 12 passed; 0 failed".into(),
        });
        ctx.progress.send(Progress::Usage { usage });
        let summary = format!(
            "Done: {} ({file}).",
            crate::runner::presets::summary_line(task.text(), 80)
        );
        ctx.progress.send(Progress::Message {
            text: summary.clone(),
        });
        Ok(TaskOutput {
            summary: Some(summary),
            session_id: Some(session),
            usage: Some(usage),
            output_tail: None,
        })
    }

    fn name(&self) -> &str {
        "demo"
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::runner::ProgressSink;

    #[tokio::test(start_paused = true)]
    async fn marked_task_fails_once_then_succeeds_with_tool_calls_on_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let t = TaskSpec::new("checkout", "Add checkout (fails once in the demo)")
            .with_workdir(dir.path());
        let (tx, mut rx) = mpsc::channel(100);
        let r = DemoRunner::new();
        let ctx = RunContext::new(
            1,
            ProgressSink::new("checkout", 1, tx.clone()),
            CancellationToken::new(),
        );
        let start = tokio::time::Instant::now();
        let err = r.run(&t, ctx).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Failed);
        assert!(start.elapsed() >= Duration::from_secs(2));
        let mut ctx = RunContext::new(
            2,
            ProgressSink::new("checkout", 2, tx),
            CancellationToken::new(),
        );
        ctx.previous_error = Some(err);
        let out = r.run(&t, ctx).await.unwrap();
        assert!(out.usage.is_some());
        let mut tools = 0;
        let mut adjusted = 0;
        while let Ok(item) = rx.try_recv() {
            match item.progress {
                Progress::ToolCall { .. } => tools += 1,
                Progress::Adjusted { .. } => adjusted += 1,
                _ => {}
            }
        }
        assert_eq!(tools, 8);
        assert_eq!(adjusted, 1);
        assert!(dir.path().join("out/checkout.md").is_file());
    }
}
