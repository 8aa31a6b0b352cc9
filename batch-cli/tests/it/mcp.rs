//! `mdbatch mcp` as a host sees it: raw JSON-RPC lines over stdio, one
//! message per line, against the real backend and stand-in agents.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const PROTOCOL: &str = "2025-06-18";
const TOOLS: [&str; 7] = ["plan", "check", "run", "status", "logs", "wait", "stop"];

/// Three tasks; `two` fails; each waits for its `go-<id>` file to exist.
const TASKS: &str = "# Batch\n\nContext.\n\n- [ ] First task <!-- id: one -->\n- [ ] Second task <!-- id: two -->\n- [ ] Third task <!-- id: three -->\n";
const AGENT: &str = "#!/bin/sh\necho \"working on $1\"\nwhile [ ! -e \"go-$1\" ]; do sleep 0.05; done\n[ \"$1\" = two ] && { echo \"two cannot be done\" >&2; exit 1; }\necho \"finished $1\"\n";

struct Client {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

/// `root/` (the server's root, with task.md and the agent) beside `outside/`.
fn folder() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("outside")).expect("mkdir");
    std::fs::write(root.join("task.md"), TASKS).expect("write");
    std::fs::write(root.join("agent.sh"), AGENT).expect("write");
    std::fs::set_permissions(
        root.join("agent.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    std::fs::write(dir.path().join("outside/task.md"), "- [ ] secret\n").expect("write");
    dir
}

fn go(root: &Path, ids: &[&str]) {
    for id in ids {
        std::fs::write(root.join(format!("go-{id}")), "").expect("go file");
    }
}

impl Client {
    async fn start(root: &Path) -> Self {
        let mut child = Command::new(crate::bin())
            .arg("mcp")
            .arg("--root")
            .arg(root)
            .current_dir(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the server");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut c = Self {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            next_id: 1,
        };
        let (init, _) = c
            .request(
                "initialize",
                json!({"protocolVersion": PROTOCOL, "capabilities": {},
                       "clientInfo": {"name": "it", "version": "0"}}),
            )
            .await;
        assert_eq!(init["result"]["protocolVersion"], PROTOCOL, "{init}");
        assert_eq!(init["result"]["serverInfo"]["name"], "mdbatch", "{init}");
        c.notify("notifications/initialized", json!({})).await;
        c
    }

    async fn send_line(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).await.expect("write");
        self.stdin.write_all(b"\n").await.expect("write");
        self.stdin.flush().await.expect("flush");
    }

    async fn notify(&mut self, method: &str, params: Value) {
        let m = json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.send_line(&m.to_string()).await;
    }

    /// A request's response and the notifications that came before it.
    async fn request(&mut self, method: &str, params: Value) -> (Value, Vec<Value>) {
        let id = self.next_id;
        self.next_id += 1;
        let m = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_line(&m.to_string()).await;
        let mut notes = Vec::new();
        loop {
            let line = self
                .lines
                .next_line()
                .await
                .expect("read")
                .unwrap_or_else(|| panic!("the server closed stdout before answering {method}"));
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not JSON from the server: {e}: {line}"));
            if v.get("id") == Some(&json!(id)) && v.get("method").is_none() {
                return (v, notes);
            }
            notes.push(v);
        }
    }

    async fn call(&mut self, tool: &str, args: Value) -> Value {
        self.call_with(tool, args, None).await.0
    }

    async fn call_with(
        &mut self,
        tool: &str,
        args: Value,
        token: Option<Value>,
    ) -> (Value, Vec<Value>) {
        let mut params = json!({"name": tool, "arguments": args});
        if let Some(t) = token {
            params["_meta"] = json!({"progressToken": t});
        }
        let (resp, notes) = self.request("tools/call", params).await;
        let result = resp
            .get("result")
            .unwrap_or_else(|| panic!("{tool}: protocol error instead of a result: {resp}"))
            .clone();
        (result, notes)
    }

    async fn assert_alive(&mut self) {
        let (pong, _) = self.request("ping", json!({})).await;
        assert_eq!(pong["result"], json!({}), "{pong}");
        assert!(self.child.try_wait().expect("try_wait").is_none());
    }

    async fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin);
        self.child.wait().await.expect("wait")
    }
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

fn is_error(result: &Value) -> bool {
    result["isError"] == json!(true)
}

fn run_options() -> Value {
    json!({"cmd": "./agent.sh {id}", "jobs": 1, "retries": 0})
}

/// Waits (bounded wait calls) until the run has ended.
async fn wait_to_end(c: &mut Client) -> Value {
    for _ in 0..20 {
        let w = c
            .call("wait", json!({"file": "task.md", "timeout_secs": 10}))
            .await;
        assert!(!is_error(&w), "{w}");
        if w["structuredContent"]["end"] == "finished" {
            return w;
        }
    }
    panic!("the run did not end");
}

