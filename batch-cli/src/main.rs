//! The `mdbatch` binary: thin glue over `batch-core`.

#![allow(dead_code)] // skeleton: removed by the lead once every command is filled in

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
