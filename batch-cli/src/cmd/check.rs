//! `mdbatch check`.

use crate::args::{CheckArgs, ColorChoice};

/// Runs `mdbatch check`.
pub fn run(_args: &CheckArgs, _color: ColorChoice) -> u8 {
    eprintln!("mdbatch check: not implemented yet");
    crate::exit::USAGE
}