#[tokio::test]
async fn a_client_lists_plans_runs_waits_with_progress_and_reads_status_and_logs() {
    let dir = folder();
    let root = dir.path().join("root");
    let mut c = Client::start(&root).await;

    let (resp, _) = c.request("tools/list", json!({})).await;
    let tools = resp["result"]["tools"].as_array().expect("tools");
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, TOOLS);
    for t in tools {
        assert_eq!(t["inputSchema"]["additionalProperties"], false, "{t}");
    }

    let plan = c.call("plan", json!({"file": "task.md"})).await;
    assert!(!is_error(&plan), "{plan}");
    assert!(text(&plan).contains("\"one\""), "{plan}");
    let check = c.call("check", json!({"file": "task.md"})).await;
    assert_eq!(check["structuredContent"]["ok"], true, "{check}");

    let run = c
        .call("run", json!({"file": "task.md", "options": run_options()}))
        .await;
    assert!(!is_error(&run), "{run}");
    let run_id = run["structuredContent"]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    let log = run["structuredContent"]["log"]
        .as_str()
        .expect("log")
        .to_owned();
    assert!(log.contains(".mdbatch/task.md/detached/"), "{log}");

    let again = c.call("run", json!({"file": "task.md"})).await;
    assert!(
        is_error(&again) && text(&again).contains(&format!("run {run_id} is already going on")),
        "{again}"
    );
    let status = c.call("status", json!({"file": "task.md"})).await;
    assert_eq!(status["structuredContent"]["state"], "running", "{status}");
    assert_eq!(status["structuredContent"]["run_id"], run_id.as_str());

    // `one` cannot finish before its go file: the wait times out, the run goes on.
    let (w, _) = c
        .call_with(
            "wait",
            json!({"file": "task.md", "timeout_secs": 1}),
            Some(json!("w-0")),
        )
        .await;
    assert_eq!(w["structuredContent"]["end"], "timeout", "{w}");

    go(&root, &["one", "two", "three"]);
    let (wait, notes) = c
        .call_with(
            "wait",
            json!({"file": "task.md", "timeout_secs": 50}),
            Some(json!("w-1")),
        )
        .await;
    assert_eq!(wait["structuredContent"]["end"], "finished", "{wait}");
    assert_eq!(
        wait["structuredContent"]["summary"],
        "3/3 settled: 2 done, 1 failed, 0 skipped, 0 running"
    );
    assert!(!notes.is_empty(), "progress notifications while waiting");
    let mut last = -1.0;
    for n in &notes {
        assert_eq!(n["method"], "notifications/progress", "{n}");
        assert_eq!(n["params"]["progressToken"], "w-1", "{n}");
        let p = n["params"]["progress"].as_f64().expect("progress");
        assert!(p > last, "strictly increasing: {notes:?}");
        last = p;
        assert_eq!(n["params"]["total"], 3.0);
    }

    let status = c.call("status", json!({"file": "task.md"})).await;
    let s = &status["structuredContent"];
    assert_eq!(s["state"], "finished", "{status}");
    let states: Vec<&str> = s["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(states, ["done", "failed", "done"]);
    assert_eq!(s["tasks"][1]["failures"][0]["kind"], "Failed", "{status}");

    let logs = c
        .call("logs", json!({"file": "task.md", "task": "two"}))
        .await;
    assert!(!is_error(&logs), "{logs}");
    assert!(text(&logs).contains("two cannot be done"), "{logs}");
    let logs = c
        .call(
            "logs",
            json!({"file": "task.md", "task": "two", "attempt": 5}),
        )
        .await;
    assert!(
        is_error(&logs) && text(&logs).contains("has no attempt 5 (it has 1)"),
        "{logs}"
    );
    let md = std::fs::read_to_string(root.join("task.md")).expect("task.md");
    assert!(
        md.contains("- [x] First task")
            && md.contains("- [ ] Second task")
            && md.contains("- [x] Third task"),
        "{md}"
    );

    let (journal, _) = c
        .request(
            "resources/read",
            json!({"uri": "mdbatch://journal/task.md"}),
        )
        .await;
    assert!(
        journal["result"]["contents"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains(&run_id)),
        "{journal}"
    );
    let stop = c.call("stop", json!({"file": "task.md"})).await;
    assert!(
        is_error(&stop) && text(&stop).contains("no run is going on"),
        "{stop}"
    );
    assert!(c.close().await.success());
}

#[tokio::test]
async fn stop_ends_a_run_gracefully_and_its_tasks_stay_open() {
    let dir = folder();
    let root = dir.path().join("root");
    let mut c = Client::start(&root).await;
    let run = c
        .call("run", json!({"file": "task.md", "options": run_options()}))
        .await;
    assert!(!is_error(&run), "{run}");
    // The first task has started when its log says so.
    crate::wait_for("the first attempt's log", Duration::from_secs(30), || {
        std::fs::read_to_string(root.join(".mdbatch/task.md/logs/one/1.log"))
            .is_ok_and(|t| t.contains("working on one"))
    });
    let stop = c.call("stop", json!({"file": "task.md"})).await;
    assert_eq!(stop["structuredContent"]["forced"], false, "{stop}");
    let w = wait_to_end(&mut c).await;
    assert_eq!(w["structuredContent"]["status"]["state"], "stopped", "{w}");
    let md = std::fs::read_to_string(root.join("task.md")).expect("task.md");
    assert_eq!(md, TASKS, "no box checked");
    assert!(c.close().await.success());
}

