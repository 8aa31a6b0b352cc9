//! One module per subcommand; each returns the process exit code.

mod check;
mod clean;
mod completions;
mod demo;
mod doctor;
mod init;
mod logs;
mod plan;
mod reset;
mod run;
mod status;

use crate::args::{Cli, Command};

/// Runs the chosen subcommand and returns its exit code.
pub fn dispatch(cli: Cli) -> u8 {
    let color = cli.color;
    match cli.command {
        Command::Plan(a) => plan::run(&a, color),
        Command::Run(a) => run::run(&a, color),
        Command::Status(a) => status::run(&a, color),
        Command::Check(a) => check::run(&a, color),
        Command::Logs(a) => logs::run(&a, color),
        Command::Reset(a) => reset::run(&a, color),
        Command::Clean(a) => clean::run(&a, color),
        Command::Init(a) => init::run(&a, color),
        Command::Doctor(a) => doctor::run(&a, color),
        Command::Demo(a) => demo::run(&a, color),
        Command::Completions(a) => completions::run(&a, color),
    }
}
