//! `mdbatch doctor`: is each agent CLI installed, which version, tested?

use batch_core::runner::presets::PresetKind;
use batch_core::runner::presets::version::{ProbeReport, VersionStatus, probe};

use crate::args::{ColorChoice, DoctorArgs};
use crate::exit;

/// Runs `mdbatch doctor`.
///
/// Exit 0 when at least one agent CLI is usable and none of the installed
/// ones is untested or lacks a flag its preset passes; 1 otherwise.
pub fn run(args: &DoctorArgs, _color: ColorChoice) -> u8 {
    let cluster_ok = match args.launcher.as_deref() {
        Some("slurm") => {
            let partition = partition_of(&args.launcher_args);
            match batch_core::runner::slurm::doctor(partition.as_deref()) {
                Ok(report) => {
                    println!(
                        "launcher (mdbatch run --launcher slurm):\n  slurm   {}\n",
                        report.line()
                    );
                    true
                }
                Err(e) => {
                    println!("launcher (mdbatch run --launcher slurm):\n  {e}\n");
                    false
                }
            }
        }
        _ => true,
    };
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
            "\nno agent CLI is ready: install one (see above), or use --cmd 'YOUR-AGENT -- {{prompt}}'"
        );
    }
    if usable && !troubled && cluster_ok {
        exit::SUCCESS
    } else {
        exit::TASKS_FAILED
    }
}

/// The partition named in `srun` arguments (`--partition=P`, `-p P`, `-pP`).
fn partition_of(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(p) = a.strip_prefix("--partition=") {
            return Some(p.to_string());
        }
        if a == "-p" || a == "--partition" {
            return it.next().cloned();
        }
        if let Some(p) = a.strip_prefix("-p").filter(|p| !p.is_empty()) {
            return Some(p.to_string());
        }
    }
    None
}
