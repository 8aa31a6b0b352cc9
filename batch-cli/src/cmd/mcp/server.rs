//! The MCP server: tools and resources over a [`Backend`], on stdio.
//!
//! Lifecycle: [`serve_stdio`] answers `initialize`, then each request in
//! its own task (rmcp's service loop), until the client closes stdin.
//!
//! Every tool call goes the same way: parse and validate the arguments
//! ([`super::tools::parse`]), confine the file to the root
//! ([`Root::resolve_file`]), call the backend off the async threads, and
//! answer with structured content plus the same JSON as text. Anything that
//! goes wrong on the way — bad arguments, a path outside the root, a
//! backend error, even a backend panic — is a tool error result
//! (`isError: true`) the model can read. Only an unknown tool name is a
//! protocol error (the request cannot be routed).
//!
//! `wait` forwards the backend's [`WaitProgress`] as
//! `notifications/progress` when the request carried a progress token:
//! strictly increasing `progress` (tasks settled), `total` (tasks in the
//! run), a one-line `message`; all of them are sent before the result.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, ProgressToken, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};
use serde::Serialize;

use super::backend::{Backend, BackendError, ProgressSink, WaitProgress};
use super::root::Root;
use super::tools::{self, DEFAULT_TAIL, DEFAULT_WAIT_SECS};

/// URI scheme prefix of the task-file resources.
pub const TASK_URI: &str = "mdbatch://task/";
/// URI scheme prefix of the journal resources.
pub const JOURNAL_URI: &str = "mdbatch://journal/";
/// Extra time a backend's `wait` gets past its timeout before the server
/// gives up on it.
const WAIT_GRACE: Duration = Duration::from_secs(5);

/// The server. Cheap to clone (rmcp clones the handler per request).
pub struct McpServer<B> {
    backend: Arc<B>,
    root: Root,
    /// Task files named in this session, for `resources/list`.
    seen: Arc<Mutex<BTreeSet<PathBuf>>>,
}

impl<B> Clone for McpServer<B> {
    fn clone(&self) -> Self {
        Self {
            backend: Arc::clone(&self.backend),
            root: self.root.clone(),
            seen: Arc::clone(&self.seen),
        }
    }
}

/// Serve `backend` over stdin/stdout until the client hangs up.
pub async fn serve_stdio<B: Backend>(backend: B, root: Root) -> Result<(), ServeError> {
    let running = McpServer::new(backend, root)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| ServeError(e.to_string()))?;
    Ok(())
}

/// The session could not start or ended abnormally.
#[derive(Debug, thiserror::Error)]
#[error("mcp: {0}")]
pub struct ServeError(String);

fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

fn tool_ok<T: Serialize>(value: &T) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(v) => {
            let text = serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string());
            let mut r = CallToolResult::structured(v);
            r.content = vec![ContentBlock::text(text)];
            r
        }
        Err(e) => tool_error(format!("internal error: could not encode the answer: {e}")),
    }
}

