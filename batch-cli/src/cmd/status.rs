//! `mdbatch status`.

use crate::args::{ColorChoice, StatusArgs};

/// Runs `mdbatch status`.
pub fn run(_args: &StatusArgs, _color: ColorChoice) -> u8 {
    eprintln!("mdbatch status: not implemented yet");
    crate::exit::USAGE
}
