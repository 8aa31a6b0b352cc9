//! `mdbatch logs ID [--attempt N] [--follow]`: print a task's attempt log
//! (`.mdbatch/<file name>/logs/<id>/<attempt>.log`, written by the runner line by line).
//!
//! Which attempt: `--attempt N`, else the task's latest attempt in the journal.
//! Attempt numbers restart with each run, so a log always belongs to the
//! latest run that reached that attempt.
//!
//! `--follow` prints the log as it grows and stops when the journal records
//! the attempt's end (or the end of its run, or the run is gone: nobody holds
//! the run lock any more). Followed before the task starts, it waits for the
//! attempt to begin.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use batch_core::store::journal::{self, JournalEntry, JournalRecord};
use batch_core::store::{self, lock};

use crate::args::{ColorChoice, LogsArgs};
use crate::exit;
use crate::output::safe;
use crate::resolve;

/// How often `--follow` looks for new lines and for the attempt's end.
const POLL: Duration = Duration::from_millis(150);

/// An attempt of a task in some run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The run.
    pub run_id: String,
    /// The attempt number in that run.
    pub attempt: u32,
}

/// The attempt to show: the latest start of `id` (with number `attempt`, if given).
pub fn target(entries: &[JournalEntry], id: &str, attempt: Option<u32>) -> Option<Target> {
    entries.iter().rev().find_map(|e| match &e.record {
        JournalRecord::AttemptStart {
            id: i, attempt: a, ..
        } if i == id && attempt.is_none_or(|n| n == *a) => Some(Target {
            run_id: e.run_id.clone(),
            attempt: *a,
        }),
        _ => None,
    })
}

/// Whether the journal says the attempt (or its whole run) is over.
pub fn ended(entries: &[JournalEntry], id: &str, t: &Target) -> bool {
    entries.iter().any(|e| {
        e.run_id == t.run_id
            && match &e.record {
                JournalRecord::AttemptEnd { id: i, attempt, .. } => {
                    i == id && *attempt == t.attempt
                }
                JournalRecord::RunEnd { .. } => true,
                _ => false,
            }
    })
}

/// Runs `mdbatch logs`.
pub fn run(args: &LogsArgs, _color: ColorChoice) -> anyhow::Result<u8> {
    let task_file = resolve::task_file(args.file.as_deref())?;
    let state = store::state_dir(&task_file);
    let mut journal = JournalTail::new(state.join(journal::JOURNAL_FILE), &args.id);
    journal.poll()?;
    let mut found = target(&journal.entries, &args.id, args.attempt);
    if found.is_none() && !args.follow {
        // No journal record (an old journal, a removed one): a log file may still be there.
        let path = match args.attempt {
            Some(n) => store::log_path(&state, &args.id, n),
            None => {
                latest_log(&state, &args.id).unwrap_or_else(|| store::log_path(&state, &args.id, 1))
            }
        };
        if path.is_file() {
            return print_file(&path, args.raw);
        }
        anyhow::bail!(
            "no log for task `{}`{}: it has not run from {} yet (see `mdbatch status`)",
            args.id,
            args.attempt
                .map(|n| format!(" attempt {n}"))
                .unwrap_or_default(),
            task_file.display()
        );
    }
    if !args.follow {
        let t = found.expect("checked above");
        let path = store::log_path(&state, &args.id, t.attempt);
        if !path.is_file() {
            anyhow::bail!(
                "{}: no log for task `{}` attempt {} (it produced no output, or the log was removed)",
                path.display(),
                args.id,
                t.attempt
            );
        }
        return print_file(&path, args.raw);
    }

    // Follow: wait for the attempt to start, then stream its log until it ends.
    let mut out = std::io::stdout().lock();
    loop {
        if let Some(t) = &found {
            let path = store::log_path(&state, &args.id, t.attempt);
            let mut offset = 0u64;
            loop {
                let over = ended(&journal.entries, &args.id, t) || lock::holder(&state)?.is_none();
                offset = copy_new(&path, offset, &mut out, args.raw, over)?;
                if over {
                    return Ok(exit::SUCCESS);
                }
                std::thread::sleep(POLL);
                journal.poll()?;
            }
        }
        if lock::holder(&state)?.is_none() {
            anyhow::bail!(
                "task `{}` has no attempt{} and no run is in progress",
                args.id,
                args.attempt.map(|n| format!(" {n}")).unwrap_or_default()
            );
        }
        std::thread::sleep(POLL);
        journal.poll()?;
        found = target(&journal.entries, &args.id, args.attempt);
    }
}

fn print_file(path: &Path, raw: bool) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    copy_new(path, 0, &mut out, raw, true)?;
    Ok(exit::SUCCESS)
}

/// Copies the bytes of `path` from `offset` on to `out`; returns the new offset.
/// A missing file (no output yet) copies nothing.
///
/// Unless `raw`, the text goes through [`safe::text`] (agent output is
/// untrusted) and, unless `whole`, only up to the last complete line, so a
/// character split between two reads is never mangled.
fn copy_new(
    path: &Path,
    offset: u64,
    out: &mut impl Write,
    raw: bool,
    whole: bool,
) -> anyhow::Result<u64> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(offset),
        Err(e) => anyhow::bail!("{}: cannot read the log: {e}", path.display()),
    };
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    if !raw && !whole {
        let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        buf.truncate(complete);
    }
    let shown: std::borrow::Cow<'_, [u8]> = if raw {
        (&buf[..]).into()
    } else {
        match String::from_utf8_lossy(&buf) {
            std::borrow::Cow::Borrowed(s) => match safe::text(s) {
                std::borrow::Cow::Borrowed(_) => (&buf[..]).into(),
                std::borrow::Cow::Owned(c) => c.into_bytes().into(),
            },
            std::borrow::Cow::Owned(s) => safe::text(&s).into_owned().into_bytes().into(),
        }
    };
    match out.write_all(&shown).and_then(|()| out.flush()) {
        Ok(()) => {}
        // `mdbatch logs X | head`: the reader is gone, which is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => return Err(e.into()),
    }
    Ok(offset + buf.len() as u64)
}

