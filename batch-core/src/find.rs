//! Finding the task file of a folder: `task.md`, then `tasks.md`.

use std::path::{Path, PathBuf};

use crate::error::FindError;

/// The names a task file is looked up by, in order.
pub const TASK_FILE_NAMES: [&str; 2] = ["task.md", "tasks.md"];

/// The task file of `dir`: `task.md` if it is a file there, else `tasks.md`.
///
/// # Errors
///
/// [`FindError::NoTaskFile`] when neither exists.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("mdbatch-find-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("tasks.md"), "- [ ] one\n").unwrap();
/// assert_eq!(batch_core::find_task_file(&dir).unwrap(), dir.join("tasks.md"));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn find_task_file(dir: &Path) -> Result<PathBuf, FindError> {
    TASK_FILE_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| FindError::NoTaskFile {
            dir: dir.to_path_buf(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_md_wins_over_tasks_md_and_neither_is_an_error_naming_the_folder() {
        let dir = std::env::temp_dir().join(format!("mdbatch-find-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = find_task_file(&dir).unwrap_err();
        assert!(matches!(&err, FindError::NoTaskFile { dir: d } if *d == dir));
        std::fs::write(dir.join("tasks.md"), "").unwrap();
        assert_eq!(find_task_file(&dir).unwrap(), dir.join("tasks.md"));
        std::fs::write(dir.join("task.md"), "").unwrap();
        assert_eq!(find_task_file(&dir).unwrap(), dir.join("task.md"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
