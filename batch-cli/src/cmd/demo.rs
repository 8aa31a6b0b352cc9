//! `mdbatch demo`: a sample batch run with the built-in stand-in agent.
//!
//! Writes a sample task file (three waves, two modules, a dependency, one
//! task that fails once) into a fresh folder, runs it through the executor
//! with the stand-in agent and the live display, then says where the folder
//! is and what to try next. Nothing to install, about 15 seconds.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Duration;

use batch_core::exec::Outcome;
use batch_core::runner::presets::{self, PresetKind, PresetOptions, demo_task_file};
use batch_core::{ExecutorBuilder, RunOptions};

use crate::args::{ColorChoice, DemoArgs};
use crate::exit;
use crate::output::Output;

/// Runs `mdbatch demo`.
pub fn run(args: &DemoArgs, color: ColorChoice) -> anyhow::Result<u8> {
    let dir = prepare(args.dir.as_deref())?;
    let file = dir.join("tasks.md");
    std::fs::write(&file, demo_task_file())
        .with_context(|| format!("{}: cannot write the demo task file", file.display()))?;
    eprintln!("mdbatch demo: a sample batch in {}\n", dir.display());

    let runner = presets::build(PresetKind::Demo, PresetOptions::new())?;
    let options = RunOptions::new()
        .with_jobs(4)
        .with_backoff_base(Duration::from_millis(500));
    let output = Output::new(false, false, color);
    let result = ExecutorBuilder::new(&file)
        .options(options)
        .runner(runner)
        .on_event(output.on_event())
        .handle_signals(true)
        .build()
        .and_then(|ex| ex.run_blocking());
    let report = result?;
    output.finish(&report);
    let all_done = report.tasks.iter().all(|t| t.outcome == Outcome::Succeeded);
    eprintln!("\n{}", next_steps(&dir));
    Ok(if report.summary.cancelled {
        exit::INTERRUPTED
    } else if all_done {
        exit::SUCCESS
    } else {
        exit::TASKS_FAILED
    })
}

/// The folder to use: `--dir` (created; must not hold a task file yet) or a new temporary one.
fn prepare(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            std::env::temp_dir().join(format!("mdbatch-demo-{}-{stamp}", std::process::id()))
        }
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("{}: cannot create the demo folder", dir.display()))?;
    if dir.join("tasks.md").exists() {
        anyhow::bail!(
            "{}: already holds a tasks.md; give `mdbatch demo --dir` a new folder",
            dir.display()
        );
    }
    // Absolute, so the hints below work from any folder.
    Ok(dir.canonicalize().unwrap_or(dir))
}

fn next_steps(dir: &Path) -> String {
    let (m, install) = match invocation() {
        Some(m) => (m, String::new()),
        None => {
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "mdbatch".to_string());
            (
                shell_quote(&exe),
                "\n(`mdbatch` is not on your PATH yet: `cargo install --path batch-cli` puts it there.)"
                    .to_string(),
            )
        }
    };
    format!(
        "The demo batch is in {d}
Try next:
  cd {qd}
  {m} plan                          # the waves, groups and the dependency it ran
  {m} status                        # what is done, which task needed a retry
  {m} reset --all --yes && {m} run --runner demo   # run it again
Then write your own tasks.md (`{m} init`) and run it with `{m} run --runner claude`.{install}",
        d = dir.display(),
        qd = shell_quote(&dir.display().to_string()),
    )
}

/// `mdbatch` when that name on `PATH` is this very program; `None` when the
/// user started it some other way (`cargo run`, a path) and `mdbatch` would
/// not work where they stand.
fn invocation() -> Option<String> {
    let me = std::env::current_exe().ok()?.canonicalize().ok()?;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| !d.as_os_str().is_empty())
        .filter_map(|d| d.join("mdbatch").canonicalize().ok())
        .next()
        .filter(|found| *found == me)
        .map(|_| "mdbatch".to_string())
}

/// `s` as one shell word (quoted only when it needs to be).
fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
