//! mdbatch's state: the task file write-back, the journal, the lock.
//!
//! Everything but the task file lives in a folder of its own per task file,
//! `.mdbatch/<file name>/` beside it ([`state_dir`]; a name that is not a
//! safe file name as it is — `a b.md` — gets a hash after its safe form,
//! `a_b.md~…`, so no two files share one): `journal.jsonl`,
//! `lock`, and `logs/<id>/<attempt>.log`. Two task files in one folder have
//! separate histories and locks and can run at once; the folder is found
//! from the file's real path, so a symlink to a task file shares its state.

pub mod journal;
pub mod lock;
pub mod taskfile;

use std::path::{Path, PathBuf};

/// The state folder's name.
pub const STATE_DIR: &str = ".mdbatch";

/// The state folder of a task file: `.mdbatch/<file name>/` beside the file
/// the path resolves to (symlinks followed; the path as given when it does
/// not exist).
pub fn state_dir(task_file: &Path) -> PathBuf {
    let real = std::fs::canonicalize(task_file).unwrap_or_else(|_| task_file.to_path_buf());
    let name = real
        .file_name()
        .map(|n| unique_name(&n.to_string_lossy()))
        .unwrap_or_else(|| "_".into());
    let base = match real.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(STATE_DIR),
        _ => PathBuf::from(STATE_DIR),
    };
    base.join(name)
}

/// Where attempt `attempt` of task `id` logs its output:
/// `.mdbatch/<file name>/logs/<id>/<attempt>.log`.
///
/// An id that is not already a safe file name (it has `/`, spaces, other
/// oddities, or more than 100 characters) is made safe and given a hash of
/// the whole id after a `~` (`a_b~1c0f…`), so two ids never share a log
/// folder (`a/b` and `a_b`; ids alike in their first 100 characters; an id
/// spelled like another's safe form — a safe name never has a `~`).
pub fn log_path(state_dir: &Path, id: &str, attempt: u32) -> PathBuf {
    state_dir
        .join("logs")
        .join(unique_name(id))
        .join(format!("{attempt}.log"))
}

/// `name` as a file name no other name maps to: itself when it is already a
/// safe name, else its safe form, `~` and a hash of the whole name.
fn unique_name(name: &str) -> String {
    let safe = safe_name(name);
    if safe == name {
        safe
    } else {
        format!("{safe}~{}", journal::text_hash(name))
    }
}

/// Refuses a state folder that is not a real folder of the user's: a
/// symlink (someone wants mdbatch to write elsewhere) or a folder owned by
/// someone else. Checks `dir` and, when it is `.mdbatch/<file name>`, the
/// `.mdbatch` above it.
pub fn check_state_dir(dir: &Path) -> Result<(), crate::error::StoreError> {
    check_own_dir(dir)?;
    if let Some(parent) = dir.parent()
        && parent.file_name().is_some_and(|n| n == STATE_DIR)
    {
        check_own_dir(parent)?;
    }
    Ok(())
}

/// Makes the state folder `dir` one level at a time — `.mdbatch` (when `dir`
/// is `.mdbatch/<file name>`), then `dir` — each checked as
/// [`check_state_dir`] does before anything is made inside it: a planted
/// `.mdbatch -> elsewhere` or another user's `.mdbatch` gets nothing made
/// in it.
pub fn make_state_dir(dir: &Path) -> Result<(), crate::error::StoreError> {
    let parent = dir
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == STATE_DIR));
    // Above the checked levels (a state folder a host put elsewhere), the
    // folders are made as for any path.
    if let Some(above) = parent
        .unwrap_or(dir)
        .parent()
        .filter(|a| !a.as_os_str().is_empty())
    {
        std::fs::create_dir_all(above).map_err(|e| {
            crate::error::StoreError::io(above, "cannot create the state folder", e)
        })?;
    }
    make_own_dirs(parent.into_iter().chain([dir]))
}

/// Makes each of `levels` in turn (a parent before its child) if missing,
/// and checks it is a folder of the user's before going on: `mkdir` never
/// follows a symlink at the name it makes, and one already there is refused.
/// A level that is already there costs one `lstat` (no `mkdir`).
pub(crate) fn make_own_dirs<'a>(
    levels: impl IntoIterator<Item = &'a Path>,
) -> Result<(), crate::error::StoreError> {
    for level in levels {
        match std::fs::symlink_metadata(level) {
            Ok(m) => {
                own_dir(level, &m)?;
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(crate::error::StoreError::io(
                    level,
                    "cannot use the state folder",
                    e,
                ));
            }
        }
        match std::fs::create_dir(level) {
            Ok(()) => {}
            // Made meanwhile (by another attempt, or planted): checked below.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(crate::error::StoreError::io(
                    level,
                    "cannot create the state folder",
                    e,
                ));
            }
        }
        check_own_dir(level)?;
    }
    Ok(())
}

