//! One module per subcommand; each returns the process exit code, or an
//! error that `main` prints (in one place).

mod check;
mod clean;
mod completions;
mod demo;
pub mod detach;
mod doctor;
mod init;
mod logs;
mod mcp;
mod plan;
mod reset;
mod run;
mod status;
mod stop;
mod wait;

use crate::args::{Cli, ColorChoice, Command};

/// Prints the error that ended a command: the one place errors are printed.
pub fn report_error(e: &anyhow::Error, color: ColorChoice) {
    let text = crate::output::error::render(e, check::stderr_color(color), |d, color| {
        check::format_diagnostic(d, color)
    });
    eprintln!("{text}");
}

/// Runs the chosen subcommand and returns its exit code; an error is for
/// `main` to print.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let color = cli.color;
    match cli.command {
        // `plan` and `check` print their own diagnostics (with the source
        // line and colour) and return a code.
        Command::Plan(a) => Ok(plan::run(&a, color)),
        Command::Check(a) => Ok(check::run(&a, color)),
        Command::Run(a) => run::run(&a, color),
        Command::Status(a) => status::run(&a, color),
        Command::Logs(a) => logs::run(&a, color),
        Command::Reset(a) => reset::run(&a, color),
        Command::Clean(a) => Ok(clean::run(&a, color)),
        Command::Init(a) => init::run(&a, color),
        Command::Doctor(a) => Ok(doctor::run(&a, color)),
        Command::Demo(a) => demo::run(&a, color),
        Command::Wait(a) => wait::run(&a, color),
        Command::Stop(a) => stop::run(&a, color),
        Command::Mcp(a) => mcp::run(&a),
        Command::Completions(a) => Ok(completions::run(&a, color)),
    }
}
