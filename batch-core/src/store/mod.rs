//! mdbatch's state: the task file write-back, the journal, the lock.
//!
//! Everything but the task file lives in `.mdbatch/` beside it
//! ([`state_dir`]): `journal.jsonl`, `lock`, and `logs/<id>/<attempt>.log`.

pub mod journal;
pub mod lock;
pub mod taskfile;

use std::path::{Path, PathBuf};

/// The state folder's name.
pub const STATE_DIR: &str = ".mdbatch";

/// The state folder of a task file: `.mdbatch/` beside it.
pub fn state_dir(task_file: &Path) -> PathBuf {
    match task_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(STATE_DIR),
        _ => PathBuf::from(STATE_DIR),
    }
}

/// Where attempt `attempt` of task `id` logs its output:
/// `.mdbatch/logs/<id>/<attempt>.log` (the id made safe for a file name).
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
