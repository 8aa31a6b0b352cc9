//! batch-cli integration tests: one binary, one module per capability.
//! Each test runs the real `mdbatch` binary in a temporary folder.

mod plan_cli;