/// The file of the state folder `state_dir` in `dir`, a folder of the
/// user's outside the project: `<dir>/<hash of the state folder's absolute
/// path>.<ext>` (`None` when that path cannot be had).
pub(crate) fn keyed_file(dir: &Path, state_dir: &Path, ext: &str) -> Option<PathBuf> {
    let key = std::path::absolute(state_dir).ok()?;
    Some(dir.join(format!(
        "{}.{ext}",
        journal::text_hash(&key.to_string_lossy())
    )))
}

/// Makes `dir` (and the folders above it) readable by the user alone
/// (0700), and checks it is a folder of the user's.
pub(crate) fn make_private_dir(dir: &Path) -> Result<(), crate::error::StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| crate::error::StoreError::io(dir, "cannot create the folder", e))?;
    check_own_dir(dir)
}

/// `path` is a folder (not a symlink to one) owned by the effective user.
pub(crate) fn check_own_dir(path: &Path) -> Result<(), crate::error::StoreError> {
    let m = std::fs::symlink_metadata(path)
        .map_err(|e| crate::error::StoreError::io(path, "cannot use the state folder", e))?;
    own_dir(path, &m)
}

/// [`check_own_dir`] on metadata already read with `lstat`.
fn own_dir(path: &Path, m: &std::fs::Metadata) -> Result<(), crate::error::StoreError> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let why = if m.file_type().is_symlink() {
        "is a symbolic link"
    } else if !m.is_dir() {
        "is not a folder"
    } else if m.uid() != me {
        "is owned by another user"
    } else {
        return Ok(());
    };
    Err(crate::error::StoreError::io(
        path,
        format!("refusing the state folder: it {why}; remove it and run again"),
        std::io::Error::other(why),
    ))
}

/// Where a subagent may write its progress lines (`MDBATCH_PROGRESS_FILE`)
/// for the attempt logging to `log`: `logs/<id>~<attempt>.progress`, beside
/// the per-task log folders rather than in one, so that an attempt that
/// prints nothing creates no folder and no file. The `~` keeps it apart from
/// every log folder (`x~1.progress` is no safe name, nor a hashed one).
pub fn progress_path(log: &Path) -> PathBuf {
    let attempt = log
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match log.parent() {
        Some(dir) => {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            dir.parent()
                .unwrap_or(dir)
                .join(format!("{name}~{attempt}.progress"))
        }
        None => log.with_extension("progress"),
    }
}

/// Gets the log of an attempt ready: the `logs/` folder made, and a stale
/// log of the same attempt number and its progress file removed. Refuses
/// folders that are symlinks or not the user's: a planted link never makes
/// mdbatch write or delete elsewhere (removing a symlink removes the link,
/// not its target). The log's own folder (`logs/<id>/`) is made by the
/// runner when the first line arrives.
///
/// Three system calls in the common case (an `lstat` of `logs/` and of
/// `logs/<id>/`, and one `unlink` of a progress file that is not there):
/// a log can only be stale where its folder exists, so a task that never
/// printed has none to remove.
pub fn prepare_log(log: &Path) -> Result<(), crate::error::StoreError> {
    let Some(dir) = log.parent() else {
        return Ok(());
    };
    if let Some(logs) = dir.parent().filter(|l| !l.as_os_str().is_empty()) {
        make_own_dirs([logs])?;
    }
    let stale_log = match std::fs::symlink_metadata(dir) {
        Ok(m) => {
            own_dir(dir, &m)?;
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(crate::error::StoreError::io(
                dir,
                "cannot use the log folder",
                e,
            ));
        }
    };
    let progress = progress_path(log);
    let stale = stale_log
        .then_some(log)
        .into_iter()
        .chain([progress.as_path()]);
    for stale in stale {
        match std::fs::remove_file(stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(crate::error::StoreError::io(
                    stale,
                    "cannot remove a stale log",
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// Makes the folder of `log` (when its first line arrives), refusing one that
/// is a symlink or not the user's.
pub(crate) fn make_log_dir(log: &Path) -> std::io::Result<()> {
    let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let logs = dir.parent().filter(|l| !l.as_os_str().is_empty());
    if let Some(above) = logs
        .and_then(Path::parent)
        .filter(|a| !a.as_os_str().is_empty())
    {
        std::fs::create_dir_all(above)?;
    }
    make_own_dirs(logs.into_iter().chain([dir]))
        .map_err(|e| std::io::Error::other(crate::util::with_causes(&e)))
}

/// A task id as a file name: path separators and oddities replaced by `_`.
pub fn safe_name(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        format!("_{s}")
    } else {
        s
    }
}
