//! `mdbatch init`: a starter task file and the Claude Code slash command;
//! never overwrites.

use std::process::Command;

fn init(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mdbatch"))
        .arg("init")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn init_writes_a_starter_file_that_plans_and_a_slash_command_that_runs_mdbatch() {
    let dir = tempfile::tempdir().unwrap();
    let out = init(dir.path(), &["--claude-command"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tasks = dir.path().join("tasks.md");
    let doc =
        batch_core::Document::read(&tasks, &batch_core::ParseOptions::with_path(&tasks)).unwrap();
    let plan = batch_core::Plan::build(&doc, &batch_core::PlanOptions::default()).unwrap();
    assert!(plan.nodes.len() >= 3);
    let cmd = std::fs::read_to_string(dir.path().join(".claude/commands/run-batch.md")).unwrap();
    assert!(cmd.starts_with("---\ndescription:"), "{cmd}");
    // A detached run followed with bounded waits (a Bash call times out long
    // before a batch ends), and only the user can start it.
    assert!(cmd.contains("`mdbatch run --detach FILE OPTIONS`"), "{cmd}");
    assert!(cmd.contains("mdbatch wait FILE --timeout 50s"), "{cmd}");
    assert!(cmd.contains("\ndisable-model-invocation: true\n"), "{cmd}");

    // `mdbatch plan` reads the starter file without complaint.
    let plan = Command::new(env!("CARGO_BIN_EXE_mdbatch"))
        .arg("plan")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
}

#[test]
fn init_never_overwrites_an_existing_task_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tasks.md"), "- [ ] my work\n").unwrap();
    let out = init(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tasks.md already exists"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tasks.md")).unwrap(),
        "- [ ] my work\n"
    );
}

#[test]
fn init_claude_command_beside_an_existing_task_file_keeps_it_and_writes_the_command() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tasks.md"), "- [ ] my work\n").unwrap();
    let out = init(dir.path(), &["--claude-command"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("kept tasks.md"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tasks.md")).unwrap(),
        "- [ ] my work\n"
    );
    assert!(dir.path().join(".claude/commands/run-batch.md").is_file());
}

#[test]
fn init_never_overwrites_an_existing_slash_command() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = dir.path().join(".claude/commands/run-batch.md");
    std::fs::create_dir_all(cmd.parent().unwrap()).unwrap();
    std::fs::write(&cmd, "mine\n").unwrap();
    let out = init(dir.path(), &["--claude-command"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&cmd).unwrap(), "mine\n");
    assert!(
        !dir.path().join("tasks.md").exists(),
        "nothing is written when the command file exists"
    );
}

#[test]
fn init_without_the_flag_writes_no_slash_command() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(init(dir.path(), &[]).status.code(), Some(0));
    assert!(dir.path().join("tasks.md").is_file());
    assert!(!dir.path().join(".claude").exists());
}

#[test]
fn init_mcp_merges_the_server_into_the_projects_mcp_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tasks.md"), "- [ ] my work\n").unwrap();
    std::fs::write(
        dir.path().join(".mcp.json"),
        r#"{"mcpServers":{"other":{"type":"stdio","command":"x"}}}"#,
    )
    .unwrap();
    let out = init(dir.path(), &["--mcp"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(".mcp.json")).unwrap())
            .unwrap();
    assert_eq!(
        v,
        serde_json::json!({"mcpServers":{
            "other":{"type":"stdio","command":"x"},
            "mdbatch":{"type":"stdio","command":"mdbatch","args":["mcp"]}}})
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tasks.md")).unwrap(),
        "- [ ] my work\n"
    );
    // Again: nothing changes.
    let out = init(dir.path(), &["--mcp"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has the mdbatch MCP server already"));
    // A broken file is reported with its place, and left alone.
    std::fs::write(dir.path().join(".mcp.json"), "{\n  oops").unwrap();
    let out = init(dir.path(), &["--mcp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(".mcp.json:2:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".mcp.json")).unwrap(),
        "{\n  oops"
    );
}
