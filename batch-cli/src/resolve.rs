//! From arguments to core options: the task file, parse options, plan options.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use batch_core::{Dialect, ParseOptions, PlanOptions};

use crate::args::{DocArgs, SelectArgs};

/// The task file: the one given, else `task.md`, else `tasks.md` in the current folder.
///
/// A path that is not a regular file (a FIFO, a device, a folder, a socket;
/// a symlink is followed) is refused here, before anything opens it: opening
/// a FIFO for reading blocks until someone writes, and a run on `/dev/null`
/// would make `/dev/.mdbatch`.
pub fn task_file(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => {
            if !p.exists() {
                bail!("{}: no such file", p.display());
            }
            p.to_path_buf()
        }
        // Relative to the current folder, as the user wrote nothing.
        None => batch_core::find_task_file(Path::new("")).map_err(|_| {
            anyhow::anyhow!(
                "no task.md or tasks.md in this folder; give the task file as an argument, or create one with `mdbatch init`"
            )
        })?,
    };
    regular_task_file(&path)?;
    Ok(path)
}

/// Refuses `path` unless it is a regular file (after following symlinks),
/// looking at its metadata only: nothing is opened.
pub fn regular_task_file(path: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read the task file", path.display()))?;
    if let Some(kind) = not_regular(&meta.file_type()) {
        bail!(
            "{}: the task file is {kind}, not a regular file; save the checklist in a file \
             (e.g. `cat {} > task.md`) and give that file",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// What a file that is not a regular file is, or `None` for a regular file.
fn not_regular(t: &std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a folder")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

/// Reads a task file whole, refusing what is not a regular file. Opened with
/// `O_NONBLOCK`, so a FIFO put in its place after [`task_file`] looked is
/// refused rather than waited on (the flag changes nothing for a regular
/// file).
pub fn read_task_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if let Some(kind) = not_regular(&file.metadata()?.file_type()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {kind}, not a regular file"),
        ));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
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
