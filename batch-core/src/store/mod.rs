//! mdbatch's state: the task file write-back, the journal, the lock.

pub mod journal;
pub mod lock;
pub mod taskfile;
