//! batch-cli integration tests: one binary, one module per capability.

mod run_e2e;
