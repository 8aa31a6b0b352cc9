//! `mdbatch init`: a starter `tasks.md`; with `--claude-command`, a Claude
//! Code slash command (`/run-batch`) that starts a detached run and follows
//! it; with `--mcp`, mdbatch's MCP server merged into the project's
//! `.mcp.json`. Never overwrites a file it did not merge into.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::args::{ColorChoice, InitArgs};
use crate::exit;

/// The starter task file.
pub const STARTER_TASKS: &str = "\
# My project

Say here what every subagent should know: the language, how to build and
test, conventions to keep. mdbatch gives this text to each subagent with its
task.

## Wave 1: foundations

### backend
- [ ] Describe the first backend task in one sentence
  - details, file names and acceptance criteria go in nested bullets

### frontend
- [ ] Describe the first frontend task in one sentence

## Wave 2: features

### backend
- [ ] A task that needs wave 1 to be done first
";

/// The Claude Code slash command: the same file the plugin ships
/// (`plugins/mdbatch/commands/run-batch.md`, kept equal by a test). It starts
/// a detached run and follows it with bounded waits (a Bash call times out
/// after two minutes, a batch takes hours), and only the user can invoke it
/// (`disable-model-invocation: true`): a batch spends money.
pub const CLAUDE_COMMAND: &str = include_str!("run-batch.md");

/// The server entry `init --mcp` adds to `.mcp.json` (what
/// `claude mcp add -s project mdbatch -- mdbatch mcp` writes).
pub fn mcp_server_entry() -> serde_json::Value {
    serde_json::json!({"type": "stdio", "command": "mdbatch", "args": ["mcp"]})
}

/// What merging into `.mcp.json` did.
#[derive(Debug, PartialEq, Eq)]
pub enum McpMerge {
    /// The entry was added (to a new or an existing file).
    Added,
    /// The same entry was there already.
    AlreadyThere,
}

/// Merges the `mdbatch` server into the `.mcp.json` text `existing` (None:
/// no file yet); returns the new text, or an error saying what is wrong
/// with the file. Other servers and keys are kept as they are.
pub fn merge_mcp_json(existing: Option<&str>) -> anyhow::Result<(String, McpMerge)> {
    let mut root = match existing {
        None => serde_json::json!({}),
        Some(text) if text.trim().is_empty() => serde_json::json!({}),
        Some(text) => serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
            anyhow::anyhow!(
                ".mcp.json:{}:{}: not valid JSON ({e}); fix it, then run `mdbatch init --mcp` again",
                e.line(),
                e.column()
            )
        })?,
    };
    let Some(obj) = root.as_object_mut() else {
        anyhow::bail!(
            ".mcp.json: the file is not a JSON object; fix it, then run `mdbatch init --mcp` again"
        );
    };
    let servers = obj
        .entry("mcpServers")
        .or_insert_with(|| serde_json::json!({}));
    let Some(servers) = servers.as_object_mut() else {
        anyhow::bail!(
            ".mcp.json: `mcpServers` is not an object; fix it, then run `mdbatch init --mcp` again"
        );
    };
    match servers.get("mdbatch") {
        Some(v) if *v == mcp_server_entry() => {
            return Ok((
                existing.unwrap_or_default().to_string(),
                McpMerge::AlreadyThere,
            ));
        }
        Some(_) => anyhow::bail!(
            ".mcp.json: a different `mdbatch` server is configured already; \
             mdbatch init never overwrites it (edit it to run `mdbatch mcp`)"
        ),
        None => {
            servers.insert("mdbatch".into(), mcp_server_entry());
        }
    }
    let mut text = serde_json::to_string_pretty(&root)?;
    text.push('\n');
    Ok((text, McpMerge::Added))
}

/// Writes `.mcp.json` with the mdbatch server merged in, atomically.
fn write_mcp_json(path: &Path) -> anyhow::Result<McpMerge> {
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(anyhow::anyhow!("{}: cannot read: {e}", path.display())),
    };
    let (text, how) = merge_mcp_json(existing.as_deref())?;
    if how == McpMerge::Added {
        let tmp = path.with_extension("json.mdbatch-tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| path.display().to_string())?;
    }
    Ok(how)
}

