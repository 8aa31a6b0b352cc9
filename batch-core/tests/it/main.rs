//! batch-core integration tests: one binary, one module per capability.

mod command;
mod corpus;
mod lint;
mod outline;
mod parse;
mod parse_props;
mod plan;
mod store;
