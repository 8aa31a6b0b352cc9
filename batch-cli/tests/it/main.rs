//! batch-cli integration tests: the `mdbatch` binary, one module per capability.

mod demo;
mod init;
