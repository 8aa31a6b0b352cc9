//! `mdbatch run`.

use crate::args::{ColorChoice, RunArgs};

/// Runs `mdbatch run`.
pub fn run(_args: &RunArgs, _color: ColorChoice) -> u8 {
    eprintln!("mdbatch run: not implemented yet");
    crate::exit::USAGE
}
