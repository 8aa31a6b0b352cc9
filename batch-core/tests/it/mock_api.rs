//! A mock model API on 127.0.0.1 for the real agent CLIs: a small HTTP/1.1
//! server (one thread per connection, `Connection: close`) whose replies are
//! scripted per request, with the wire formats of
//! `../shared/agents/README.md` and `codex-and-gemini.md`:
//! - Anthropic Messages API (`POST /v1/messages`, SSE `message_start` …
//!   `message_stop`), for Claude Code;
//! - Gemini API (`POST /v1beta/models/M:streamGenerateContent?alt=sse`,
//!   `data:` chunks of `GenerateContentResponse`), for Gemini CLI;
//! - OpenAI Responses API (`POST /v1/responses`, SSE `response.*`), for Codex.
//!
//! Nothing here talks to a real provider.

#![allow(dead_code)] // each CLI test uses its own part of the mock

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub raw_body: String,
}

impl Request {
    /// The whole body as text (for "does the conversation contain X").
    pub fn text(&self) -> &str {
        &self.raw_body
    }
}

/// What the mock answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `200` with `text/event-stream`: (event name, data) pairs; an empty
    /// event name sends a bare `data:` line.
    Sse(Vec<(String, Value)>),
    /// Any status with a JSON body and extra headers.
    Json(u16, Value, Vec<(String, String)>),
}

type Script = dyn Fn(&Request, usize) -> Reply + Send + Sync;

/// The running server. Dropping it stops accepting (the thread ends with the process).
pub struct MockApi {
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl MockApi {
    /// Starts a server answering each request with `script(request, index)`.
    pub fn start(script: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> MockApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let reqs = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let reqs = reqs.clone();
                let script = script.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &reqs, &*script);
                });
            }
        });
        MockApi { port, requests }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn serve(conn: TcpStream, reqs: &Mutex<Vec<Request>>, script: &Script) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |k: &str| {
        headers
            .iter()
            .find(|(hk, _)| hk == k)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let raw_body = String::from_utf8_lossy(&body).into_owned();
    let req = Request {
        method,
        path,
        headers,
        body: serde_json::from_str(&raw_body).unwrap_or(Value::Null),
        raw_body,
    };
    let index = {
        let mut r = reqs.lock().map_err(|_| std::io::Error::other("poisoned"))?;
        r.push(req.clone());
        r.len() - 1
    };
    let reply = script(&req, index);
    let mut out = conn;
    match reply {
        Reply::Sse(events) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n"
            )?;
            for (event, data) in events {
                if !event.is_empty() {
                    writeln!(out, "event: {event}")?;
                }
                write!(out, "data: {data}\n\n")?;
                out.flush()?;
            }
        }
        Reply::Json(status, body, extra) => {
            let body = body.to_string();
            write!(
                out,
                "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                reason(status),
                body.len()
            )?;
            for (k, v) in extra {
                write!(out, "{k}: {v}\r\n")?;
            }
            write!(out, "\r\n{body}")?;
        }
    }
    out.flush()?;
    let _ = out.shutdown(std::net::Shutdown::Both);
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

// ---------------------------------------------------------------------------
// Anthropic Messages API.

pub mod anthropic {
    use super::*;

    fn start(model: &str) -> (String, Value) {
        (
            "message_start".into(),
            json!({"type":"message_start","message":{"id":"msg_mock","type":"message","role":"assistant","model":model,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":50,"output_tokens":1}}}),
        )
    }

    fn end(stop: &str, out_tokens: u64) -> Vec<(String, Value)> {
        vec![
            (
                "message_delta".into(),
                json!({"type":"message_delta","delta":{"stop_reason":stop,"stop_sequence":null},"usage":{"output_tokens":out_tokens}}),
            ),
            ("message_stop".into(), json!({"type":"message_stop"})),
        ]
    }

    /// A final text answer.
    pub fn text(text: &str) -> Reply {
        let mut ev = vec![
            start("claude-mock"),
            (
                "content_block_start".into(),
                json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
            ),
            (
                "content_block_delta".into(),
                json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":text}}),
            ),
            (
                "content_block_stop".into(),
                json!({"type":"content_block_stop","index":0}),
            ),
        ];
        ev.extend(end("end_turn", 12));
        Reply::Sse(ev)
    }

    /// A tool call (`Write`, `Bash`, …) with its input.
    pub fn tool_use(id: &str, name: &str, input: Value) -> Reply {
        let mut ev = vec![
            start("claude-mock"),
            (
                "content_block_start".into(),
                json!({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":id,"name":name,"input":{}}}),
            ),
            (
                "content_block_delta".into(),
                json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":input.to_string()}}),
            ),
            (
                "content_block_stop".into(),
                json!({"type":"content_block_stop","index":0}),
            ),
        ];
        ev.extend(end("tool_use", 20));
        Reply::Sse(ev)
    }

    /// An API error with the Anthropic error body.
    pub fn error(status: u16, kind: &str, message: &str) -> Reply {
        let mut headers = vec![("request-id".to_string(), "req_mock".to_string())];
        if status == 429 {
            headers.push(("retry-after".into(), "1".into()));
        }
        if status == 529 {
            headers.push(("x-should-retry".into(), "true".into()));
        }
        Reply::Json(
            status,
            json!({"type":"error","error":{"type":kind,"message":message}}),
            headers,
        )
    }

    /// Whether the request's last user message carries a tool result.
    pub fn has_tool_result(req: &Request) -> bool {
        req.body
            .get("messages")
            .and_then(Value::as_array)
            .and_then(|m| m.last())
            .map(|m| m.to_string().contains("tool_result"))
            .unwrap_or(false)
    }

    /// Whether this is a main conversation request (not a side call such as a title).
    pub fn is_conversation(req: &Request) -> bool {
        req.path.starts_with("/v1/messages")
            && req
                .body
                .get("tools")
                .and_then(Value::as_array)
                .is_some_and(|t| !t.is_empty())
    }
}

// ---------------------------------------------------------------------------
// Gemini API.

pub mod gemini {
    use super::*;

    fn usage() -> Value {
        json!({"promptTokenCount":8412,"candidatesTokenCount":31,"totalTokenCount":8443,"thoughtsTokenCount":0,"cachedContentTokenCount":0})
    }

    pub fn text(text: &str) -> Reply {
        Reply::Sse(vec![(
            String::new(),
            json!({"candidates":[{"content":{"role":"model","parts":[{"text":text}]},"finishReason":"STOP","index":0}],"usageMetadata":usage(),"modelVersion":"gemini-2.5-flash","responseId":"r1"}),
        )])
    }

    pub fn function_call(name: &str, args: Value) -> Reply {
        Reply::Sse(vec![(
            String::new(),
            json!({"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":name,"args":args}}]},"finishReason":"STOP","index":0}],"usageMetadata":usage(),"modelVersion":"gemini-2.5-flash","responseId":"r2"}),
        )])
    }

    pub fn error(code: u16, status: &str, message: &str) -> Reply {
        Reply::Json(
            code,
            json!({"error":{"code":code,"message":message,"status":status}}),
            vec![],
        )
    }

    pub fn has_function_response(req: &Request) -> bool {
        req.body
            .get("contents")
            .and_then(Value::as_array)
            .and_then(|c| c.last())
            .map(|m| m.to_string().contains("functionResponse"))
            .unwrap_or(false)
    }
}

