//! `mdbatch doctor`: is each agent CLI installed, which version, tested?

use batch_core::runner::presets::PresetKind;
use batch_core::runner::presets::version::{ProbeReport, VersionStatus, probe};

use crate::args::{ColorChoice, DoctorArgs};
use crate::exit;

/// Runs `mdbatch doctor`.
///
/// Exit 0 when at least one agent CLI is usable and none of the installed
/// ones is untested or lacks a flag its preset passes; 1 otherwise.
pub fn run(_args: &DoctorArgs, _color: ColorChoice) -> u8 {
    let reports: Vec<ProbeReport> = [PresetKind::Claude, PresetKind::Codex, PresetKind::Gemini]
        .into_iter()
        .map(|k| probe(k, None))
        .collect();
    println!("agent CLIs (mdbatch run --runner NAME):");
    for r in &reports {
        println!("  {}", r.line());
    }
    println!("  shell   built in (runs tasks written as one `code span` with sh -c)");
    println!("  demo    built in (the stand-in agent of `mdbatch demo`)");
    let usable = reports.iter().any(ProbeReport::ok);
    let troubled = reports
        .iter()
        .any(|r| r.status != VersionStatus::Missing && !r.ok());
    if !usable {
        println!(
            "\nno agent CLI is ready: install one (see above), or use --cmd 'YOUR-AGENT {{prompt}}'"
        );
    }
    if usable && !troubled {
        exit::SUCCESS
    } else {
        exit::TASKS_FAILED
    }
}
