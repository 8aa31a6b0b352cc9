//! Writing the task file: checking (and unchecking) boxes, one byte each.
//!
//! This is the only code that writes the task file. It never reserialises
//! markdown. For every write it re-reads the file, re-parses it with the same
//! [`ParseOptions`] as the run, finds each task again by id, verifies the three
//! bytes at its marker are `[ ]`, flips the middle byte to `x` (or `X` when most
//! checked boxes in the file use `X`), writes a temp file beside the original,
//! fsyncs it, gives it the original's permissions, renames it over the
//! original and fsyncs the folder. Every other byte, including edits the user
//! made during the run, a BOM and CRLF line ends, is kept.
//!
//! A parent task is checked in the same write once all its required children
//! (not optional, not `skip`) are checked.
//!
//! Pitfalls: if the file changes between our read and our rename, the write is
//! started over (up to a few times) so a concurrent edit is not lost; a
//! symlinked task file is written through to its target.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::doc::{Document, ParseOptions};
use crate::error::StoreError;

/// What a write did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WriteOutcome {
    /// Tasks whose box was flipped, in the order asked.
    pub changed: Vec<String>,
    /// Tasks that were already in the wanted state (nothing to do).
    pub unchanged: Vec<String>,
    /// Parents flipped as a consequence.
    pub parents: Vec<String>,
    /// Tasks that could not be flipped (gone, or not `[ ]` / `[x]`), with why.
    pub problems: Vec<StoreError>,
}

/// How many times a write is retried when the file changes under it.
const MAX_RACES: usize = 5;

/// Checks the boxes of `ids` (and of parents whose required children are now
/// all checked) in one atomic write.
///
/// Returns `Err` only when nothing could be written (the file cannot be read,
/// no longer parses, or cannot be replaced); per-task problems are in
/// [`WriteOutcome::problems`].
pub fn check_boxes(
    path: &Path,
    options: &ParseOptions,
    ids: &[String],
) -> Result<WriteOutcome, StoreError> {
    rewrite(path, options, ids, true)
}

/// Unchecks the boxes of `ids` (for `mdbatch reset`), and of their checked
/// ancestors, in one atomic write.
pub fn uncheck(
    path: &Path,
    options: &ParseOptions,
    ids: &[String],
) -> Result<WriteOutcome, StoreError> {
    rewrite(path, options, ids, false)
}

