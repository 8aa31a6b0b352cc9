//! The run lock: `.mdbatch/<file name>/lock`, held with `flock(2)` for the whole run.
//!
//! An advisory lock on an open file, not a pid file: the kernel releases it
//! when the holder exits, however it exits, so a lock left by a killed run
//! never blocks the next one. The holder's pid is written inside the file only
//! to name it in the second run's error message.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use fs2::FileExt;

use crate::error::{RunSetupError, StoreError};

/// The lock file's name inside the state folder.
pub const LOCK_FILE: &str = "lock";

/// A held run lock; released when dropped.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of the run of `task_file` whose state lives in `state_dir`
    /// (created if missing).
    ///
    /// Fails at once with [`RunSetupError::Locked`] naming the holder's pid when
    /// another run holds it.
    pub fn acquire(state_dir: &Path, task_file: &Path) -> Result<RunLock, RunSetupError> {
        let io = |message: &str, path: &Path, e: std::io::Error| RunSetupError::Io {
            path: path.to_path_buf(),
            message: message.to_string(),
            source: std::sync::Arc::new(e),
        };
        std::fs::create_dir_all(state_dir)
            .map_err(|e| io("cannot create the state folder", state_dir, e))?;
        super::check_state_dir(state_dir)?;
        let path = state_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| io("cannot open the lock file", &path, e))?;
        if let Err(e) = file.try_lock_exclusive() {
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
            {
                return Err(RunSetupError::Locked {
                    path: task_file.to_path_buf(),
                    pid: read_pid(&mut file).unwrap_or(0),
                });
            }
            return Err(io("cannot lock", &path, e));
        }
        let write = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.flush());
        write.map_err(|e| io("cannot write the lock file", &path, e))?;
        Ok(RunLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // The pid is cleared so `status` does not name a finished run; the
        // kernel drops the lock with the file descriptor anyway.
        let _ = self.file.set_len(0);
        let _ = FileExt::unlock(&self.file);
    }
}

/// The pid of the run holding the lock in `state_dir`, if one does.
pub fn holder(state_dir: &Path) -> Result<Option<u32>, StoreError> {
    let path = state_dir.join(LOCK_FILE);
    let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(&path, "cannot open the lock file", e)),
    };
    match FileExt::try_lock_shared(&file) {
        Ok(()) => {
            let _ = FileExt::unlock(&file);
            Ok(None)
        }
        Err(_) => Ok(Some(read_pid(&mut file).unwrap_or(0))),
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(64).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_fails_naming_the_holder_and_is_free_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".mdbatch");
        let task = dir.path().join("task.md");
        let first = RunLock::acquire(&state, &task).unwrap();
        match RunLock::acquire(&state, &task) {
            Err(RunSetupError::Locked { pid, path }) => {
                assert_eq!(pid, std::process::id());
                assert_eq!(path, task);
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        assert_eq!(holder(&state).unwrap(), Some(std::process::id()));
        drop(first);
        assert_eq!(holder(&state).unwrap(), None);
        RunLock::acquire(&state, &task).unwrap();
    }
}
