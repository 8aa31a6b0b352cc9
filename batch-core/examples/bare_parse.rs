//! The floor for `mdbatch plan` as a whole process: read a markdown file and
//! run pulldown-cmark over it with the task-file parser's options, consuming
//! every event of the offset iterator, and print the number of task-list
//! markers. `benches/compare.py` times `mdbatch plan` against this.
//!
//! Run: `cargo run --release -p batch-core --example bare_parse -- FILE`.

use pulldown_cmark::{Event, Options, Parser};

fn main() -> std::process::ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: bare_parse FILE");
        return std::process::ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{}: {e}", std::path::Path::new(&path).display());
            return std::process::ExitCode::from(1);
        }
    };
    let options = Options::ENABLE_TASKLISTS
        | Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES;
    let markers = Parser::new_ext(&text, options)
        .into_offset_iter()
        .filter(|(event, _)| matches!(event, Event::TaskListMarker(_)))
        .count();
    println!("{markers} task markers");
    std::process::ExitCode::SUCCESS
}