/// Fails unless the task file can be replaced: the file is readable and
/// writable and its folder accepts a new file. Called before a run starts.
pub fn ensure_writable(path: &Path) -> Result<(), StoreError> {
    let real = real_path(path);
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&real)
        .map_err(|e| StoreError::io(&real, "the task file is not writable", e))?;
    let dir = parent_dir(&real);
    let probe = dir.join(format!(".mdbatch-probe-{}", std::process::id()));
    std::fs::File::create(&probe)
        .map_err(|e| StoreError::io(&dir, "cannot create files in the task file's folder", e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn real_path(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn rewrite(
    path: &Path,
    options: &ParseOptions,
    ids: &[String],
    to_checked: bool,
) -> Result<WriteOutcome, StoreError> {
    let real = real_path(path);
    for _ in 0..MAX_RACES {
        let before = std::fs::read(&real)
            .map_err(|e| StoreError::io(&real, "cannot read the task file", e))?;
        let (after, outcome) = flip(&before, path, options, ids, to_checked)?;
        if after == before {
            return Ok(outcome);
        }
        match replace(&real, &before, &after)? {
            true => return Ok(outcome),
            false => continue,
        }
    }
    Err(StoreError::io(
        &real,
        "the file kept changing while its boxes were being checked",
        std::io::Error::other("concurrent modification"),
    ))
}

/// Computes the new bytes. Pure: no I/O.
pub(crate) fn flip(
    bytes: &[u8],
    path: &Path,
    options: &ParseOptions,
    ids: &[String],
    to_checked: bool,
) -> Result<(Vec<u8>, WriteOutcome), StoreError> {
    let doc = Document::parse_bytes(bytes, options).map_err(|_| StoreError::Unparsable {
        path: path.to_path_buf(),
    })?;
    let mut out = bytes.to_vec();
    let mut outcome = WriteOutcome::default();
    let mark = if to_checked {
        checked_mark(&doc, bytes)
    } else {
        b' '
    };
    let mut state: Vec<bool> = doc.tasks.iter().map(|t| t.checked).collect();
    let mut flipped: Vec<usize> = Vec::new();

    for id in ids {
        let Some(task) = doc.task_by_id(id) else {
            outcome.problems.push(StoreError::TaskGone {
                path: path.to_path_buf(),
                id: id.clone(),
            });
            continue;
        };
        match marker_state(bytes, &task.marker) {
            Some(c) if c == to_checked => outcome.unchanged.push(id.clone()),
            Some(_) => {
                out[task.marker.start + 1] = mark;
                state[task.index] = to_checked;
                flipped.push(task.index);
                outcome.changed.push(id.clone());
            }
            None => outcome.problems.push(StoreError::MarkerMismatch {
                path: path.to_path_buf(),
                id: id.clone(),
                line: line_of(bytes, task.marker.start),
                found: String::from_utf8_lossy(bytes.get(task.marker.clone()).unwrap_or_default())
                    .into_owned(),
            }),
        }
    }

    // Parents: walk up from every flipped task.
    let mut i = 0;
    while i < flipped.len() {
        let Some(parent) = doc.tasks[flipped[i]].parent else {
            i += 1;
            continue;
        };
        i += 1;
        let p = &doc.tasks[parent];
        if state[parent] == to_checked {
            continue;
        }
        let ready = if to_checked {
            p.children
                .iter()
                .map(|&c| &doc.tasks[c])
                .filter(|c| !c.optional && !c.skip)
                .all(|c| state[c.index])
        } else {
            true
        };
        if ready && marker_state(bytes, &p.marker) == Some(!to_checked) {
            out[p.marker.start + 1] = mark;
            state[parent] = to_checked;
            flipped.push(parent);
            outcome.parents.push(p.id.clone());
        }
    }
    Ok((out, outcome))
}

/// `Some(true)` for `[x]`/`[X]`, `Some(false)` for `[ ]`, `None` otherwise.
fn marker_state(bytes: &[u8], marker: &std::ops::Range<usize>) -> Option<bool> {
    match bytes.get(marker.clone())? {
        b"[ ]" => Some(false),
        b"[x]" | b"[X]" => Some(true),
        _ => None,
    }
}

/// `X` when most checked boxes in the file use `X`, else `x`.
fn checked_mark(doc: &Document, bytes: &[u8]) -> u8 {
    let (mut upper, mut lower) = (0usize, 0usize);
    for t in &doc.tasks {
        match bytes.get(t.marker.start + 1) {
            Some(b'X') => upper += 1,
            Some(b'x') => lower += 1,
            _ => {}
        }
    }
    if upper > lower { b'X' } else { b'x' }
}

fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Replaces `path` with `after`, unless it no longer holds `before` (then
/// returns `Ok(false)` so the caller starts over).
fn replace(path: &Path, before: &[u8], after: &[u8]) -> Result<bool, StoreError> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.mdbatch-{}.tmp", std::process::id()));
    let perms = std::fs::metadata(path)
        .map_err(|e| StoreError::io(path, "cannot read the task file's permissions", e))?
        .permissions();
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| {
                StoreError::io(&tmp, "cannot create a temp file beside the task file", e)
            })?;
        f.write_all(after)
            .and_then(|()| f.sync_all())
            .map_err(|e| StoreError::io(&tmp, "cannot write the temp file", e))?;
        std::fs::set_permissions(&tmp, perms)
            .map_err(|e| StoreError::io(&tmp, "cannot copy the task file's permissions", e))?;
        drop(f);
        // Last look: the user may have saved the file since we read it.
        let now = std::fs::read(path)
            .map_err(|e| StoreError::io(path, "cannot read the task file", e))?;
        if now != before {
            return Ok(false);
        }
        std::fs::rename(&tmp, path)
            .map_err(|e| StoreError::io(path, "cannot replace the task file", e))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(true)
    })();
    if !matches!(result, Ok(true)) {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
