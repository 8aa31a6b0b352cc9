//! The `codex` preset (OpenAI Codex CLI, tested from 0.169.0).
//!
//! Command: `codex exec --json --skip-git-repo-check --sandbox workspace-write
//! -c analytics.enabled=false --disable plugins [--model M] [agent args…] --
//! PROMPT`; a retry that continues a thread runs `codex exec resume … -- ID
//! PROMPT`. stdin is closed (Codex appends stdin to the prompt when it is not
//! a terminal). The two settings stop its analytics upload (which otherwise
//! delays every exit by ~5 s) and its plugin sync (a `git clone` from GitHub).
//!
//! Output: `thread.started` (the thread id, our session), `turn.started`,
//! `item.started`/`item.completed` (`command_execution`, `file_change`,
//! `mcp_tool_call`, `web_search` → tool calls; `agent_message` → messages),
//! `turn.completed` with usage, or `turn.failed`; top-level `error` events
//! carry its own retries (`Reconnecting... 2/5 (…)`).
//!
//! Verdict: Codex exits 0 or 1 only, so the kind comes from the
//! `turn.failed`/`error` message. It has no turn limit, and when the API is
//! unreachable it retries forever: the task timeout is what stops it.

use std::collections::HashSet;

use serde_json::Value;

use super::agent::{Agent, AgentStream, AttemptPlan, Caps, Cli, Session};
use super::classify::{
    http_status_in, is_auth_error, is_connection_error, is_usage_limit, main_arg, now_epoch,
    reset_wait, retry_in, summary_line,
};
use crate::error::{ErrorKind, RunError};
use crate::runner::process::ProcessExit;
use crate::runner::{Progress, Stream, TaskOutput, Usage};

/// The default `--sandbox`.
pub(crate) const DEFAULT_SANDBOX: &str = "workspace-write";

pub(crate) struct Codex {
    pub(crate) sandbox: String,
}

impl Agent for Codex {
    const NAME: &'static str = "codex";
    const CAPS: Caps = Caps {
        resume: true,
        max_turns: false,
        resume_needs_progress: false,
        chooses_session_id: false,
    };

    fn command(&self, cli: &Cli, plan: &AttemptPlan) -> (Vec<String>, Vec<(String, String)>) {
        let mut argv = vec![cli.program.clone(), "exec".into()];
        if let Session::Resume(_) = plan.session {
            argv.push("resume".into());
        }
        argv.extend(
            [
                "--json",
                "--skip-git-repo-check",
                "-c",
                "analytics.enabled=false",
                "--disable",
                "plugins",
            ]
            .map(String::from),
        );
        if matches!(plan.session, Session::Resume(_)) {
            // `exec resume` takes no `--sandbox`; the config key does the same.
            argv.extend(["-c".into(), format!("sandbox_mode=\"{}\"", self.sandbox)]);
        } else {
            argv.extend(["--sandbox".into(), self.sandbox.clone()]);
        }
        if let Some(m) = &cli.model {
            argv.extend(["--model".into(), m.clone()]);
        }
        argv.extend(cli.agent_args.iter().cloned());
        argv.push("--".into());
        if let Session::Resume(id) = &plan.session {
            argv.push(id.clone());
        }
        argv.push(plan.prompt.clone());
        (argv, cli.env.clone())
    }

    fn parser(&self) -> Box<dyn AgentStream> {
        Box::new(CodexStream::default())
    }
}

/// The state of one attempt's `--json` output.
#[derive(Debug, Default)]
pub(crate) struct CodexStream {
    thread: Option<String>,
    usage: Option<Usage>,
    completed: bool,
    failed: Option<String>,
    last_error: Option<String>,
    last_message: Option<String>,
    started_items: HashSet<String>,
    retries: u32,
}

