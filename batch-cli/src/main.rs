//! The `mdbatch` binary: thin glue over `batch-core`.

mod args;
mod cmd;
mod exit;
mod output;
mod resolve;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = args::Cli::parse();
    let color = cli.color;
    let code = match cmd::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // The one place errors are printed (as ripgrep does).
            cmd::report_error(&e, color);
            exit::USAGE
        }
    };
    std::process::ExitCode::from(code)
}
