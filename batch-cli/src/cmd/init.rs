//! `mdbatch init`.

use crate::args::{ColorChoice, InitArgs};

/// Runs `mdbatch init`.
pub fn run(_args: &InitArgs, _color: ColorChoice) -> u8 {
    eprintln!("mdbatch init: not implemented yet");
    crate::exit::USAGE
}
