//! The integration tests of batch-core: one binary, one module per capability.

mod corpus;
mod parse;
mod parse_props;
