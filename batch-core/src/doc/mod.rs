//! The task file: markdown in, a [`Document`] out.
//!
//! Architecture: `source` strips the BOM and front matter and maps offsets to
//! lines; `scan` makes one pass over pulldown-cmark's offset iterator and
//! builds sections and tasks; `hints` parses `<!-- key: value -->` comments;
//! `dialect` detects waves / spec-kit / kiro; `ids` assigns stable ids.
//! This module knows pulldown-cmark and nothing else of the crate.

mod dialect;
mod hints;
mod ids;
mod model;
mod scan;
mod source;

pub use model::*;

use crate::error::{Diagnostic, Diagnostics};

impl Document {
    /// Parses task-file text.
    ///
    /// Returns every error found (not just the first) when the file cannot be
    /// used; warnings land in [`Document::warnings`].
    pub fn parse(text: &str, options: &ParseOptions) -> Result<Document, Diagnostics> {
        scan::parse(text, options)
    }

    /// Parses raw bytes, reporting invalid UTF-8 at its line and column.
    pub fn parse_bytes(bytes: &[u8], options: &ParseOptions) -> Result<Document, Diagnostics> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::parse(text, options),
            Err(e) => {
                let good = &bytes[..e.valid_up_to()];
                let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
                let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
                let col = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
                Err(Diagnostics(vec![
                    Diagnostic::error(line, col, "the file is not valid UTF-8")
                        .with_help("save the task file as UTF-8")
                        .with_path(options.path.clone()),
                ]))
            }
        }
    }

    /// Reads and parses a file.
    pub fn read(path: &std::path::Path, options: &ParseOptions) -> Result<Document, Diagnostics> {
        let mut options = options.clone();
        if options.path.is_none() {
            options.path = Some(path.to_path_buf());
        }
        match std::fs::read(path) {
            Ok(bytes) => Self::parse_bytes(&bytes, &options),
            Err(e) => Err(Diagnostics(vec![
                Diagnostic::error(1, 1, format!("cannot read the file: {e}"))
                    .with_path(Some(path.to_path_buf())),
            ])),
        }
    }
}
