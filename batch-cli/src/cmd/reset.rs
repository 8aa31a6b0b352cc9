//! `mdbatch reset`.

use crate::args::{ColorChoice, ResetArgs};

/// Runs `mdbatch reset`.
pub fn run(_args: &ResetArgs, _color: ColorChoice) -> u8 {
    eprintln!("mdbatch reset: not implemented yet");
    crate::exit::USAGE
}