/// Percent-encode a relative path for a URI (unreserved bytes and `/` kept).
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode_path(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl<B: Backend> McpServer<B> {
    /// A server confined to `root`.
    pub fn new(backend: B, root: Root) -> Self {
        Self {
            backend: Arc::new(backend),
            root,
            seen: Arc::default(),
        }
    }

    fn resolve(&self, file: &str) -> Result<PathBuf, CallToolResult> {
        let path = self
            .root
            .resolve_file(file)
            .map_err(|e| tool_error(e.to_string()))?;
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(path.clone());
        }
        Ok(path)
    }

    /// Run a synchronous backend call on the blocking pool; a panic in it
    /// becomes a tool error.
    async fn blocking<T, F>(&self, tool: &str, f: F) -> CallToolResult
    where
        T: Serialize + Send + 'static,
        F: FnOnce(&B) -> Result<T, BackendError> + Send + 'static,
    {
        let backend = Arc::clone(&self.backend);
        match tokio::task::spawn_blocking(move || f(&backend)).await {
            Ok(Ok(v)) => tool_ok(&v),
            Ok(Err(e)) => tool_error(e.to_string()),
            Err(e) => tool_error(format!("internal error in `{tool}`: {e}")),
        }
    }

    async fn call(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let args = request.arguments;
        macro_rules! args {
            ($t:ty, $name:literal) => {
                match tools::parse::<$t>($name, args) {
                    Ok(a) => a,
                    Err(m) => return Ok(tool_error(m)),
                }
            };
        }
        macro_rules! file {
            ($f:expr) => {
                match self.resolve(&$f) {
                    Ok(p) => p,
                    Err(r) => return Ok(r),
                }
            };
        }
        Ok(match request.name.as_ref() {
            "plan" => {
                let a = args!(tools::PlanArgs, "plan");
                let file = file!(a.file);
                self.blocking("plan", move |b| b.plan(&file, &a.options))
                    .await
            }
            "check" => {
                let a = args!(tools::FileArgs, "check");
                let file = file!(a.file);
                self.blocking("check", move |b| {
                    b.check(&file)
                        .map(|d| serde_json::json!({ "ok": d.is_empty(), "diagnostics": d }))
                })
                .await
            }
            "run" => {
                let a = args!(tools::RunArgs, "run");
                let file = file!(a.file);
                self.blocking("run", move |b| b.run(&file, &a.options))
                    .await
            }
            "status" => {
                let a = args!(tools::FileArgs, "status");
                let file = file!(a.file);
                self.blocking("status", move |b| {
                    b.status(&file).map(|s| {
                        let summary = s.summary();
                        let mut v = serde_json::to_value(&s).unwrap_or_default();
                        if let Some(o) = v.as_object_mut() {
                            o.insert("summary".into(), summary.into());
                        }
                        v
                    })
                })
                .await
            }
            "logs" => {
                let a = args!(tools::LogsArgs, "logs");
                let file = file!(a.file);
                let tail = a.tail.unwrap_or(DEFAULT_TAIL) as usize;
                self.blocking("logs", move |b| b.logs(&file, &a.task, a.attempt, tail))
                    .await
            }
            "wait" => {
                let a = args!(tools::WaitArgs, "wait");
                let file = file!(a.file);
                let timeout =
                    Duration::from_secs(u64::from(a.timeout_secs.unwrap_or(DEFAULT_WAIT_SECS)));
                self.wait(file, timeout, ctx).await
            }
            "stop" => {
                let a = args!(tools::StopArgs, "stop");
                let file = file!(a.file);
                self.blocking("stop", move |b| b.stop(&file, a.now)).await
            }
            other => {
                return Err(McpError::invalid_params(
                    format!("no tool `{other}`; tools/list names the tools"),
                    None,
                ));
            }
        })
    }

    async fn wait(
        &self,
        file: PathBuf,
        timeout: Duration,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let token = ctx.meta.get_progress_token();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let forward = tokio::spawn(forward_progress(rx, token, ctx.peer.clone()));
        let backend = Arc::clone(&self.backend);
        let mut waiting =
            tokio::spawn(async move { backend.wait(&file, timeout, ProgressSink(tx)).await });
        let result = tokio::select! {
            r = tokio::time::timeout(timeout + WAIT_GRACE, &mut waiting) => match r {
                Ok(Ok(Ok(outcome))) => {
                    let summary = outcome.status.summary();
                    let mut v = serde_json::to_value(&outcome).unwrap_or_default();
                    if let Some(o) = v.as_object_mut() {
                        o.insert("summary".into(), summary.into());
                    }
                    tool_ok(&v)
                }
                Ok(Ok(Err(e))) => tool_error(e.to_string()),
                Ok(Err(e)) => tool_error(format!("internal error in `wait`: {e}")),
                Err(_) => {
                    waiting.abort();
                    tool_error(format!("internal error in `wait`: no answer {}s past the timeout", WAIT_GRACE.as_secs()))
                }
            },
            () = ctx.ct.cancelled() => {
                waiting.abort();
                tool_error("`wait` cancelled by the client")
            }
        };
        // The sender went with the wait future: the forwarder drains what is
        // left and ends, so every notification precedes the result.
        let _ = forward.await;
        result
    }

    fn task_files(&self) -> Vec<PathBuf> {
        let mut files: BTreeSet<PathBuf> = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        if let Ok(p) = self.root.resolve_file("task.md") {
            files.insert(p);
        }
        files.into_iter().collect()
    }

    async fn read(&self, uri: &str) -> Result<ReadResourceResult, McpError> {
        let not_found = |why: String| {
            McpError::resource_not_found(why, Some(serde_json::json!({ "uri": uri })))
        };
        let (journal, rest) = if let Some(r) = uri.strip_prefix(TASK_URI) {
            (false, r)
        } else if let Some(r) = uri.strip_prefix(JOURNAL_URI) {
            (true, r)
        } else {
            return Err(not_found(format!(
                "{uri}: not an mdbatch resource; resources/list names them"
            )));
        };
        let rel =
            decode_path(rest).ok_or_else(|| not_found(format!("{uri}: bad percent-encoding")))?;
        let file = self
            .root
            .resolve_file(&rel)
            .map_err(|e| not_found(e.to_string()))?;
        let backend = Arc::clone(&self.backend);
        let uri_owned = uri.to_owned();
        let content = tokio::task::spawn_blocking(move || -> Result<ResourceContents, String> {
            if journal {
                match backend.journal(&file).map_err(|e| e.to_string())? {
                    Some(text) => Ok(ResourceContents::text(text, uri_owned)
                        .with_mime_type("application/x-ndjson")),
                    None => Err(format!("{}: no run yet, so no journal", file.display())),
                }
            } else {
                let bytes = crate::resolve::read_task_bytes(&file)
                    .map_err(|e| format!("{}: {e}", file.display()))?;
                let text =
                    String::from_utf8(bytes).map_err(|e| format!("{}: {e}", file.display()))?;
                Ok(ResourceContents::text(text, uri_owned).with_mime_type("text/markdown"))
            }
        })
        .await
        .map_err(|e| McpError::internal_error(format!("reading {uri}: {e}"), None))?
        .map_err(not_found)?;
        Ok(ReadResourceResult::new(vec![content]))
    }
}

