//! batch-core integration tests: one binary, one module per capability.

mod command;
mod corpus;
mod mock_api;
mod outline;
mod parse;
mod parse_props;
mod real_cli;
mod store;
