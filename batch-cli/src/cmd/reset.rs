//! `mdbatch reset [FILE] --all|--failed [--yes]`.
//!
//! - `--all`: uncheck every checked box (one byte each, one atomic write, by
//!   `store::taskfile::uncheck`) and forget every task's journal history, so
//!   the next run does the whole batch again from attempt 1.
//! - `--failed`: forget the journal history of the tasks whose last attempt
//!   failed or never finished (their boxes are open already), so `status`
//!   no longer lists them and the next run starts them fresh (no resumed
//!   session, attempt 1).
//!
//! The journal is append-only: forgetting writes a `task_reset` record per
//! task. Asks before changing anything unless `--yes`; without a terminal to
//! ask on, refuses. Holds the run lock while it writes, so it never races a run.

use std::io::{BufRead, IsTerminal, Write};

use batch_core::{Document, ResetPlan, ResetScope, RunSetupError};

use crate::args::{ColorChoice, ResetArgs};
use crate::exit;
use crate::resolve;

/// Runs `mdbatch reset`.
pub fn run(args: &ResetArgs, _color: ColorChoice) -> anyhow::Result<u8> {
    if !args.all && !args.failed {
        anyhow::bail!(
            "say what to reset: `--all` unchecks every box, `--failed` forgets failed attempts"
        );
    }
    let path = resolve::task_file(args.file.as_deref())?;
    let popts = batch_core::ParseOptions::with_path(&path);
    let doc = Document::read(&path, &popts)?;
    let scope = if args.all {
        ResetScope::All
    } else {
        ResetScope::Failed
    };
    let todo = ResetPlan::new(&path, &doc, scope)?;
    if todo.is_empty() {
        eprintln!(
            "nothing to reset in {}: {}",
            path.display(),
            if args.all {
                "no box is checked and the journal is empty"
            } else {
                "no failed task"
            }
        );
        return Ok(exit::SUCCESS);
    }

    let mut what = Vec::new();
    if !todo.uncheck.is_empty() {
        what.push(format!(
            "uncheck {} {} ({})",
            todo.uncheck.len(),
            if todo.uncheck.len() == 1 {
                "box"
            } else {
                "boxes"
            },
            list(&todo.uncheck)
        ));
    }
    if !todo.forget.is_empty() {
        what.push(format!(
            "forget the attempts of {} ({})",
            if todo.forget.len() == 1 {
                "1 task".to_string()
            } else {
                format!("{} tasks", todo.forget.len())
            },
            list(&todo.forget)
        ));
    }
    if !todo.worktrees.is_empty() {
        what.push(format!(
            "remove {} kept {} and their branches",
            todo.worktrees.len(),
            if todo.worktrees.len() == 1 {
                "worktree"
            } else {
                "worktrees"
            }
        ));
    }
    // Ids come from the file and the journal.
    let what = crate::output::safe::text(&what.join(" and ")).into_owned();
    if !args.yes {
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            eprintln!(
                "error: refusing to {what} in {} without asking; no terminal to ask on, so pass --yes",
                path.display()
            );
            return Ok(exit::USAGE);
        }
        eprint!("{} in {}? [y/N] ", capitalise(&what), path.display());
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            eprintln!("nothing changed");
            return Ok(exit::SUCCESS);
        }
    }

    let done = match todo.apply(&path, &popts) {
        Ok(done) => done,
        Err(RunSetupError::Locked { pid, .. }) => {
            anyhow::bail!(
                "{} is being run right now (pid {pid}); stop that run first",
                path.display()
            )
        }
        Err(e) => return Err(e.into()),
    };
    for p in &done.problems {
        eprintln!("warning: {}", crate::output::safe::text(&p.to_string()));
    }
    if !todo.uncheck.is_empty() {
        eprintln!(
            "unchecked {} {} in {}",
            done.unchecked,
            if done.unchecked == 1 { "box" } else { "boxes" },
            path.display()
        );
    }
    if done.worktrees_removed + done.branches_removed > 0 {
        eprintln!(
            "removed {} kept {} and {} {} ({:.1} MiB freed)",
            done.worktrees_removed,
            if done.worktrees_removed == 1 {
                "worktree"
            } else {
                "worktrees"
            },
            done.branches_removed,
            if done.branches_removed == 1 {
                "branch"
            } else {
                "branches"
            },
            done.bytes_freed as f64 / f64::from(1u32 << 20)
        );
    }
    if done.forgotten > 0 {
        eprintln!(
            "forgot the journal history of {} {}",
            done.forgotten,
            if done.forgotten == 1 { "task" } else { "tasks" }
        );
    }
    Ok(exit::SUCCESS)
}

fn list(ids: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = ids
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        s.push_str(&format!(", … {} more", ids.len() - SHOWN));
    }
    s
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use batch_core::ParseOptions;
    use batch_core::reset::plan;
    use batch_core::store::journal::{JournalEntry, JournalSummary};
    use serde_json::json;

    const FILE: &str =
        "# P\n\n## A\n- [x] T001 one\n- [ ] T002 two\n\n## B\n- [x] T003 three\n- [ ] T004 four\n";

    fn entry(record: serde_json::Value) -> JournalEntry {
        let mut v = record;
        v["v"] = json!(1);
        v["ts"] = json!("2026-11-25T09:00:00.000Z");
        v["run_id"] = json!("r1");
        serde_json::from_value(v).unwrap()
    }

    fn end(id: &str, outcome: &str) -> JournalEntry {
        entry(
            json!({"type":"attempt_end","id":id,"attempt":1,"outcome":outcome,"kind":"failed","message":"m",
                     "duration_ms":1,"pid":null,"session_id":"s","usage":null,"text_hash":"h"}),
        )
    }

    fn start(id: &str) -> JournalEntry {
        entry(json!({"type":"attempt_start","id":id,"attempt":1,"text_hash":"h"}))
    }

    fn journal() -> Vec<JournalEntry> {
        vec![
            start("T001"),
            end("T001", "succeeded"),
            start("T002"),
            end("T002", "failed"),
            start("T004"),
        ]
    }

    #[test]
    fn all_unchecks_every_checked_box_and_forgets_every_task() {
        let doc = Document::parse(FILE, &ParseOptions::default()).unwrap();
        let p = plan(&doc, &JournalSummary::from_entries(&journal()), true);
        assert_eq!(p.uncheck, ["T001", "T003"]);
        assert_eq!(p.forget, ["T001", "T002", "T004"]);
    }

    #[test]
    fn failed_forgets_failed_and_unfinished_tasks_and_unchecks_nothing() {
        let doc = Document::parse(FILE, &ParseOptions::default()).unwrap();
        let p = plan(&doc, &JournalSummary::from_entries(&journal()), false);
        assert!(p.uncheck.is_empty());
        assert_eq!(p.forget, ["T002", "T004"]);
    }

    #[test]
    fn a_reset_record_makes_the_journal_forget_the_task() {
        let mut entries = journal();
        entries.push(entry(json!({"type":"task_reset","id":"T002"})));
        entries.push(entry(json!({"type":"task_reset","id":"T004"})));
        let j = JournalSummary::from_entries(&entries);
        assert!(!j.tasks.contains_key("T002"));
        assert!(j.unfinished.is_empty(), "{:?}", j.unfinished);
        assert_eq!(j.failed().count(), 0);
        // A later attempt is history again.
        entries.push(start("T002"));
        entries.push(end("T002", "failed"));
        let j = JournalSummary::from_entries(&entries);
        assert_eq!(j.tasks["T002"].attempts, 1);
    }
}
