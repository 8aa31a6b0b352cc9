//! `mdbatch demo`.

use crate::args::{ColorChoice, DemoArgs};

/// Runs `mdbatch demo`.
pub fn run(_args: &DemoArgs, _color: ColorChoice) -> u8 {
    eprintln!("mdbatch demo: not implemented yet");
    crate::exit::USAGE
}
