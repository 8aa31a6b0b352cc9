//! `mdbatch init`: a starter `tasks.md` and, with `--claude-command`, a Claude
//! Code slash command (`/run-batch`) that runs `mdbatch run`. Never
//! overwrites a file.

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

/// The Claude Code slash command.
pub const CLAUDE_COMMAND: &str = "\
---
description: Run the task checklist with mdbatch (subagents in parallel waves; boxes checked as tasks finish)
argument-hint: [task file] [mdbatch run options]
allowed-tools: Bash(mdbatch:*)
---
Run the batch of tasks in this project's task checklist with mdbatch.

1. Run `mdbatch plan $ARGUMENTS` and show me the waves it will run.
2. Run `mdbatch run --runner claude $ARGUMENTS` with the Bash tool and let it
   finish; it starts one Claude Code subagent per task, retries failures, and
   checks each box in the task file itself. Do not edit the checkboxes
   yourself and do not do the tasks yourself.
3. When it ends, summarise the result; if tasks failed, run `mdbatch status`
   and show what failed and why (`mdbatch logs ID` has a task's full output).
";

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
    if !existing_tasks.is_empty() && !args.claude_command {
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
