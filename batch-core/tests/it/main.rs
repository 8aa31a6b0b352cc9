//! batch-core integration tests: one binary, one module per capability.

#[macro_use]
mod agent_cli;
mod command;
mod corpus;
mod exec;
mod lint;
mod mock_api;
mod outline;
mod parse;
mod parse_props;
mod plan;
mod presets;
mod real_cli;
mod standin;
mod store;
