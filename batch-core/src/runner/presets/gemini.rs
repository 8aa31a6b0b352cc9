//! The `gemini` preset (Gemini CLI, tested from 0.61.0).
//!
//! Command: `gemini --output-format stream-json --skip-trust
//! --approval-mode yolo (--session-id UUID | --resume ID) [--model M]
//! [agent args…] --prompt=PROMPT`, stdin closed. The prompt is attached to
//! `--prompt=` in one argument, so a prompt starting with `-` cannot be read
//! as an option. `--skip-trust` skips the folder-trust check that otherwise
//! ends a headless run with exit 55; `yolo` is needed for headless Gemini to
//! register its write tools at all.
//!
//! Output: `init` (session id), `message` (assistant text in deltas),
//! `tool_use` (tool name and parameters), `tool_result`, `error`, and a last
//! `result` with stats. Gemini retries API errors on stderr only
//! (`Attempt N failed…`), read here as API-retry signals; its retry count is
//! a settings-file knob (`general.maxAttempts`) mdbatch does not touch, so
//! the task timeout bounds it.
//!
//! Verdict: the `result` line and the exit code, which is the HTTP status
//! mod 256 on API errors: 173 (429) and 244/246/247/248 (5xx) `Transient`;
//! 145 (401), 147 (403), 41 (auth setup), 42, 44, 52 (config) and 55
//! (untrusted folder) `Fatal`; 144 (400) by its message: a token-count
//! complaint is `ContextOverflow`, a bad key `Fatal`; 53 `TurnLimit`.

use serde_json::Value;

use super::agent::{Agent, AgentStream, AttemptPlan, Caps, Cli, Session};
use super::classify::{
    http_status_in, is_auth_error, is_connection_error, main_arg, retry_in, summary_line,
};
use crate::error::{ErrorKind, RunError};
use crate::runner::process::ProcessExit;
use crate::runner::{Progress, Stream, TaskOutput, Usage};

/// The default `--approval-mode`.
pub(crate) const DEFAULT_APPROVAL_MODE: &str = "yolo";

pub(crate) struct Gemini {
    pub(crate) approval_mode: String,
}

impl Agent for Gemini {
    const NAME: &'static str = "gemini";
    const CAPS: Caps = Caps {
        resume: true,
        max_turns: false,
        resume_needs_progress: true,
        chooses_session_id: true,
    };

    fn command(&self, cli: &Cli, plan: &AttemptPlan) -> (Vec<String>, Vec<(String, String)>) {
        let mut argv = vec![
            cli.program.clone(),
            "--output-format".into(),
            "stream-json".into(),
            "--skip-trust".into(),
            format!("--approval-mode={}", self.approval_mode),
        ];
        match &plan.session {
            Session::Fresh(Some(id)) => argv.push(format!("--session-id={id}")),
            Session::Fresh(None) => {}
            Session::Resume(id) => argv.push(format!("--resume={id}")),
        }
        if let Some(m) = &cli.model {
            argv.push(format!("--model={m}"));
        }
        argv.extend(cli.agent_args.iter().cloned());
        argv.push(format!("--prompt={}", plan.prompt));
        (argv, cli.env.clone())
    }

    fn parser(&self) -> Box<dyn AgentStream> {
        Box::new(GeminiStream::default())
    }
}

/// The state of one attempt's stream-json output.
#[derive(Debug, Default)]
pub(crate) struct GeminiStream {
    session: Option<String>,
    text: String,
    last_text: Option<String>,
    result: Option<Value>,
    usage: Option<Usage>,
    stderr_retry_status: Option<u16>,
    stderr: Vec<String>,
}

impl GeminiStream {
    fn flush_text(&mut self, out: &mut Vec<Progress>) {
        if !self.text.trim().is_empty() {
            out.push(Progress::Message {
                text: summary_line(&self.text, 200),
            });
            self.last_text = Some(std::mem::take(&mut self.text));
        }
        self.text.clear();
    }
}

