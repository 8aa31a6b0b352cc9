//! `mdbatch status`: what is done and open per wave and group (from the
//! checkboxes), and what the journal knows: the last run, a run in progress
//! (its pid, its running attempts), failed tasks with their error kind and
//! message, flaky tasks, attempts, durations, tokens and cost.
//!
//! The report is `batch_core::Status` (built in the core, so embedders and
//! the C interface get the same); this module renders it as text, or prints
//! its JSON (`--json`).

use std::io::{IsTerminal, Write};

use batch_core::Document;
use batch_core::status::{Status, StatusJournal};

use crate::args::{ColorChoice, StatusArgs};
use crate::exit;
use crate::output::mode::color_for;
use crate::output::plain::noun;
use crate::output::state::first_line;
use crate::output::style::{Paint, took, usage};
use crate::resolve;

/// The report as text for people.
pub fn render(s: &Status, p: Paint) -> String {
    let mut out = format!(
        "{}: {} done, {} open",
        p.bold(&s.file),
        p.green(&s.done.to_string()),
        if s.open > 0 {
            p.yellow(&s.open.to_string())
        } else {
            s.open.to_string()
        }
    );
    if s.optional > 0 {
        out.push_str(&format!(", {} optional", s.optional));
    }
    out.push_str(&format!(" ({})\n", s.dialect));

    let group_width = s
        .waves
        .iter()
        .flat_map(|w| w.groups.iter().map(|g| g.title.chars().count() + 4))
        .chain(s.waves.iter().map(|w| w.title.chars().count() + 2))
        .max()
        .unwrap_or(0)
        .min(48);
    let open_list = |ids: &[String]| {
        if ids.is_empty() {
            return String::new();
        }
        let shown: Vec<&str> = ids.iter().take(6).map(String::as_str).collect();
        let more = ids.len() - shown.len();
        p.dim(&format!(
            "  open: {}{}",
            shown.join(", "),
            if more > 0 {
                format!(" +{more}")
            } else {
                String::new()
            }
        ))
    };
    for w in &s.waves {
        let only_lead = w.groups.len() == 1 && w.groups[0].lead;
        out.push_str(&format!(
            "  {}  {}{}\n",
            crate::output::style::column(&w.title, group_width - 2),
            counts(w.done, w.open, p),
            if only_lead {
                open_list(&w.groups[0].open_ids)
            } else {
                String::new()
            }
        ));
        if only_lead {
            continue;
        }
        for g in &w.groups {
            let title = if g.lead {
                "(under the wave heading)"
            } else {
                g.title.as_str()
            };
            out.push_str(&format!(
                "    {}  {}{}\n",
                crate::output::style::column(title, group_width - 4),
                counts(g.done, g.open, p),
                open_list(&g.open_ids)
            ));
        }
    }

    match &s.running {
        Some(r) => {
            out.push_str(&format!(
                "\n{} pid {}",
                p.cyan("running now:"),
                if r.pid == 0 {
                    "?".to_string()
                } else {
                    r.pid.to_string()
                }
            ));
            if let Some(id) = &r.run_id {
                out.push_str(&format!(" (run {id})"));
            }
            out.push('\n');
            for a in &r.tasks {
                out.push_str(&format!("  {} attempt {}", p.bold(&a.id), a.attempt));
                if let Some(pid) = a.pid {
                    out.push_str(&format!(", subagent pid {pid}"));
                }
                out.push('\n');
            }
        }
        None => out.push_str(&format!("\n{}\n", p.dim("no run in progress"))),
    }
    match &s.last_run {
        Some(r) => {
            out.push_str(&format!("last run: {} ({})", r.started, r.runner));
            match &r.summary {
                Some(sum) => {
                    let mut parts = vec![format!("{} succeeded", sum.succeeded)];
                    if sum.flaky > 0 {
                        parts[0].push_str(&format!(" ({} flaky)", sum.flaky));
                    }
                    if sum.failed > 0 {
                        parts.push(p.red(&format!("{} failed", sum.failed)));
                    }
                    if sum.skipped > 0 {
                        parts.push(format!("{} skipped", sum.skipped));
                    }
                    if let Some(what) = &sum.capped {
                        parts.push(p.yellow(&format!("stopped at the cap ({what})")));
                    }
                    if sum.interrupted > 0 {
                        parts.push(p.yellow(&format!("{} interrupted", sum.interrupted)));
                    } else if sum.cancelled {
                        parts.push(p.yellow("interrupted"));
                    }
                    out.push_str(&format!(
                        ", {} {} in {}: {}\n",
                        sum.total,
                        noun(sum.total, "task", "tasks"),
                        took(sum.duration_ms),
                        parts.join(", ")
                    ));
                }
                None if s.running.is_some() => out.push_str(", still running\n"),
                None => out.push_str(&format!(", {}\n", p.yellow("never finished (killed)"))),
            }
        }
        None => out.push_str(&format!("{}\n", p.dim("no run yet"))),
    }

    if !s.kept_worktrees.is_empty() {
        out.push_str(&format!(
            "\n{}\n",
            p.yellow("kept worktrees (`mdbatch clean` removes them):")
        ));
        for w in &s.kept_worktrees {
            let what = match (&w.path, &w.branch) {
                (Some(path), Some(b)) => format!("{path} (branch {b})"),
                (Some(path), None) => path.clone(),
                (None, Some(b)) => format!("branch {b}"),
                (None, None) => continue,
            };
            out.push_str(&format!(
                "  {}{what}, {:.1} MiB\n",
                w.task
                    .as_deref()
                    .map(|t| format!("{}: ", p.bold(t)))
                    .unwrap_or_default(),
                w.bytes as f64 / f64::from(1u32 << 20)
            ));
        }
    }

    if !s.failed.is_empty() {
        out.push_str(&format!("\n{}\n", p.red("failed:")));
        for f in &s.failed {
            out.push_str(&format!(
                "  {} {}: {}, {} ({} {}, {}; `mdbatch logs {}`)\n",
                p.bold(&f.id),
                f.title,
                f.kind
                    .map(|k| k.to_string())
                    .unwrap_or_else(|| "failed".into()),
                f.message.as_deref().map(first_line).unwrap_or_default(),
                f.attempts,
                noun(f.attempts as usize, "attempt", "attempts"),
                took(f.duration_ms),
                f.id
            ));
        }
    }
    if !s.flaky.is_empty() {
        out.push_str(&format!(
            "\n{}\n",
            p.yellow("flaky (succeeded after a retry):")
        ));
        for t in &s.flaky {
            out.push_str(&format!(
                "  {} ({} attempts, {})\n",
                p.bold(&t.id),
                t.attempts,
                took(t.duration_ms)
            ));
        }
    }
    if !s.skipped.is_empty() {
        out.push_str(&format!("\n{}\n", p.yellow("skipped:")));
        for t in s.skipped.iter().take(20) {
            out.push_str(&format!(
                "  {}: {}\n",
                p.bold(&t.id),
                crate::output::style::clean(&t.reason)
            ));
        }
        if s.skipped.len() > 20 {
            out.push_str(&format!("  … and {} more\n", s.skipped.len() - 20));
        }
    }
    if !s.interrupted.is_empty() {
        out.push_str(&format!(
            "\n{}\n",
            p.yellow("interrupted (the last run stopped them; the next run retries them):")
        ));
        for t in &s.interrupted {
            out.push_str(&format!(
                "  {} {} (attempt {})\n",
                p.bold(&t.id),
                t.title,
                t.attempt
            ));
        }
    }
    if !s.unfinished.is_empty() {
        out.push_str(&format!(
            "\n{}\n",
            p.yellow("unfinished (a run was killed; the next run retries them):")
        ));
        for a in &s.unfinished {
            out.push_str(&format!("  {} attempt {}", p.bold(&a.id), a.attempt));
            match (a.pid, a.alive) {
                (Some(pid), true) => {
                    out.push_str(&p.red(&format!(", subagent pid {pid} is still running (orphan)")))
                }
                (Some(pid), false) => out.push_str(&format!(", subagent pid {pid} is gone")),
                (None, _) => {}
            }
            out.push('\n');
        }
    }
    if s.totals.attempts > 0 {
        out.push_str(&format!(
            "\n{} {} {}, {} of subagent time",
            p.dim("journal:"),
            s.totals.attempts,
            noun(s.totals.attempts as usize, "attempt", "attempts"),
            took(s.totals.duration_ms)
        ));
        if let Some(u) = &s.totals.usage {
            out.push_str(&format!(", {}", usage(u)));
        }
        out.push('\n');
    }
    if s.journal_skipped_lines > 0 {
        out.push_str(&format!(
            "{}\n",
            p.dim(&format!(
                "({} journal {} could not be read and {} skipped)",
                s.journal_skipped_lines,
                noun(s.journal_skipped_lines, "line", "lines"),
                noun(s.journal_skipped_lines, "was", "were")
            ))
        ));
    }
    out
}

