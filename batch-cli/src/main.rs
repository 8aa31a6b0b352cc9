//! The `mdbatch` binary.

fn main() {
    println!("mdbatch {}", env!("CARGO_PKG_VERSION"));
}
