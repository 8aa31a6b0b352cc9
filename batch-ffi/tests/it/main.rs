//! Integration tests of the C interface: one binary, one module per capability.

mod abi;
mod doc_plan;
mod examples;
mod header;
mod run;
mod support;
