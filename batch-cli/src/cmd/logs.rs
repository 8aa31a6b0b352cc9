//! `mdbatch logs`.

use crate::args::{ColorChoice, LogsArgs};

/// Runs `mdbatch logs`.
pub fn run(_args: &LogsArgs, _color: ColorChoice) -> u8 {
    eprintln!("mdbatch logs: not implemented yet");
    crate::exit::USAGE
}
