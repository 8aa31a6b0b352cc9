//! `mdbatch plan`.

use crate::args::{ColorChoice, PlanArgs};

/// Runs `mdbatch plan`.
pub fn run(_args: &PlanArgs, _color: ColorChoice) -> u8 {
    eprintln!("mdbatch plan: not implemented yet");
    crate::exit::USAGE
}
