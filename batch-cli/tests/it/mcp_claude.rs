//! The real Claude Code (installed from npm at the tested version, driven by
//! the mock Messages API of batch-core's tests) with mdbatch as its MCP
//! server and as its plugin: the model's turns are scripted, the tool calls
//! and their answers are real. Skipped with a printed reason without npm.
//!
//! Run with `--nocapture` to see the sessions' tool calls and answers.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::run_claude::agent_cli::install;
use crate::run_claude::mock_api::{MockApi, Request, anthropic};

/// The real Claude Code, or a printed reason to skip (a failure where CI
/// requires the real CLIs), as `require_cli!` does for the other tests.
macro_rules! require_claude {
    () => {
        match install("@anthropic-ai/claude-code", "2.1.330", "claude") {
            Ok(p) => p,
            Err(why) => {
                if std::env::var_os("MDBATCH_REQUIRE_REAL_CLIS").is_some_and(|v| v == "1") {
                    panic!("cannot run the real claude 2.1.330: {why}");
                }
                eprintln!("SKIPPED: cannot run the real claude 2.1.330: {why}");
                return;
            }
        }
    };
}

const TASKS: &str = "# Greeting\n\nA tiny project.\n\n- [ ] Write hello.txt <!-- id: hello -->\n- [ ] Write bye.txt <!-- id: bye -->\n";
/// The batch's stand-in subagent: writes `<id>.txt`.
const AGENT: &str = "#!/bin/sh\necho \"writing $1.txt\"\necho \"$1\" > \"$1.txt\"\n";

fn tool_results(req: &Request) -> usize {
    req.raw_body.matches("\"tool_result\"").count()
}

/// A project with the task file, the agent, and `mdbatch` on PATH.
struct Project {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    home: PathBuf,
    path: String,
}