impl AgentStream for GeminiStream {
    fn line(&mut self, stream: Stream, line: &str, out: &mut Vec<Progress>) {
        if stream == Stream::Stderr {
            if let Some(rest) = line.strip_prefix("Attempt ")
                && let Some((n, msg)) = rest.split_once(" failed")
                && let Ok(attempt) = n.trim().parse::<u32>()
            {
                let status = http_status_in(msg)
                    .or_else(|| msg.to_ascii_lowercase().contains("quota").then_some(429));
                self.stderr_retry_status = status.or(self.stderr_retry_status);
                out.push(Progress::ApiRetry {
                    attempt,
                    status,
                    delay_ms: retry_in(msg).map(|d| d.as_millis() as u64),
                    error: Some(summary_line(msg.trim_start_matches([':', ' ']), 200)),
                });
            }
            if self.stderr.len() < 200 {
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
        if ty != "message" {
            self.flush_text(out);
        }
        match ty {
            "init" => {
                if let Some(id) = v.get("session_id").and_then(Value::as_str) {
                    self.session = Some(id.to_string());
                    out.push(Progress::Session { id: id.to_string() });
                }
            }
            "message" => {
                if v.get("role").and_then(Value::as_str) == Some("assistant") {
                    let chunk = v.get("content").and_then(Value::as_str).unwrap_or("");
                    if v.get("delta").and_then(Value::as_bool).unwrap_or(false) {
                        self.text.push_str(chunk);
                    } else {
                        self.flush_text(out);
                        self.text.push_str(chunk);
                        self.flush_text(out);
                    }
                }
            }
            "tool_use" => out.push(Progress::ToolCall {
                tool: v
                    .get("tool_name")
                    .and_then(Value::as_str)
                    .unwrap_or("tool")
                    .to_string(),
                arg: v.get("parameters").and_then(main_arg),
            }),
            "tool_result" => {
                if v.get("status").and_then(Value::as_str) == Some("error") {
                    let msg = v
                        .pointer("/error/message")
                        .or_else(|| v.get("output"))
                        .and_then(Value::as_str)
                        .unwrap_or("tool failed");
                    out.push(Progress::Output {
                        stream,
                        line: format!("tool error: {}", summary_line(msg, 200)),
                    });
                }
            }
            "error" => {
                let msg = v
                    .get("message")
                    .or_else(|| v.pointer("/error/message"))
                    .and_then(Value::as_str)
                    .unwrap_or(line);
                out.push(Progress::Output {
                    stream,
                    line: format!("error: {}", summary_line(msg, 300)),
                });
            }
            "result" => {
                let n = |k: &str| {
                    v.pointer(&format!("/stats/{k}"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                };
                let u = Usage {
                    input_tokens: n("input_tokens"),
                    output_tokens: n("output_tokens"),
                    ..Usage::default()
                };
                self.usage = Some(u);
                out.push(Progress::Usage { usage: u });
                self.result = Some(v);
            }
            _ => out.push(Progress::Output {
                stream,
                line: line.to_string(),
            }),
        }
    }

    fn finish(&mut self, exit: &ProcessExit) -> Result<TaskOutput, RunError> {
        let mut ignored = Vec::new();
        self.flush_text(&mut ignored);
        let status = self
            .result
            .as_ref()
            .and_then(|r| r.get("status"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if status == "success" && exit.code() == Some(0) {
            return Ok(TaskOutput {
                summary: self.last_text.as_deref().map(|t| summary_line(t, 200)),
                session_id: self.session.clone(),
                usage: self.usage,
                output_tail: exit.tail_opt(),
            });
        }
        let result_msg = self
            .result
            .as_ref()
            .and_then(|r| r.pointer("/error/message"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let error_type = self
            .result
            .as_ref()
            .and_then(|r| r.pointer("/error/type"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let stderr_text = self.stderr.join("\n");
        let msg = result_msg.clone().unwrap_or_else(|| {
            self.stderr
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty() && !l.starts_with("    at "))
                .cloned()
                .unwrap_or_else(|| format!("gemini ended with {}", exit.describe()))
        });
        Err(classify(
            exit.code(),
            &error_type,
            &msg,
            &stderr_text,
            self.stderr_retry_status,
        ))
    }

    fn session(&self) -> Option<String> {
        self.session.clone()
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

/// Strips ANSI colour sequences (Gemini colours some stderr messages).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The kind of a Gemini failure from its exit code, error type and message.
pub(crate) fn classify(
    code: Option<i32>,
    error_type: &str,
    msg: &str,
    stderr: &str,
    retry_status: Option<u16>,
) -> RunError {
    let msg = strip_ansi(msg);
    let text = summary_line(&msg, 300);
    let lower = msg.to_ascii_lowercase();
    let wait = retry_in(&msg);
    let transient = |t: String| {
        RunError::new(ErrorKind::Transient, t)
            .with_retry_after(wait)
            .rate_limited(true)
    };
    if lower.contains("error resuming session") {
        return RunError::new(ErrorKind::Failed, text);
    }
    if error_type == "FatalTurnLimitedError" || code == Some(53) {
        return RunError::new(ErrorKind::TurnLimit, text);
    }
    let context = lower.contains("input token count")
        || lower.contains("exceeds the maximum number of tokens")
        || lower.contains("context window")
        || lower.contains("too long");
    match code {
        Some(173) => transient(text),
        Some(244 | 246 | 247 | 248) => transient(text),
        Some(145 | 147) => RunError::new(ErrorKind::Fatal, text),
        Some(41) => RunError::new(
            ErrorKind::Fatal,
            format!("gemini authentication is not set up: {text}"),
        ),
        Some(55) => RunError::new(
            ErrorKind::Fatal,
            format!(
                "gemini refuses to run in an untrusted folder: {}",
                summary_line(&strip_ansi(stderr), 200)
            ),
        ),
        Some(42 | 44 | 52) => RunError::new(ErrorKind::Fatal, text),
        Some(144) if context => RunError::new(ErrorKind::ContextOverflow, text),
        Some(144) if is_auth_error(&msg) => RunError::new(ErrorKind::Fatal, text),
        Some(144) => RunError::new(ErrorKind::Failed, text),
        _ => {
            if context {
                RunError::new(ErrorKind::ContextOverflow, text)
            } else if is_auth_error(&msg) {
                RunError::new(ErrorKind::Fatal, text)
            } else if matches!(http_status_in(&msg).or(retry_status), Some(429 | 500..=599))
                || lower.contains("overloaded")
                || lower.contains("quota")
                || is_connection_error(&msg)
            {
                transient(text)
            } else {
                RunError::new(ErrorKind::Failed, text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_map_to_kinds() {
        let k = |c: i32, m: &str| classify(Some(c), "unknown", m, "", None).kind;
        assert_eq!(
            k(173, "[API Error: You exceeded your current quota]"),
            ErrorKind::Transient
        );
        assert_eq!(k(145, "[API Error: UNAUTHENTICATED]"), ErrorKind::Fatal);
        assert_eq!(
            k(
                144,
                "[API Error: The input token count (1203847) exceeds the maximum number of tokens allowed (1048576).]"
            ),
            ErrorKind::ContextOverflow
        );
        assert_eq!(
            k(
                144,
                "[API Error: API key not valid. Please pass a valid API key.]"
            ),
            ErrorKind::Fatal
        );
        assert_eq!(k(244, "[API Error: INTERNAL]"), ErrorKind::Transient);
        assert_eq!(
            k(247, "[API Error: The model is overloaded.]"),
            ErrorKind::Transient
        );
        assert_eq!(k(53, "Reached max session turns"), ErrorKind::TurnLimit);
        assert_eq!(k(55, ""), ErrorKind::Fatal);
        assert_eq!(k(41, "Invalid auth method selected."), ErrorKind::Fatal);
        assert_eq!(
            k(
                1,
                "[API Error: exception TypeError: fetch failed sending request]"
            ),
            ErrorKind::Transient
        );
        assert_eq!(k(1, "something odd"), ErrorKind::Failed);
    }

    #[test]
    fn a_429_carries_the_suggested_wait() {
        let e = classify(
            Some(173),
            "unknown",
            "[API Error: quota ...\nPlease retry in 2.5s.\nSuggested retry after 2s.]",
            "",
            None,
        );
        assert_eq!(e.retry_after, Some(std::time::Duration::from_millis(2500)));
        assert!(e.rate_limited);
    }

    #[test]
    fn stderr_attempt_lines_are_api_retries_and_deltas_become_one_message() {
        let mut s = GeminiStream::default();
        let mut out = Vec::new();
        s.line(
            Stream::Stderr,
            "Attempt 1 failed: You exceeded your current quota. Please retry in 2.5s.",
            &mut out,
        );
        assert!(matches!(
            out[0],
            Progress::ApiRetry {
                attempt: 1,
                status: Some(429),
                delay_ms: Some(2500),
                ..
            }
        ));
        out.clear();
        s.line(
            Stream::Stdout,
            r#"{"type":"message","role":"assistant","content":"Created `hello.txt`","delta":true}"#,
            &mut out,
        );
        s.line(
            Stream::Stdout,
            r#"{"type":"message","role":"assistant","content":" containing it.","delta":true}"#,
            &mut out,
        );
        assert!(out.is_empty());
        s.line(Stream::Stdout, r#"{"type":"tool_use","tool_name":"write_file","tool_id":"x","parameters":{"file_path":"hello.txt"}}"#, &mut out);
        assert_eq!(
            out[0],
            Progress::Message {
                text: "Created `hello.txt` containing it.".into()
            }
        );
        assert_eq!(
            out[1],
            Progress::ToolCall {
                tool: "write_file".into(),
                arg: Some("hello.txt".into())
            }
        );
    }
}
