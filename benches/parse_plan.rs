//! Parse + plan benchmark.
fn main() {}