/// The highest-numbered log of a task, when the journal cannot say.
fn latest_log(state: &Path, id: &str) -> Option<PathBuf> {
    let dir = store::log_path(state, id, 1).parent()?.to_path_buf();
    std::fs::read_dir(&dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n: u32 = name.strip_suffix(".log")?.parse().ok()?;
            Some((n, e.path()))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, p)| p)
}

/// Reads the journal incrementally: only complete new lines each poll.
struct JournalTail {
    path: PathBuf,
    /// The task whose records are kept (with the ends of runs).
    id: String,
    offset: u64,
    entries: Vec<JournalEntry>,
}

impl JournalTail {
    fn new(path: PathBuf, id: &str) -> Self {
        Self {
            path,
            id: id.to_owned(),
            offset: 0,
            entries: Vec::new(),
        }
    }

    fn poll(&mut self) -> anyhow::Result<()> {
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => anyhow::bail!("{}: cannot read the journal: {e}", self.path.display()),
        };
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        // Only whole lines: a line being written is read on the next poll.
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            return Ok(());
        };
        let read = journal::parse_task(&buf[..=end], &self.id);
        self.entries.extend(read.entries);
        self.offset += end as u64 + 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn e(run: &str, record: serde_json::Value) -> JournalEntry {
        let mut v = record;
        v["v"] = json!(1);
        v["ts"] = json!("2026-11-25T09:00:00.000Z");
        v["run_id"] = json!(run);
        serde_json::from_value(v).unwrap()
    }

    fn start(run: &str, id: &str, a: u32) -> JournalEntry {
        e(
            run,
            json!({"type":"attempt_start","id":id,"attempt":a,"text_hash":"h"}),
        )
    }

    #[test]
    fn the_latest_attempt_of_the_latest_run_is_the_default() {
        let entries = vec![
            start("r1", "T1", 1),
            start("r1", "T1", 2),
            start("r2", "T1", 1),
            start("r2", "T2", 1),
        ];
        assert_eq!(
            target(&entries, "T1", None),
            Some(Target {
                run_id: "r2".into(),
                attempt: 1
            })
        );
        assert_eq!(
            target(&entries, "T1", Some(2)),
            Some(Target {
                run_id: "r1".into(),
                attempt: 2
            })
        );
        assert_eq!(target(&entries, "T3", None), None);
    }

    #[test]
    fn an_attempt_ends_with_its_end_record_or_its_run() {
        let t = Target {
            run_id: "r1".into(),
            attempt: 1,
        };
        let mut entries = vec![start("r1", "T1", 1)];
        assert!(!ended(&entries, "T1", &t));
        entries.push(e(
            "r1",
            json!({"type":"attempt_end","id":"T2","attempt":1,"outcome":"succeeded","kind":null,"message":null,
                   "duration_ms":1,"pid":null,"session_id":null,"usage":null,"text_hash":"h"}),
        ));
        assert!(!ended(&entries, "T1", &t), "another task's end is not ours");
        entries.push(e(
            "r1",
            json!({"type":"attempt_end","id":"T1","attempt":1,"outcome":"failed","kind":"failed","message":"x",
                   "duration_ms":1,"pid":null,"session_id":null,"usage":null,"text_hash":"h"}),
        ));
        assert!(ended(&entries, "T1", &t));
        let only_run_end = vec![
            start("r1", "T1", 1),
            e(
                "r1",
                json!({"type":"run_end","summary":{"total":1,"succeeded":0,"flaky":0,"failed":0,"skipped":0,"interrupted":1,"duration_ms":1,"usage":null,"cancelled":true}}),
            ),
        ];
        assert!(ended(&only_run_end, "T1", &t));
    }

    #[test]
    fn the_journal_is_read_a_whole_line_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let line = serde_json::to_string(&start("r1", "T1", 1)).unwrap();
        std::fs::write(&path, format!("{line}\n{}", &line[..10])).unwrap();
        let mut j = JournalTail::new(path.clone(), "T1");
        j.poll().unwrap();
        assert_eq!(j.entries.len(), 1);
        std::fs::write(&path, format!("{line}\n{line}\n")).unwrap();
        j.poll().unwrap();
        assert_eq!(j.entries.len(), 2);
    }

    #[test]
    fn copying_resumes_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.log");
        let mut out = Vec::new();
        assert_eq!(
            copy_new(&path, 0, &mut out, false, false).unwrap(),
            0,
            "no file yet"
        );
        std::fs::write(&path, "one\nt").unwrap();
        let off = copy_new(&path, 0, &mut out, false, false).unwrap();
        assert_eq!(off, 4, "a partial line waits for the rest");
        std::fs::write(&path, "one\ntwo\n").unwrap();
        copy_new(&path, off, &mut out, false, false).unwrap();
        assert_eq!(out, b"one\ntwo\n");
    }

    #[test]
    fn terminal_escapes_in_a_log_are_shown_not_obeyed_unless_raw() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.log");
        let hostile = "done\x1b]0;owned\x07\x1b[2J\n";
        std::fs::write(&path, hostile).unwrap();
        let mut out = Vec::new();
        copy_new(&path, 0, &mut out, false, true).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "done^[]0;owned^G^[[2J\n");
        let mut raw = Vec::new();
        copy_new(&path, 0, &mut raw, true, true).unwrap();
        assert_eq!(raw, hostile.as_bytes());
    }
}