async fn forward_progress(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<WaitProgress>,
    token: Option<ProgressToken>,
    peer: rmcp::Peer<RoleServer>,
) {
    let mut last: Option<u64> = None;
    while let Some(p) = rx.recv().await {
        let Some(token) = &token else { continue };
        // The spec wants progress to increase with every notification.
        if last.is_some_and(|l| p.settled <= l) {
            continue;
        }
        last = Some(p.settled);
        let param = ProgressNotificationParam::new(token.clone(), p.settled as f64)
            .with_total(p.total as f64)
            .with_message(p.message);
        if peer.notify_progress(param).await.is_err() {
            // The client is gone; the wait's result will not arrive either.
            break;
        }
    }
}

impl<B: Backend> ServerHandler for McpServer<B> {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("mdbatch", env!("CARGO_PKG_VERSION")))
        .with_instructions(format!(
            "mdbatch runs a markdown checklist of tasks as a batch of coding-agent subagents. \
             Paths are relative to {}. `plan` and `check` run nothing; `run` starts a detached \
             run and returns at once (it spends money); follow it with `status`, `wait` (bounded, \
             call again to keep waiting) and `logs`; `stop` ends it.",
            self.root.path().display()
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools::all()))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        tools::all().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.call(request, ctx).await.map(CallToolResponse::from)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let mut resources = Vec::new();
        for file in self.task_files() {
            let Some(rel) = self.root.relative(&file) else {
                continue;
            };
            let uri = encode_path(&rel);
            resources.push(
                Resource::new(format!("{TASK_URI}{uri}"), rel.clone())
                    .with_title(format!("task file {rel}"))
                    .with_mime_type("text/markdown"),
            );
            resources.push(
                Resource::new(format!("{JOURNAL_URI}{uri}"), format!("{rel} journal"))
                    .with_title(format!("journal of the latest run of {rel}"))
                    .with_mime_type("application/x-ndjson"),
            );
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(format!("{TASK_URI}{{+path}}"), "task file")
                .with_mime_type("text/markdown"),
            ResourceTemplate::new(format!("{JOURNAL_URI}{{+path}}"), "journal")
                .with_mime_type("application/x-ndjson"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        self.read(&request.uri)
            .await
            .map(ReadResourceResponse::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths_round_trip_through_percent_encoding() {
        for p in ["task.md", "dir with space/ü.md", "a%b.md"] {
            assert_eq!(decode_path(&encode_path(p)).as_deref(), Some(p));
        }
        assert_eq!(encode_path("a b/c.md"), "a%20b/c.md");
        assert_eq!(decode_path("%zz"), None);
    }
}
