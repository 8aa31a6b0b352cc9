//! `mdbatch completions`.

use crate::args::{ColorChoice, CompletionsArgs};

/// Runs `mdbatch completions`.
pub fn run(_args: &CompletionsArgs, _color: ColorChoice) -> u8 {
    eprintln!("mdbatch completions: not implemented yet");
    crate::exit::USAGE
}
