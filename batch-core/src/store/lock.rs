//! The run lock: `.mdbatch/<file name>/lock`, held with `flock(2)` for the
//! whole run, and its twin outside the project.
//!
//! An advisory lock on an open file, not a pid file: the kernel releases it
//! when the holder exits, however it exits, so a lock left by a killed run
//! never blocks the next one. The holder's pid is written inside the file only
//! to name it in the second run's error message.
//!
//! A lock inside the project can be deleted under a run (`rm -rf .mdbatch`,
//! by a user or an agent): the run keeps its lock on a file nobody can open
//! any more, and a second run would make a new one and start. So the run also
//! locks a file keyed by its state folder's path in a folder of the user's
//! outside the project — `$XDG_RUNTIME_DIR/mdbatch/locks/` or, without one,
//! `<temp dir>/mdbatch-<uid>/locks/` (mode 0700, refused when it is a symlink
//! or someone else's). Either lock held means the file is being run. Where
//! that folder cannot be made, the lock in the project alone is used.

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
    /// The twin outside the project, when it could be made.
    outside: Option<File>,
}

impl RunLock {
    /// Takes the lock of the run of `task_file` whose state lives in `state_dir`
    /// (created if missing).
    ///
    /// Fails at once with [`RunSetupError::Locked`] naming the holder's pid when
    /// another run holds it.
    pub fn acquire(state_dir: &Path, task_file: &Path) -> Result<RunLock, RunSetupError> {
        super::make_state_dir(state_dir)?;
        let path = state_dir.join(LOCK_FILE);
        // The twin first: it is the one no one in the project can delete.
        let outside = match make_outside_path(state_dir) {
            Some(twin) => Some(take(&twin, task_file).map_err(|e| e.into_setup(&twin))?),
            None => None,
        };
        let file = take(&path, task_file).map_err(|e| e.into_setup(&path))?;
        Ok(RunLock {
            file,
            path,
            outside,
        })
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
        for f in std::iter::once(&self.file).chain(self.outside.as_ref()) {
            let _ = f.set_len(0);
            let _ = FileExt::unlock(f);
        }
    }
}

/// Why a lock file could not be taken.
enum TakeError {
    Locked(RunSetupError),
    Io(&'static str, std::io::Error),
}

impl TakeError {
    fn into_setup(self, path: &Path) -> RunSetupError {
        match self {
            TakeError::Locked(e) => e,
            TakeError::Io(message, e) => RunSetupError::Io {
                path: path.to_path_buf(),
                message: message.to_string(),
                source: std::sync::Arc::new(e),
            },
        }
    }
}

/// Opens (creating) the lock file at `path`, locks it and writes our pid.
fn take(path: &Path, task_file: &Path) -> Result<File, TakeError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| TakeError::Io("cannot open the lock file", e))?;
    if let Err(e) = file.try_lock_exclusive() {
        if e.kind() == std::io::ErrorKind::WouldBlock
            || e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
        {
            return Err(TakeError::Locked(RunSetupError::Locked {
                path: task_file.to_path_buf(),
                pid: read_pid(&mut file).unwrap_or(0),
            }));
        }
        return Err(TakeError::Io("cannot lock", e));
    }
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.flush())
        .map_err(|e| TakeError::Io("cannot write the lock file", e))?;
    Ok(file)
}

/// The folder of the lock twins outside the project (see the module docs).
fn outside_dir() -> PathBuf {
    let base = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d).join("mdbatch"),
        _ => {
            // SAFETY: geteuid has no preconditions and cannot fail.
            let uid = unsafe { libc::geteuid() };
            std::env::temp_dir().join(format!("mdbatch-{uid}"))
        }
    };
    base.join("locks")
}

/// The twin of the lock of `state_dir` outside the project, its folder made
/// and checked; `None` when no such folder can be had.
fn make_outside_path(state_dir: &Path) -> Option<PathBuf> {
    let locks = outside_dir();
    super::make_private_dir(&locks).ok()?;
    super::check_own_dir(locks.parent()?).ok()?;
    super::keyed_file(&locks, state_dir, "lock")
}

/// The pid of the run holding the lock in `state_dir` (or its twin outside
/// the project), if one does.
pub fn holder(state_dir: &Path) -> Result<Option<u32>, StoreError> {
    let inside = state_dir.join(LOCK_FILE);
    let outside = super::keyed_file(&outside_dir(), state_dir, "lock");
    for path in std::iter::once(inside).chain(outside) {
        let mut file = match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(&path, "cannot open the lock file", e)),
        };
        match FileExt::try_lock_shared(&file) {
            Ok(()) => {
                let _ = FileExt::unlock(&file);
            }
            Err(_) => return Ok(Some(read_pid(&mut file).unwrap_or(0))),
        }
    }
    Ok(None)
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

    #[test]
    fn a_run_whose_state_folder_was_deleted_still_holds_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".mdbatch").join("task.md");
        let task = dir.path().join("task.md");
        let _first = RunLock::acquire(&state, &task).unwrap();
        // `rm -rf .mdbatch` during the run.
        std::fs::remove_dir_all(dir.path().join(".mdbatch")).unwrap();
        assert_eq!(holder(&state).unwrap(), Some(std::process::id()));
        match RunLock::acquire(&state, &task) {
            Err(RunSetupError::Locked { pid, .. }) => assert_eq!(pid, std::process::id()),
            other => panic!("a second run started: {other:?}"),
        }
    }
}
