//! The `claude` preset (Claude Code, tested from 2.1.330).
//!
//! Command: `claude -p --output-format stream-json --verbose
//! (--session-id UUID | --resume ID) [--max-turns N] --permission-mode M
//! [--model M] [agent args…] -- PROMPT`, stdin closed. `-p` is a flag in
//! Claude Code (print mode), the prompt is the positional argument after
//! `--`, so a prompt starting with `-` is never read as an option.
//!
//! Environment: `CLAUDE_CODE_MAX_RETRIES=1` (Claude Code otherwise retries an
//! API error up to 10 times with delays growing to ~40 s, silently; mdbatch
//! owns the waiting) and `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`, unless
//! already set.
//!
//! Output: one JSON object per line. `system/init` carries the session id;
//! `assistant` lines hold one content block each (`tool_use` → a tool call
//! with its main argument, `text` → a message); `system/api_retry` is Claude
//! Code retrying an API error itself; `rate_limit_event` says whether the
//! account's usage window is exhausted and when it resets; the last `result`
//! line has the verdict, turns, tokens and cost. Anything else is output.
//!
//! Verdict: `is_error` first (an API failure arrives as `subtype: success`
//! with `is_error: true`), then `subtype`, `terminal_reason`,
//! `api_error_status`/`api_error_type` and the message.

use serde_json::Value;

use super::agent::{Agent, AgentStream, AttemptPlan, Caps, Cli, Session};
use super::classify::{
    http_status_in, is_auth_error, is_connection_error, is_usage_limit, main_arg, now_epoch,
    reset_wait, retry_in, summary_line,
};
use crate::error::{ErrorKind, RunError};
use crate::runner::process::ProcessExit;
use crate::runner::{Progress, Stream, TaskOutput, Usage};

/// The default `--permission-mode`.
pub(crate) const DEFAULT_PERMISSION_MODE: &str = "acceptEdits";

pub(crate) struct Claude {
    pub(crate) permission_mode: String,
}

impl Agent for Claude {
    const NAME: &'static str = "claude";
    const CAPS: Caps = Caps {
        resume: true,
        max_turns: true,
        resume_needs_progress: false,
        chooses_session_id: true,
    };

    fn command(&self, cli: &Cli, plan: &AttemptPlan) -> (Vec<String>, Vec<(String, String)>) {
        let mut argv = vec![
            cli.program.clone(),
            "-p".into(),
            "--output-format".into(),
            "stream-json".into(),
            "--verbose".into(),
        ];
        match &plan.session {
            Session::Fresh(Some(id)) => argv.extend(["--session-id".into(), id.clone()]),
            Session::Fresh(None) => {}
            Session::Resume(id) => argv.extend(["--resume".into(), id.clone()]),
        }
        if let Some(n) = plan.max_turns {
            argv.extend(["--max-turns".into(), n.to_string()]);
        }
        argv.extend(["--permission-mode".into(), self.permission_mode.clone()]);
        if let Some(m) = &cli.model {
            argv.extend(["--model".into(), m.clone()]);
        }
        argv.extend(cli.agent_args.iter().cloned());
        argv.push("--".into());
        argv.push(plan.prompt.clone());
        let mut env = Vec::new();
        for (k, v) in [
            ("CLAUDE_CODE_MAX_RETRIES", "1"),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ] {
            let user_set = std::env::var_os(k).is_some() || cli.env.iter().any(|(ek, _)| ek == k);
            if !user_set {
                env.push((k.to_string(), v.to_string()));
            }
        }
        env.extend(cli.env.iter().cloned());
        (argv, env)
    }

    fn parser(&self) -> Box<dyn AgentStream> {
        Box::new(ClaudeStream::default())
    }
}

/// The state of one attempt's stream-json output.
#[derive(Debug, Default)]
pub(crate) struct ClaudeStream {
    session: Option<String>,
    result: Option<Value>,
    usage: Option<Usage>,
    last_text: Option<String>,
    /// `resetsAt` of a rejected `rate_limit_event`.
    limit_resets_at: Option<i64>,
    /// The last `api_retry`'s status.
    retry_status: Option<u16>,
    stderr: Vec<String>,
}

