//! `mdbatch clean [FILE] [--worktree-dir DIR] [--dry-run]`: removes the git
//! worktrees and branches mdbatch runs left behind (failed tasks' worktrees
//! kept for inspection, a killed run's leftovers, an integration branch that
//! could not be brought in) and reports the space freed.
//!
//! Holds the task file's run lock while it works, so it never pulls a
//! worktree from under a running batch.

use batch_core::land::{self, Repo};
use batch_core::store::{self, lock::RunLock};

use crate::args::{CleanArgs, ColorChoice};
use crate::exit;
use crate::resolve;

/// Runs `mdbatch clean`.
pub fn run(args: &CleanArgs, _color: ColorChoice) -> u8 {
    match clean(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::USAGE
        }
    }
}

fn clean(args: &CleanArgs) -> anyhow::Result<u8> {
    let path = resolve::task_file(args.file.as_deref())?;
    let folder = std::path::absolute(&path)?
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| ".".into());
    if !land::is_git_repo(&folder).unwrap_or(false) {
        eprintln!(
            "nothing to clean: {} is not in a git repository, so mdbatch made no worktrees there",
            folder.display()
        );
        return Ok(exit::SUCCESS);
    }
    let state = store::state_dir(&path);
    let _lock = RunLock::acquire(&state, &path)
        .map_err(|e| anyhow::anyhow!("{e}; `mdbatch clean` waits until no run is going on"))?;
    let repo = Repo::open(&folder)?;
    let leftovers = land::list_leftovers(&repo, args.worktree_dir.as_deref())?;
    if leftovers.is_empty() {
        eprintln!("nothing to clean: no worktree or branch of mdbatch's is left");
        return Ok(exit::SUCCESS);
    }
    for l in &leftovers {
        let what = match (&l.path, &l.branch) {
            (Some(p), Some(b)) => format!("{} (branch {b})", p.display()),
            (Some(p), None) => p.display().to_string(),
            (None, Some(b)) => format!("branch {b}"),
            (None, None) => continue,
        };
        println!(
            "{} {what}, {}",
            if args.dry_run {
                "would remove"
            } else {
                "removed"
            },
            size(l.bytes)
        );
    }
    let total: u64 = leftovers.iter().map(|l| l.bytes).sum();
    if args.dry_run {
        println!(
            "{} to free; run `mdbatch clean` without --dry-run to remove them",
            size(total)
        );
        return Ok(exit::SUCCESS);
    }
    let report = land::clean(&repo, &leftovers)?;
    println!(
        "removed {} worktree{} and {} branch{}: {} freed",
        report.worktrees.len(),
        if report.worktrees.len() == 1 { "" } else { "s" },
        report.branches.len(),
        if report.branches.len() == 1 { "" } else { "es" },
        size(report.bytes_freed)
    );
    Ok(exit::SUCCESS)
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}