fn counts(done: usize, open: usize, p: Paint) -> String {
    let total = done + open;
    let text = format!("{done}/{total} done");
    if open == 0 && total > 0 {
        p.green(&text)
    } else {
        text
    }
}

/// Runs `mdbatch status`.
pub fn run(args: &StatusArgs, color: ColorChoice) -> anyhow::Result<u8> {
    let path = resolve::task_file(args.doc.file.as_deref())?;
    let popts = resolve::parse_options(&path, &args.doc)?;
    // The journal (tens of MB after a large run) is read while the file parses.
    let (doc, journal) = std::thread::scope(|scope| {
        let journal = scope.spawn(|| StatusJournal::read(&path));
        let doc = Document::read(&path, &popts);
        let journal = journal
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (doc, journal)
    });
    let doc = doc?;
    let status = Status::with_journal(&path, &doc, journal?);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        // Streamed: after a 100,000-task run the report is about 20 MB.
        // (JSON escapes control characters itself.)
        let _ = serde_json::to_writer_pretty(&mut out, &status)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"));
    } else {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let text = render(
            &status,
            Paint {
                on: color_for(std::io::stdout().is_terminal(), no_color, color),
            },
        );
        // Ids, task text and error messages are the file's and the agents'.
        let _ = out.write_all(crate::output::safe::styled(&text).as_bytes());
    }
    let _ = out.flush();
    // The process ends here: its memory goes back without freeing a
    // document and a journal of 100,000 tasks one allocation at a time.
    std::mem::forget((doc, status));
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use batch_core::ErrorKind;
    use batch_core::ParseOptions;
    use batch_core::status::{build, interrupted_in_last_run};
    use batch_core::store::journal::{JournalEntry, JournalSummary};
    use serde_json::json;

    const FILE: &str = "# Project\n\n## Wave 1\n\n### api\n- [x] T001 Create the model\n- [ ] T002 Parse hints\n\n### db\n- [ ] T003 Migrations\n\n## Wave 2\n\n- [ ] T004 Docs\n";

    fn doc() -> Document {
        Document::parse(FILE, &ParseOptions::with_path("task.md")).unwrap()
    }

    fn entry(run: &str, record: serde_json::Value) -> JournalEntry {
        let mut v = record;
        v["v"] = json!(1);
        v["ts"] = json!("2026-11-25T09:00:00.000Z");
        v["run_id"] = json!(run);
        serde_json::from_value(v).unwrap()
    }

    fn end(run: &str, id: &str, attempt: u32, outcome: &str, kind: Option<&str>) -> JournalEntry {
        entry(
            run,
            json!({"type":"attempt_end","id":id,"attempt":attempt,"outcome":outcome,"kind":kind,
                   "message": kind.map(|k| format!("{k} happened")),"duration_ms":1500,"pid":4242,
                   "session_id":null,"usage":{"input_tokens":1000,"output_tokens":500,"cost_usd":0.5,"turns":null},
                   "text_hash":"x"}),
        )
    }

    fn start(run: &str, id: &str, attempt: u32) -> JournalEntry {
        entry(
            run,
            json!({"type":"attempt_start","id":id,"attempt":attempt,"text_hash":"x"}),
        )
    }

    fn journal() -> JournalSummary {
        let entries = vec![
            entry(
                "r1",
                json!({"type":"run_start","file":"task.md","pid":100,"runner":"command","total":4}),
            ),
            start("r1", "T001", 1),
            end("r1", "T001", 1, "failed", Some("transient")),
            start("r1", "T001", 2),
            end("r1", "T001", 2, "succeeded", None),
            start("r1", "T002", 1),
            end("r1", "T002", 1, "failed", Some("fatal")),
            entry(
                "r1",
                json!({"type":"task_skipped","id":"T004","reason":"dependency T002 failed"}),
            ),
            entry(
                "r1",
                json!({"type":"run_end","summary":{"total":4,"succeeded":1,"flaky":1,"failed":1,"skipped":1,"interrupted":0,"duration_ms":4000,"usage":null,"cancelled":false}}),
            ),
        ];
        JournalSummary::from_entries(&entries)
    }

    #[test]
    fn status_counts_done_and_open_per_wave_and_group() {
        let s = build(&doc(), &JournalSummary::default(), &[], 0, None, &|_| false);
        assert_eq!((s.done, s.open), (1, 3));
        assert_eq!(s.waves.len(), 2);
        assert_eq!((s.waves[0].done, s.waves[0].open), (1, 2));
        let api = &s.waves[0].groups[0];
        assert_eq!((api.title.as_str(), api.done, api.open), ("api", 1, 1));
        assert_eq!(api.open_ids, ["T002"]);
        assert_eq!(s.waves[1].open, 1);
        assert!(s.last_run.is_none() && s.running.is_none());
    }

    #[test]
    fn status_reports_failed_flaky_attempts_durations_and_usage_from_the_journal() {
        let s = build(&doc(), &journal(), &[], 0, None, &|_| false);
        assert_eq!(s.failed.len(), 1);
        let f = &s.failed[0];
        assert_eq!(f.id, "T002");
        assert_eq!(f.kind, Some(ErrorKind::Fatal));
        assert_eq!(f.message.as_deref(), Some("fatal happened"));
        assert_eq!(f.title, "Parse hints");
        assert_eq!(s.flaky.len(), 1);
        assert_eq!((s.flaky[0].id.as_str(), s.flaky[0].attempts), ("T001", 2));
        assert_eq!(s.totals.attempts, 3);
        assert_eq!(s.totals.duration_ms, 4500);
        assert_eq!(s.totals.usage.unwrap().input_tokens, 3000);
        assert_eq!(s.last_run.as_ref().unwrap().run_id, "r1");
        let text = render(&s, Paint { on: false });
        assert!(text.contains("task.md: 1 done, 3 open"), "{text}");
        assert!(
            text.contains(
                "  T002 Parse hints: fatal, fatal happened (1 attempt, 1.5s; `mdbatch logs T002`)"
            ),
            "{text}"
        );
        assert!(text.contains("  T001 (2 attempts, 3.0s)"), "{text}");
        assert!(
            text.contains("4 tasks in 4.0s: 1 succeeded (1 flaky), 1 failed, 1 skipped"),
            "{text}"
        );
        assert!(
            text.contains("journal: 3 attempts, 4.5s of subagent time, 4.5k tokens, $1.50"),
            "{text}"
        );
    }

    #[test]
    fn status_names_the_running_pid_and_its_attempts_while_a_run_holds_the_lock() {
        let entries = vec![
            entry(
                "r2",
                json!({"type":"run_start","file":"task.md","pid":777,"runner":"command","total":4}),
            ),
            start("r2", "T003", 1),
            entry(
                "r2",
                json!({"type":"attempt_info","id":"T003","attempt":1,"pid":31337}),
            ),
        ];
        let j = JournalSummary::from_entries(&entries);
        let s = build(&doc(), &j, &[], 0, Some(777), &|pid| pid == 31337);
        let r = s.running.as_ref().unwrap();
        assert_eq!(r.pid, 777);
        assert_eq!(r.run_id.as_deref(), Some("r2"));
        assert_eq!(r.tasks[0].id, "T003");
        assert_eq!(r.tasks[0].pid, Some(31337));
        assert!(s.unfinished.is_empty());
        let text = render(&s, Paint { on: false });
        assert!(
            text.contains("running now: pid 777 (run r2)\n  T003 attempt 1, subagent pid 31337"),
            "{text}"
        );

        // The same journal without a lock holder: the run was killed.
        let s = build(&doc(), &j, &[], 0, None, &|pid| pid == 31337);
        assert!(s.running.is_none());
        assert_eq!(s.unfinished.len(), 1);
        assert!(s.unfinished[0].alive);
        let text = render(&s, Paint { on: false });
        assert!(text.contains("never finished (killed)"), "{text}");
        assert!(
            text.contains("subagent pid 31337 is still running (orphan)"),
            "{text}"
        );
    }

    #[test]
    fn a_checked_task_is_not_listed_as_failed() {
        let entries = vec![
            start("r1", "T001", 1),
            end("r1", "T001", 1, "failed", Some("failed")),
        ];
        let s = build(
            &doc(),
            &JournalSummary::from_entries(&entries),
            &[],
            0,
            None,
            &|_| false,
        );
        assert!(s.failed.is_empty());
    }

    #[test]
    fn status_names_the_tasks_the_last_run_interrupted() {
        let entries = vec![
            entry(
                "r1",
                json!({"type":"run_start","file":"task.md","pid":100,"runner":"command","total":3}),
            ),
            start("r1", "T003", 1),
            end("r1", "T003", 1, "interrupted", Some("cancelled")),
            entry(
                "r2",
                json!({"type":"run_start","file":"task.md","pid":101,"runner":"command","total":3}),
            ),
            start("r2", "T002", 2),
            end("r2", "T002", 2, "interrupted", Some("cancelled")),
            entry(
                "r2",
                json!({"type":"run_end","summary":{"total":3,"succeeded":0,"flaky":0,"failed":0,"skipped":2,"interrupted":1,"duration_ms":2000,"usage":null,"cancelled":true}}),
            ),
        ];
        let interrupted = interrupted_in_last_run(&entries);
        assert_eq!(
            interrupted,
            [("T002".to_string(), 2)],
            "only the last run's"
        );
        let j = JournalSummary::from_entries(&entries);
        let s = build(&doc(), &j, &interrupted, 0, None, &|_| false);
        assert_eq!(s.interrupted.len(), 1);
        assert!(s.failed.is_empty(), "an interrupted task did not fail");
        let text = render(&s, Paint { on: false });
        assert!(text.contains("  T002 Parse hints (attempt 2)\n"), "{text}");
        assert!(text.contains("2 skipped, 1 interrupted"), "{text}");
    }

    #[test]
    fn status_json_has_a_version_and_the_sections() {
        let s = build(&doc(), &journal(), &[], 2, None, &|_| false);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["failed"][0]["kind"], "fatal");
        assert_eq!(v["waves"][0]["groups"][1]["title"], "db");
        assert_eq!(v["journal_skipped_lines"], 2);
    }
}
