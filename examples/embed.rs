//! Embedding batch-core in a Rust program.
fn main() {}
