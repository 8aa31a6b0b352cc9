//! `mdbatch doctor`.

use crate::args::{ColorChoice, DoctorArgs};

/// Runs `mdbatch doctor`.
pub fn run(_args: &DoctorArgs, _color: ColorChoice) -> u8 {
    eprintln!("mdbatch doctor: not implemented yet");
    crate::exit::USAGE
}
