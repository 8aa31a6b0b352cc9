//! The `mdbatch` binary: thin glue over `batch-core`.

mod args;
mod cmd;
mod exit;
mod output;
mod resolve;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = args::Cli::parse();
    let code = cmd::dispatch(cli);
    std::process::ExitCode::from(code)
}