/// Runs `mdbatch init`.
pub fn run(args: &InitArgs, _color: ColorChoice) -> anyhow::Result<u8> {
    let tasks = Path::new("tasks.md");
    let command = Path::new(".claude/commands/run-batch.md");
    // Check everything before writing anything. An existing task file is
    // kept (never overwritten); with --claude-command the slash command is
    // still written beside it, which is what a user of spec-kit or kiro wants.
    let existing_tasks: Vec<&Path> = [Path::new("task.md"), tasks]
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    if args.claude_command && command.exists() {
        anyhow::bail!(
            "{} already exists; mdbatch init never overwrites a file (edit it instead)",
            command.display()
        );
    }
    if !existing_tasks.is_empty() && !args.claude_command && !args.mcp {
        let names: Vec<String> = existing_tasks
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        anyhow::bail!(
            "{} already exist{}; mdbatch init never overwrites a file (edit it, or run `mdbatch plan`)",
            names.join(" and "),
            if names.len() == 1 { "s" } else { "" }
        );
    }
    if let Some(kept) = existing_tasks.first() {
        eprintln!("kept {}: it already exists", kept.display());
    } else {
        write_new(tasks, STARTER_TASKS).with_context(|| tasks.display().to_string())?;
        eprintln!("wrote tasks.md: a starter task file; replace its tasks with yours");
    }
    if args.claude_command {
        command
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| write_new(command, CLAUDE_COMMAND))
            .with_context(|| command.display().to_string())?;
        eprintln!(
            "wrote .claude/commands/run-batch.md: type /run-batch in Claude Code to run the batch"
        );
    }
    if args.mcp {
        let path = Path::new(".mcp.json");
        match write_mcp_json(path)? {
            McpMerge::Added => eprintln!(
                "added the mdbatch MCP server to .mcp.json: Claude Code asks to approve it at its next start"
            ),
            McpMerge::AlreadyThere => eprintln!(".mcp.json has the mdbatch MCP server already"),
        }
    }
    eprintln!("next: `mdbatch plan` to see the waves, `mdbatch run --runner claude` to run them");
    Ok(exit::SUCCESS)
}

/// Writes a file that must not exist yet (`O_EXCL`, so a race cannot clobber one).
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slash_command_is_the_plugins_and_only_the_user_can_start_it() {
        let plugin = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../plugins/mdbatch/commands/run-batch.md"
        ))
        .expect("the plugin's command file");
        assert_eq!(plugin, CLAUDE_COMMAND);
        assert!(CLAUDE_COMMAND.contains("\ndisable-model-invocation: true\n"));
        assert!(CLAUDE_COMMAND.contains("mdbatch run --detach"));
        assert!(!CLAUDE_COMMAND.contains("Bash(mdbatch:*)"));
        assert!(!CLAUDE_COMMAND.contains("mdbatch plan $ARGUMENTS"));
    }

    #[test]
    fn mcp_json_is_merged_keeping_other_servers_and_keys() {
        let (text, how) = merge_mcp_json(None).expect("new file");
        assert_eq!(how, McpMerge::Added);
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"mcpServers":{"mdbatch":{"type":"stdio","command":"mdbatch","args":["mcp"]}}})
        );
        let old = r#"{"mcpServers":{"other":{"command":"x"}},"extra":1}"#;
        let (text, how) = merge_mcp_json(Some(old)).expect("merge");
        assert_eq!(how, McpMerge::Added);
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["mcpServers"]["other"]["command"], "x");
        assert_eq!(v["extra"], 1);
        assert_eq!(v["mcpServers"]["mdbatch"], mcp_server_entry());
        let (again, how) = merge_mcp_json(Some(&text)).expect("again");
        assert_eq!(
            (again.as_str(), how),
            (text.as_str(), McpMerge::AlreadyThere)
        );
        let e = merge_mcp_json(Some("{\n  nope")).expect_err("bad json");
        assert!(e.to_string().starts_with(".mcp.json:2:"), "{e}");
        let e = merge_mcp_json(Some(r#"{"mcpServers":{"mdbatch":{"command":"other"}}}"#))
            .expect_err("different entry");
        assert!(e.to_string().contains("never overwrites"), "{e}");
        assert!(merge_mcp_json(Some("[1]")).is_err());
    }

    #[test]
    fn the_starter_file_parses_and_plans_into_two_waves() {
        let doc = batch_core::Document::parse(STARTER_TASKS, &batch_core::ParseOptions::default())
            .expect("the starter file parses");
        let plan = batch_core::Plan::build(&doc, &batch_core::PlanOptions::default())
            .expect("the starter file plans");
        let text = batch_core::plan::render(&doc, &plan, batch_core::plan::PlanFormat::Text);
        assert!(
            text.contains("foundations") && text.contains("features"),
            "{text}"
        );
    }
}