// ---------------------------------------------------------------------------
// OpenAI Responses API.

pub mod openai {
    use super::*;

    fn usage() -> Value {
        json!({"input_tokens":9120,"input_tokens_details":{"cached_tokens":0},"output_tokens":24,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":9144})
    }

    fn created() -> Vec<(String, Value)> {
        let resp = json!({"id":"resp_mock","object":"response","status":"in_progress","output":[]});
        vec![
            (
                "response.created".into(),
                json!({"type":"response.created","response":resp}),
            ),
            (
                "response.in_progress".into(),
                json!({"type":"response.in_progress","response":resp}),
            ),
        ]
    }

    fn completed(output: Value) -> (String, Value) {
        (
            "response.completed".into(),
            json!({"type":"response.completed","response":{"id":"resp_mock","object":"response","status":"completed","output":output,"usage":usage()}}),
        )
    }

    pub fn text(text: &str) -> Reply {
        let item = json!({"type":"message","id":"msg_mock","role":"assistant","status":"completed","content":[{"type":"output_text","text":text,"annotations":[]}]});
        let mut ev = created();
        ev.push(("response.output_item.added".into(), json!({"type":"response.output_item.added","output_index":0,"item":{"type":"message","id":"msg_mock","role":"assistant","status":"in_progress","content":[]}})));
        ev.push(("response.content_part.added".into(), json!({"type":"response.content_part.added","item_id":"msg_mock","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}})));
        ev.push(("response.output_text.delta".into(), json!({"type":"response.output_text.delta","item_id":"msg_mock","output_index":0,"content_index":0,"delta":text})));
        ev.push(("response.output_text.done".into(), json!({"type":"response.output_text.done","item_id":"msg_mock","output_index":0,"content_index":0,"text":text})));
        ev.push(("response.content_part.done".into(), json!({"type":"response.content_part.done","item_id":"msg_mock","output_index":0,"content_index":0,"part":{"type":"output_text","text":text,"annotations":[]}})));
        ev.push((
            "response.output_item.done".into(),
            json!({"type":"response.output_item.done","output_index":0,"item":item}),
        ));
        ev.push(completed(json!([item])));
        Reply::Sse(ev)
    }

    pub fn exec_command(call_id: &str, cmd: &str) -> Reply {
        let args = json!({"cmd": cmd}).to_string();
        let item = json!({"type":"function_call","id":"fc_mock","call_id":call_id,"name":"exec_command","arguments":args,"status":"completed"});
        let mut ev = created();
        ev.push(("response.output_item.added".into(), json!({"type":"response.output_item.added","output_index":0,"item":{"type":"function_call","id":"fc_mock","call_id":call_id,"name":"exec_command","arguments":"","status":"in_progress"}})));
        ev.push(("response.function_call_arguments.delta".into(), json!({"type":"response.function_call_arguments.delta","item_id":"fc_mock","output_index":0,"delta":args})));
        ev.push(("response.function_call_arguments.done".into(), json!({"type":"response.function_call_arguments.done","item_id":"fc_mock","output_index":0,"arguments":args})));
        ev.push((
            "response.output_item.done".into(),
            json!({"type":"response.output_item.done","output_index":0,"item":item}),
        ));
        ev.push(completed(json!([item])));
        Reply::Sse(ev)
    }

    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::Json(
            status,
            json!({"error":{"message":message,"type":code,"code":code,"param":null}}),
            vec![],
        )
    }

    pub fn has_tool_output(req: &Request) -> bool {
        req.raw_body.contains("function_call_output")
    }
}