impl AgentStream for CodexStream {
    fn line(&mut self, stream: Stream, line: &str, out: &mut Vec<Progress>) {
        let parsed = (stream == Stream::Stdout)
            .then(|| serde_json::from_str::<Value>(line).ok())
            .flatten()
            .filter(Value::is_object);
        let Some(v) = parsed else {
            out.push(Progress::Output {
                stream,
                line: line.to_string(),
            });
            return;
        };
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "thread.started" => {
                if let Some(id) = v.get("thread_id").and_then(Value::as_str) {
                    self.thread = Some(id.to_string());
                    out.push(Progress::Session { id: id.to_string() });
                }
            }
            "turn.started" => {}
            "item.started" | "item.completed" => {
                let started = v.get("type").and_then(Value::as_str) == Some("item.started");
                if let Some(item) = v.get("item") {
                    self.item(item, started, out);
                }
            }
            "turn.completed" => {
                self.completed = true;
                let n = |k: &str| {
                    v.pointer(&format!("/usage/{k}"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                };
                let mut u = self.usage.unwrap_or_default();
                let this = Usage {
                    input_tokens: n("input_tokens"),
                    output_tokens: n("output_tokens"),
                    turns: Some(1),
                    cost_usd: None,
                };
                u.add(&this);
                self.usage = Some(u);
                out.push(Progress::Usage { usage: u });
            }
            "turn.failed" => {
                let msg = v
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("turn failed")
                    .to_string();
                self.failed = Some(msg);
            }
            "error" => {
                let msg = v
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if let Some(rest) = msg.strip_prefix("Reconnecting...") {
                    self.retries += 1;
                    let attempt = rest
                        .trim_start()
                        .split('/')
                        .next()
                        .and_then(|n| n.trim().parse().ok())
                        .unwrap_or(self.retries);
                    out.push(Progress::ApiRetry {
                        attempt,
                        status: http_status_in(rest),
                        delay_ms: None,
                        error: Some(summary_line(rest.trim(), 200)),
                    });
                } else {
                    out.push(Progress::Output {
                        stream,
                        line: format!("error: {msg}"),
                    });
                    self.last_error = Some(msg);
                }
            }
            _ => out.push(Progress::Output {
                stream,
                line: line.to_string(),
            }),
        }
    }

    fn finish(&mut self, exit: &ProcessExit) -> Result<TaskOutput, RunError> {
        if let Some(msg) = self.failed.clone().or_else(|| {
            (exit.code() != Some(0) || !self.completed)
                .then(|| self.last_error.clone())
                .flatten()
        }) {
            return Err(classify(&msg, now_epoch()));
        }
        if self.completed && exit.code() == Some(0) {
            return Ok(TaskOutput {
                summary: self.last_message.as_deref().map(|m| summary_line(m, 200)),
                session_id: self.thread.clone(),
                usage: self.usage,
                output_tail: exit.tail_opt(),
            });
        }
        let last = crate::util::last_line(&exit.tail)
            .map(|l| format!(": {}", summary_line(l, 200)))
            .unwrap_or_default();
        let kind = if is_auth_error(&exit.tail) {
            ErrorKind::Fatal
        } else {
            ErrorKind::Failed
        };
        Err(RunError::new(
            kind,
            format!(
                "codex ended ({}) without completing its turn{last}",
                exit.describe()
            ),
        ))
    }

    fn session(&self) -> Option<String> {
        self.thread.clone()
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

impl CodexStream {
    fn item(&mut self, item: &Value, started: bool, out: &mut Vec<Progress>) {
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let ty = item.get("type").and_then(Value::as_str).unwrap_or("");
        // A tool call is reported once: when it starts, or when it completes
        // without having been seen starting.
        let first_sight = started || !self.started_items.contains(&id);
        if started {
            self.started_items.insert(id);
        }
        match ty {
            "command_execution" if first_sight => out.push(Progress::ToolCall {
                tool: "command".into(),
                arg: item
                    .get("command")
                    .and_then(Value::as_str)
                    .map(|c| summary_line(unwrap_shell(c), 120)),
            }),
            "file_change" if first_sight => {
                let paths: Vec<&str> = item
                    .get("changes")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| c.get("path").and_then(Value::as_str))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Progress::ToolCall {
                    tool: "file_change".into(),
                    arg: (!paths.is_empty()).then(|| summary_line(&paths.join(", "), 120)),
                });
            }
            "mcp_tool_call" if first_sight => out.push(Progress::ToolCall {
                tool: format!(
                    "{}.{}",
                    item.get("server").and_then(Value::as_str).unwrap_or("mcp"),
                    item.get("tool").and_then(Value::as_str).unwrap_or("tool")
                ),
                arg: item.get("arguments").and_then(main_arg),
            }),
            "web_search" if first_sight => out.push(Progress::ToolCall {
                tool: "web_search".into(),
                arg: item
                    .get("query")
                    .and_then(Value::as_str)
                    .map(|q| summary_line(q, 120)),
            }),
            "agent_message" if !started => {
                if let Some(t) = item.get("text").and_then(Value::as_str) {
                    self.last_message = Some(t.to_string());
                    out.push(Progress::Message {
                        text: summary_line(t, 200),
                    });
                }
            }
            "command_execution" if !started => {
                let code = item.get("exit_code").and_then(Value::as_i64);
                if let Some(c) = code.filter(|c| *c != 0) {
                    out.push(Progress::Output {
                        stream: Stream::Runner,
                        line: format!("command exited with status {c}"),
                    });
                }
            }
            "error" => {
                if let Some(m) = item.get("message").and_then(Value::as_str) {
                    out.push(Progress::Output {
                        stream: Stream::Stdout,
                        line: format!("warning: {m}"),
                    });
                }
            }
            _ => {}
        }
    }
}

/// `/bin/bash -lc "echo hi"` → `echo hi`, for display.
fn unwrap_shell(cmd: &str) -> &str {
    for prefix in [
        "/bin/bash -lc ",
        "bash -lc ",
        "/bin/sh -c ",
        "sh -c ",
        "/bin/zsh -lc ",
    ] {
        if let Some(rest) = cmd.strip_prefix(prefix) {
            let rest = rest.trim();
            return rest
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .or_else(|| rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
                .unwrap_or(rest);
        }
    }
    cmd
}

/// The kind of a Codex failure message.
pub(crate) fn classify(msg: &str, now: i64) -> RunError {
    let lower = msg.to_ascii_lowercase();
    let text = summary_line(msg, 300);
    if lower.contains("context window")
        || lower.contains("context_length_exceeded")
        || lower.contains("ran out of room")
    {
        return RunError::new(ErrorKind::ContextOverflow, text);
    }
    if is_usage_limit(msg) {
        let wait = retry_in(msg).or_else(|| reset_wait(msg, now));
        return RunError::new(ErrorKind::Transient, format!("usage limit: {text}"))
            .with_retry_after(wait)
            .rate_limited(true);
    }
    let status = http_status_in(msg);
    if matches!(status, Some(401 | 403)) || is_auth_error(msg) {
        return RunError::new(ErrorKind::Fatal, text);
    }
    if status == Some(429) || lower.contains("too many requests") || lower.contains("rate limit") {
        return RunError::new(ErrorKind::Transient, text)
            .with_retry_after(retry_in(msg))
            .rate_limited(true);
    }
    if matches!(status, Some(500..=599))
        || lower.contains("high demand")
        || lower.contains("overloaded")
        || lower.contains("temporar")
        || is_connection_error(msg)
    {
        return RunError::new(ErrorKind::Transient, text).rate_limited(true);
    }
    RunError::new(ErrorKind::Failed, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_failure_messages_map_to_kinds() {
        let k = |m: &str| classify(m, 0).kind;
        assert_eq!(
            k("exceeded retry limit, last status: 429 Too Many Requests"),
            ErrorKind::Transient
        );
        assert_eq!(
            k("Quota exceeded. Check your plan and billing details."),
            ErrorKind::Fatal
        );
        assert_eq!(
            k("unexpected status 401 Unauthorized: Incorrect API key provided: sk-test."),
            ErrorKind::Fatal
        );
        assert_eq!(
            k("We’re currently experiencing high demand, which may cause temporary errors."),
            ErrorKind::Transient
        );
        assert_eq!(
            k(
                "unexpected status 503 Service Unavailable: The server is overloaded or not ready yet., url: http://127.0.0.1:18080/v1/responses"
            ),
            ErrorKind::Transient
        );
        assert_eq!(
            k("Codex ran out of room in the model's context window. Start a new thread"),
            ErrorKind::ContextOverflow
        );
        assert_eq!(
            k("stream disconnected before completion: stream closed before response.completed"),
            ErrorKind::Transient
        );
        assert_eq!(k("something else broke"), ErrorKind::Failed);
        let e = classify(
            "You've hit your usage limit. Upgrade to Pro or try again in 2 hours 5 minutes.",
            0,
        );
        assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(7500)));
    }

    #[test]
    fn reconnecting_errors_are_the_clis_own_retries() {
        let mut s = CodexStream::default();
        let mut out = Vec::new();
        s.line(Stream::Stdout, r#"{"type":"error","message":"Reconnecting... 2/5 (unexpected status 503 Service Unavailable: x)"}"#, &mut out);
        assert_eq!(
            out,
            vec![Progress::ApiRetry {
                attempt: 2,
                status: Some(503),
                delay_ms: None,
                error: Some("2/5 (unexpected status 503 Service Unavailable: x)".into())
            }]
        );
    }

    #[test]
    fn shell_wrappers_are_unwrapped_for_display() {
        assert_eq!(
            unwrap_shell("/bin/bash -lc \"echo 'Hello, world' > hello.txt\""),
            "echo 'Hello, world' > hello.txt"
        );
        assert_eq!(unwrap_shell("ls"), "ls");
    }
}