fn bad_inputs(tool: &str, outside: &str) -> Vec<(Value, &'static str)> {
    let mut good = json!({"file": "task.md"});
    if tool == "logs" {
        good["task"] = json!("one");
    }
    let with = |k: &str, v: Value| {
        let mut o = good.clone();
        o[k] = v;
        o
    };
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("file");
    vec![
        (missing, "missing field `file`"),
        (with("bogus", json!(1)), "unknown field `bogus`"),
        (
            with("file", json!(42)),
            "file: invalid type: integer `42`, expected a string",
        ),
        (
            with("file", json!("../outside/task.md")),
            "outside the server's root folder",
        ),
        (
            with("file", json!(outside)),
            "outside the server's root folder",
        ),
        (
            with("file", json!("out-link.md")),
            "outside the server's root folder",
        ),
        (
            with("file", json!("missing.md")),
            "missing.md: No such file",
        ),
        (with("file", json!("")), "the path is empty"),
    ]
}

#[tokio::test]
async fn bad_input_to_every_tool_is_a_clear_tool_error_and_the_server_lives_on() {
    let dir = folder();
    let root = dir.path().join("root");
    std::os::unix::fs::symlink(dir.path().join("outside/task.md"), root.join("out-link.md"))
        .expect("symlink");
    let outside = dir.path().join("outside/task.md").display().to_string();
    let mut c = Client::start(&root).await;
    for tool in TOOLS {
        for (args, expected) in bad_inputs(tool, &outside) {
            let r = c.call(tool, args.clone()).await;
            assert!(is_error(&r), "{tool} {args}: {r}");
            assert!(
                text(&r).contains(expected),
                "{tool} {args}: expected {expected:?} in {:?}",
                text(&r)
            );
        }
        let r = c.call(tool, Value::Null).await;
        assert!(
            is_error(&r) && text(&r).contains("missing field"),
            "{tool} without arguments: {r}"
        );
    }
    for (tool, args, expected) in [
        (
            "plan",
            json!({"file": "task.md", "options": {"jobs": 2}}),
            "unknown field `jobs`",
        ),
        (
            "run",
            json!({"file": "task.md", "options": {"jobs": 0}}),
            "options.jobs: 0 is out of range",
        ),
        (
            "run",
            json!({"file": "task.md", "options": {"jobs": "4"}}),
            "options.jobs: invalid type",
        ),
        (
            "run",
            json!({"file": "task.md", "options": {"max_cost_usd": -2}}),
            "options.max_cost_usd",
        ),
        (
            "run",
            json!({"file": "task.md", "options": {"agent": "rm"}}),
            "options.agent: unknown agent `rm`",
        ),
        (
            "run",
            json!({"file": "task.md", "options": {"at_cap": "later"}}),
            "options.at_cap",
        ),
        (
            "run",
            json!({"file": "task.md", "options": "fast"}),
            "options: invalid type",
        ),
        ("logs", json!({"file": "task.md"}), "missing field `task`"),
        (
            "logs",
            json!({"file": "task.md", "task": "one", "tail": 0}),
            "tail: 0 is out of range",
        ),
        (
            "logs",
            json!({"file": "task.md", "task": "nine"}),
            "no task `nine`",
        ),
        (
            "logs",
            json!({"file": "task.md", "task": "one"}),
            "has not run yet",
        ),
        (
            "wait",
            json!({"file": "task.md", "timeout_secs": 3600}),
            "timeout_secs: 3600 is out of range",
        ),
        (
            "stop",
            json!({"file": "task.md", "now": "yes"}),
            "now: invalid type",
        ),
        ("stop", json!({"file": "task.md"}), "no run is going on"),
        ("status", json!({"file": "."}), "not a regular file"),
    ] {
        let r = c.call(tool, args.clone()).await;
        assert!(
            is_error(&r) && text(&r).contains(expected),
            "{tool} {args}: expected {expected:?} in {r}"
        );
    }
    let (unknown, _) = c
        .request("tools/call", json!({"name": "rm", "arguments": {}}))
        .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    c.send_line("{this is not json").await;
    c.assert_alive().await;
    for uri in [
        "mdbatch://task/..%2Foutside%2Ftask.md",
        "mdbatch://task/%2E%2E/outside/task.md",
        "file:///etc/passwd",
    ] {
        let (resp, _) = c.request("resources/read", json!({"uri": uri})).await;
        assert_eq!(resp["error"]["code"], -32002, "{uri}: {resp}");
    }
    // Nothing was started by any of it.
    assert!(!root.join(".mdbatch/task.md/journal.jsonl").exists());
    assert!(c.close().await.success());
}
