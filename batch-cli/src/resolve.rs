//! From arguments to core options: the task file, parse options, plan options.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use batch_core::{Dialect, ParseOptions, PlanOptions};

use crate::args::{DocArgs, SelectArgs};

/// The task file: the one given, else `task.md`, else `tasks.md` in the current folder.
pub fn task_file(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        if !p.exists() {
            bail!("{}: no such file", p.display());
        }
        return Ok(p.to_path_buf());
    }
    // Relative to the current folder, as the user wrote nothing.
    batch_core::find_task_file(Path::new("")).map_err(|_| {
        anyhow::anyhow!(
            "no task.md or tasks.md in this folder; give the task file as an argument, or create one with `mdbatch init`"
        )
    })
}

/// Parse options from the shared document arguments.
pub fn parse_options(path: &Path, doc: &DocArgs) -> anyhow::Result<ParseOptions> {
    let mut opts = ParseOptions::with_path(path);
    opts.wave_level = doc.wave_level;
    opts.dialect = match &doc.dialect {
        Some(d) => Some(
            d.parse::<Dialect>()
                .map_err(anyhow::Error::msg)
                .context("--dialect")?,
        ),
        None => None,
    };
    Ok(opts)
}

/// Plan options from the selection arguments.
pub fn plan_options(select: &SelectArgs) -> PlanOptions {
    let opts = PlanOptions::new()
        .with_only(&select.only)
        .with_include_optional(select.include_optional);
    if select.cross_wave {
        opts.with_cross_wave(true)
    } else {
        opts
    }
}