impl AgentStream for ClaudeStream {
    fn line(&mut self, stream: Stream, line: &str, out: &mut Vec<Progress>) {
        if stream == Stream::Stderr {
            if self.stderr.len() < 50 {
                self.stderr.push(line.to_string());
            }
            out.push(Progress::Output {
                stream,
                line: line.to_string(),
            });
            return;
        }
        let Some(v) = serde_json::from_str::<Value>(line)
            .ok()
            .filter(Value::is_object)
        else {
            out.push(Progress::Output {
                stream,
                line: line.to_string(),
            });
            return;
        };
        let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
        let subtype = v.get("subtype").and_then(Value::as_str).unwrap_or("");
        match (ty, subtype) {
            ("system", "init") => {
                if let Some(id) = v.get("session_id").and_then(Value::as_str) {
                    self.session = Some(id.to_string());
                    out.push(Progress::Session { id: id.to_string() });
                }
            }
            ("system", "api_retry") => {
                let status = v
                    .get("error_status")
                    .and_then(Value::as_u64)
                    .map(|s| s as u16);
                self.retry_status = status.or(self.retry_status);
                out.push(Progress::ApiRetry {
                    attempt: v.get("attempt").and_then(Value::as_u64).unwrap_or(0) as u32,
                    status,
                    delay_ms: v.get("retry_delay_ms").and_then(Value::as_u64),
                    error: v.get("error").and_then(Value::as_str).map(str::to_string),
                });
            }
            ("assistant", _) => {
                let blocks = v
                    .pointer("/message/content")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for b in &blocks {
                    match b.get("type").and_then(Value::as_str) {
                        Some("tool_use") => out.push(Progress::ToolCall {
                            tool: b
                                .get("name")
                                .and_then(Value::as_str)
                                .unwrap_or("tool")
                                .to_string(),
                            arg: b.get("input").and_then(main_arg),
                        }),
                        Some("text") => {
                            let text = b.get("text").and_then(Value::as_str).unwrap_or("");
                            if !text.trim().is_empty() {
                                self.last_text = Some(text.to_string());
                                out.push(Progress::Message {
                                    text: summary_line(text, 200),
                                });
                            }
                        }
                        _ => {}
                    }
                }
            }
            ("user", _) => {}
            ("rate_limit_event", _) => {
                let info = v.get("rate_limit_info");
                let status = info
                    .and_then(|i| i.get("status"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let resets = info.and_then(|i| i.get("resetsAt")).and_then(Value::as_i64);
                if status == "rejected" {
                    self.limit_resets_at = resets;
                }
                if status != "allowed" {
                    out.push(Progress::Output {
                        stream: Stream::Runner,
                        line: format!(
                            "rate limit {status}{}",
                            resets
                                .map(|r| format!(", resets at epoch {r}"))
                                .unwrap_or_default()
                        ),
                    });
                }
            }
            ("result", _) => {
                let usage = result_usage(&v);
                self.usage = Some(usage);
                out.push(Progress::Usage { usage });
                if self.session.is_none() {
                    self.session = v
                        .get("session_id")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                }
                self.result = Some(v);
            }
            _ => out.push(Progress::Output {
                stream,
                line: line.to_string(),
            }),
        }
    }

    fn finish(&mut self, exit: &ProcessExit) -> Result<TaskOutput, RunError> {
        let now = now_epoch();
        match &self.result {
            Some(r) => judge_result(r, self.limit_resets_at, now).map(|summary| TaskOutput {
                summary: summary
                    .or_else(|| self.last_text.as_deref().map(|t| summary_line(t, 200))),
                session_id: self.session.clone(),
                usage: self.usage,
                output_tail: exit.tail_opt(),
            }),
            None => Err(no_result(exit, &self.stderr, self.retry_status)),
        }
    }

    fn session(&self) -> Option<String> {
        self.session.clone()
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

fn result_usage(v: &Value) -> Usage {
    let n = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: n("/usage/input_tokens")
            + n("/usage/cache_creation_input_tokens")
            + n("/usage/cache_read_input_tokens"),
        output_tokens: n("/usage/output_tokens"),
        cost_usd: v.get("total_cost_usd").and_then(Value::as_f64),
        turns: v.get("num_turns").and_then(Value::as_u64).map(|t| t as u32),
    }
}

/// The verdict of a `result` line: `Ok(summary)` or the error.
pub(crate) fn judge_result(
    r: &Value,
    limit_resets_at: Option<i64>,
    now: i64,
) -> Result<Option<String>, RunError> {
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
    let is_error = r.get("is_error").and_then(Value::as_bool).unwrap_or(false);
    let subtype = s("subtype");
    let text = r
        .get("result")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            r.get("errors").and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        })
        .unwrap_or_default();
    if !is_error && (subtype == "success" || subtype.is_empty()) {
        return Ok((!text.trim().is_empty()).then(|| summary_line(&text, 200)));
    }
    let status = r
        .get("api_error_status")
        .and_then(Value::as_u64)
        .map(|s| s as u16)
        .or_else(|| http_status_in(&text));
    let api_type = s("api_error_type");
    let reason = s("terminal_reason");
    let msg = if text.trim().is_empty() {
        format!("claude ended with {subtype} ({reason})")
    } else {
        summary_line(&text, 300)
    };
    let lower = text.to_ascii_lowercase();

    if subtype == "error_max_turns" || reason == "max_turns" {
        return Err(RunError::new(ErrorKind::TurnLimit, msg));
    }
    if reason == "prompt_too_long" || lower.contains("prompt is too long") {
        return Err(RunError::new(ErrorKind::ContextOverflow, msg));
    }
    if is_usage_limit(&text) || limit_resets_at.is_some() {
        let wait = limit_resets_at
            .map(|at| std::time::Duration::from_secs(at.saturating_sub(now).max(0) as u64))
            .or_else(|| reset_wait(&text, now));
        return Err(
            RunError::new(ErrorKind::Transient, format!("usage limit: {msg}"))
                .with_retry_after(wait)
                .rate_limited(true),
        );
    }
    if matches!(status, Some(401 | 403))
        || matches!(api_type, "authentication_error" | "permission_error")
        || is_auth_error(&text)
    {
        return Err(RunError::new(ErrorKind::Fatal, msg));
    }
    if status == Some(429)
        || matches!(status, Some(500..=599))
        || matches!(
            api_type,
            "rate_limit_error" | "overloaded_error" | "api_error"
        )
        || lower.contains("overloaded")
    {
        return Err(RunError::new(ErrorKind::Transient, msg)
            .with_retry_after(retry_in(&text))
            .rate_limited(true));
    }
    if is_connection_error(&text) {
        return Err(RunError::new(ErrorKind::Transient, msg).rate_limited(true));
    }
    if status == Some(400) && (lower.contains("too long") || lower.contains("context")) {
        return Err(RunError::new(ErrorKind::ContextOverflow, msg));
    }
    Err(RunError::new(ErrorKind::Failed, msg))
}

/// No `result` line: judge by stderr and the exit status.
fn no_result(exit: &ProcessExit, stderr: &[String], retry_status: Option<u16>) -> RunError {
    let err_text = stderr.join("\n");
    let last = crate::util::last_of(stderr.iter().map(String::as_str))
        .map(|l| format!(": {}", summary_line(l, 200)))
        .unwrap_or_default();
    if is_auth_error(&err_text) {
        return RunError::new(
            ErrorKind::Fatal,
            format!("claude cannot authenticate{last}"),
        );
    }
    if err_text.contains("No conversation found") {
        return RunError::new(
            ErrorKind::Failed,
            format!("claude could not resume the session{last}"),
        );
    }
    match (exit.code(), exit.signal()) {
        (Some(143), _) | (None, Some(_)) => RunError::new(
            ErrorKind::Failed,
            format!(
                "claude was interrupted ({}) before it reported a result",
                exit.describe()
            ),
        ),
        _ if matches!(retry_status, Some(429 | 500..=599)) => RunError::new(
            ErrorKind::Transient,
            format!(
                "claude stopped after API errors ({}) without a result{last}",
                exit.describe()
            ),
        )
        .rate_limited(true),
        _ => RunError::new(
            ErrorKind::Failed,
            format!(
                "claude ended ({}) without a result line{last}",
                exit.describe()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(json: &str) -> Result<Option<String>, RunError> {
        judge_result(&serde_json::from_str(json).unwrap(), None, 1_700_000_000)
    }

    #[test]
    fn an_api_error_with_subtype_success_is_judged_by_is_error_first() {
        let e = result(r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"api_error_type":"rate_limit_error","terminal_reason":"api_error","result":"API Error: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(e.rate_limited);
    }

    #[test]
    fn result_kinds_follow_the_captured_shapes() {
        let k = |j: &str| result(j).unwrap_err().kind;
        assert_eq!(
            k(
                r#"{"subtype":"success","is_error":true,"api_error_status":529,"api_error_type":"overloaded_error","result":"API Error: 529 Overloaded."}"#
            ),
            ErrorKind::Transient
        );
        assert_eq!(
            k(
                r#"{"subtype":"success","is_error":true,"api_error_status":401,"api_error_type":"authentication_error","result":"Invalid API key · Fix external API key"}"#
            ),
            ErrorKind::Fatal
        );
        assert_eq!(
            k(
                r#"{"subtype":"success","is_error":true,"api_error_status":400,"terminal_reason":"prompt_too_long","result":"Prompt is too long · the request is ~250123 tokens"}"#
            ),
            ErrorKind::ContextOverflow
        );
        assert_eq!(
            k(
                r#"{"subtype":"error_max_turns","is_error":true,"terminal_reason":"max_turns","errors":["Reached maximum number of turns (1)"]}"#
            ),
            ErrorKind::TurnLimit
        );
        assert_eq!(
            k(r#"{"subtype":"success","is_error":true,"result":"Credit balance is too low"}"#),
            ErrorKind::Fatal
        );
        assert_eq!(
            k(r#"{"subtype":"success","is_error":true,"result":"API Error: Connection error."}"#),
            ErrorKind::Transient
        );
        assert_eq!(
            k(r#"{"subtype":"error_during_execution","is_error":true}"#),
            ErrorKind::Failed
        );
        assert_eq!(
            result(r#"{"subtype":"success","is_error":false,"result":"Done."}"#).unwrap(),
            Some("Done.".into())
        );
    }

    #[test]
    fn a_usage_limit_waits_until_its_reset_time() {
        let e = result(r#"{"subtype":"success","is_error":true,"result":"Claude AI usage limit reached|1700007200"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient);
        assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(7200)));
        let r: Value = serde_json::from_str(r#"{"subtype":"success","is_error":true,"result":"You've hit your limit · resets 2pm (Asia/Shanghai)"}"#).unwrap();
        let e = judge_result(&r, Some(1_700_000_600), 1_700_000_000).unwrap_err();
        assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(600)));
        assert!(e.rate_limited);
    }

    #[test]
    fn unknown_and_non_json_lines_are_kept_as_output() {
        let mut s = ClaudeStream::default();
        let mut out = Vec::new();
        s.line(Stream::Stdout, "not json at all", &mut out);
        s.line(
            Stream::Stdout,
            r#"{"type":"brand_new_event","x":1}"#,
            &mut out,
        );
        s.line(Stream::Stdout, "[1,2]", &mut out);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|p| matches!(
            p,
            Progress::Output {
                stream: Stream::Stdout,
                ..
            }
        )));
    }
}
