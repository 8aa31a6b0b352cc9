//! batch-core integration tests: one binary, one module per capability.

mod command;
mod corpus;
mod outline;
mod parse;
mod parse_props;
mod store;