fn project() -> Project {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let dir = base.join("project");
    let home = base.join("home");
    let bin = base.join("bin");
    for d in [&dir, &home, &bin] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(dir.join("task.md"), TASKS).unwrap();
    std::fs::write(dir.join("agent.sh"), AGENT).unwrap();
    std::fs::set_permissions(dir.join("agent.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mdbatch"), bin.join("mdbatch")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Project {
        _tmp: tmp,
        dir,
        home,
        path,
    }
}

fn claude_cmd(claude: &Path, p: &Project, api: &MockApi) -> Command {
    let mut c = Command::new(claude);
    c.current_dir(&p.dir)
        .env("PATH", &p.path)
        .env("HOME", &p.home)
        .env("ANTHROPIC_BASE_URL", api.base_url())
        .env("ANTHROPIC_API_KEY", "sk-test")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("CLAUDE_CODE_MAX_RETRIES", "1")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        // MCP servers connect before the first request, and their tools are
        // in the request (not deferred behind tool search), so the scripted
        // model can call them directly.
        .env("MCP_CONNECTION_NONBLOCKING", "false")
        .env("ENABLE_TOOL_SEARCH", "false")
        .env_remove("CI")
        .stdin(std::process::Stdio::null());
    c
}

/// The session's tool calls and answers, one line each, for the transcript.
fn transcript(stdout: &str) -> (Vec<String>, Vec<Value>) {
    let mut lines = Vec::new();
    let mut all = Vec::new();
    for l in stdout.lines() {
        let Ok(v) = serde_json::from_str::<Value>(l) else {
            continue;
        };
        match v["type"].as_str() {
            Some("system") if v["subtype"] == "init" => {
                lines.push(format!("init mcp_servers: {}", v["mcp_servers"]));
            }
            Some("assistant") | Some("user") => {
                for c in v["message"]["content"].as_array().into_iter().flatten() {
                    let s = c.to_string();
                    lines.push(format!(
                        "{} {}",
                        v["type"].as_str().unwrap_or(""),
                        &s[..s.len().min(700)]
                    ));
                }
            }
            Some("result") => lines.push(format!(
                "result: {} is_error: {}",
                v["subtype"], v["is_error"]
            )),
            _ => {}
        }
        all.push(v);
    }
    (lines, all)
}

fn wait_for_end(dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_mdbatch"))
        .args(["wait", "--timeout", "60s"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn claude_code_runs_a_batch_through_mdbatch_mcp_and_reads_its_status() {
    let claude = require_claude!();
    let p = project();
    // The project's .mcp.json, as `mdbatch init --mcp` writes it.
    let init = Command::new(env!("CARGO_BIN_EXE_mdbatch"))
        .args(["init", "--mcp"])
        .current_dir(&p.dir)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let api = MockApi::start(|req, _| {
        if !anthropic::is_conversation(req) {
            return anthropic::text("mdbatch");
        }
        match tool_results(req) {
            0 => anthropic::tool_use(
                "toolu_1",
                "mcp__mdbatch__run",
                json!({"file": "task.md", "options": {"cmd": "./agent.sh {id}", "jobs": 2}}),
            ),
            1 => anthropic::tool_use(
                "toolu_2",
                "mcp__mdbatch__wait",
                json!({"file": "task.md", "timeout_secs": 30}),
            ),
            2 => anthropic::tool_use(
                "toolu_3",
                "mcp__mdbatch__status",
                json!({"file": "task.md"}),
            ),
            _ => anthropic::text("The batch finished: both tasks are done."),
        }
    });
    // The project's .mcp.json is read as it is: in print mode (`-p`) Claude
    // Code 2.1.330 connects project servers without the approval an
    // interactive session asks for.
    let out = claude_cmd(&claude, &p, &api)
        .args([
            "-p",
            "Run the batch in task.md and tell me its status",
            "--output-format",
            "stream-json",
            "--verbose",
            "--allowedTools",
            "mcp__mdbatch__run,mcp__mdbatch__wait,mcp__mdbatch__status",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (lines, all) = transcript(&stdout);
    println!(
        "$ mdbatch init --mcp\n$ claude -p 'Run the batch in task.md and tell me its status'\n{}",
        lines.join("\n")
    );
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let init = all.iter().find(|v| v["subtype"] == "init").expect("init");
    assert!(
        init["mcp_servers"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["name"] == "mdbatch"
                && s["source"] == "project"
                && s["status"] == "connected")),
        "{init}"
    );
    let results: Vec<String> = all
        .iter()
        .filter(|v| v["type"] == "user")
        .flat_map(|v| {
            v["message"]["content"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|c| c["type"] == "tool_result")
        .map(|c| c["content"].to_string())
        .collect();
    assert_eq!(results.len(), 3, "{stdout}");
    assert!(results[0].contains("run_id"), "{}", results[0]);
    assert!(results[1].contains("finished"), "{}", results[1]);
    assert!(results[2].contains("2/2 settled: 2 done"), "{}", results[2]);
    wait_for_end(&p.dir);
    assert_eq!(
        std::fs::read_to_string(p.dir.join("task.md")).unwrap(),
        TASKS.replace("[ ]", "[x]")
    );
    assert_eq!(
        std::fs::read_to_string(p.dir.join("hello.txt")).unwrap(),
        "hello\n"
    );
}

#[test]
fn the_plugin_validates_and_its_command_starts_a_detached_run_that_checks_the_boxes() {
    let claude = require_claude!();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let p = project();
    let api = MockApi::start(|req, _| {
        if !anthropic::is_conversation(req) {
            return anthropic::text("mdbatch");
        }
        // The model follows the command's steps (abridged) with the Bash tool.
        let bash = |id: &str, cmd: &str| {
            anthropic::tool_use(
                id,
                "Bash",
                json!({"command": cmd, "description": "mdbatch"}),
            )
        };
        match tool_results(req) {
            0 => bash("toolu_1", "mdbatch check task.md"),
            1 => bash(
                "toolu_2",
                "mdbatch run --detach task.md --cmd './agent.sh {id}'",
            ),
            2 => bash("toolu_3", "mdbatch wait task.md --timeout 50s"),
            _ => anthropic::text("Run finished: 2 tasks done, none failed."),
        }
    });
    for target in [repo.clone(), repo.join("plugins/mdbatch")] {
        let out = claude_cmd(&claude, &p, &api)
            .args(["plugin", "validate", "--strict"])
            .arg(&target)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!(
            "$ claude plugin validate --strict {}\n{text}",
            target.display()
        );
        assert!(
            out.status.success() && text.contains("Validation passed"),
            "{text}"
        );
    }
    let out = claude_cmd(&claude, &p, &api)
        .args([
            "-p",
            "/mdbatch:run-batch task.md --cmd './agent.sh {id}'",
            "--output-format",
            "stream-json",
            "--verbose",
            "--plugin-dir",
        ])
        .arg(repo.join("plugins/mdbatch"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (lines, all) = transcript(&stdout);
    println!(
        "$ claude -p \"/mdbatch:run-batch task.md --cmd './agent.sh {{id}}'\" --plugin-dir plugins/mdbatch\n{}",
        lines.join("\n")
    );
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The command's text reached the model with the arguments in it.
    let first = api
        .requests()
        .into_iter()
        .find(anthropic::is_conversation)
        .expect("a conversation request");
    assert!(
        first.raw_body.contains("never run `mdbatch run` without"),
        "the command was expanded"
    );
    let results: Vec<String> = all
        .iter()
        .filter(|v| v["type"] == "user")
        .flat_map(|v| {
            v["message"]["content"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|c| c["type"] == "tool_result")
        .map(|c| c["content"].to_string())
        .collect();
    assert_eq!(results.len(), 3, "{stdout}");
    assert!(
        results[1].contains("started in the background"),
        "{}",
        results[1]
    );
    wait_for_end(&p.dir);
    assert_eq!(
        std::fs::read_to_string(p.dir.join("task.md")).unwrap(),
        TASKS.replace("[ ]", "[x]")
    );
}
