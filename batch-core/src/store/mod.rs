//! mdbatch's state: the task file write-back, the journal, the lock.
//!
//! Everything but the task file lives in a folder of its own per task file,
//! `.mdbatch/<file name>/` beside it ([`state_dir`]): `journal.jsonl`,
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
        .map(|n| safe_name(&n.to_string_lossy()))
        .unwrap_or_else(|| "_".into());
    let base = match real.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(STATE_DIR),
        _ => PathBuf::from(STATE_DIR),
    };
    base.join(name)
}

/// Where attempt `attempt` of task `id` logs its output:
/// `.mdbatch/<file name>/logs/<id>/<attempt>.log` (the id made safe for a file name).
pub fn log_path(state_dir: &Path, id: &str, attempt: u32) -> PathBuf {
    state_dir
        .join("logs")
        .join(safe_name(id))
        .join(format!("{attempt}.log"))
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
