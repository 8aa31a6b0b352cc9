//! The `mdbatch` binary: thin glue over `batch-core`.

mod args;
mod cmd;
mod exit;
mod output;
mod resolve;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = args::Cli::parse();
    let code = match cmd::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // The one place errors are printed (as ripgrep does).
            eprintln!("{}", output::error::render(&e));
            exit::USAGE
        }
    };
    std::process::ExitCode::from(code)
}
