//! The task file: markdown in, a [`Document`] out.
//!
//! # Architecture
//!
//! `source` strips the BOM, blanks YAML front matter (keeping every byte
//! offset valid) and maps offsets to `line:col`; `scan` makes one pass over
//! pulldown-cmark's offset iterator (explicit stacks, no recursion, so deep
//! nesting cannot overflow the stack) and builds sections and tasks, then
//! assembles waves, groups and ids; `hints` reads `<!-- key: value -->`
//! comments; `dialect` reads task prefixes (`T012 [P] [US1]`, `1.2 (P)`,
//! dependency text) and detects waves / spec-kit / kiro; `ids` assigns
//! stable ids and module names. This module knows pulldown-cmark and nothing
//! else of the crate. Every problem is collected: [`Document::parse`] returns
//! all errors at once, each at `path:line:col` with its source line.
//!
//! # Tasks
//!
//! A task is a list item with a task-list marker (`- [ ]`, `* [x]`, `1. [X]`,
//! also inside blockquotes), found by pulldown-cmark: boxes in fenced or
//! indented code, HTML blocks and comments are not tasks. Kiro's optional
//! `- [ ]* 1.2 …` (not a task to CommonMark) is recognised from the source.
//! [`Task::marker`] is the byte range of the three bytes `[ ]` in the original
//! file (BOM included), checked against the source, so checking the box is a
//! one-byte write at `marker.start + 1`. [`Task::text`] is the first paragraph
//! (id prefix and hint comments removed); [`Task::details`] the rest of the
//! item without child tasks. Parents are found by nesting and, in kiro files,
//! by number (`1.` then `1.1` at the same indentation) when `1.` has no
//! work of its own: `- [ ] 2. Implement AuthService` with bullets saying how
//! is a task, and the `2.1` after it is its sibling. [`Task::list_step`]
//! records a task's place in a numbered list (`1. [ ]`, or boxes under
//! `2. **Short-term**`), an order the plan keeps.
//!
//! # Sections, waves, groups
//!
//! Headings are sections, identified by position (titles repeat). The wave
//! level is the shallowest heading level with two or more headings that have
//! tasks beneath them (else the shallowest with one), unless
//! [`ParseOptions::wave_level`] or a `wave-level:` hint says otherwise.
//! Wave-level headings with tasks are waves; headings one level deeper are
//! groups; tasks directly under a wave heading form its lead group. Without
//! any heading above a task the file is one wave, `(document)`, with one
//! group. Open tasks directly under the title, before the first wave
//! heading, form a first wave of their own; other tasks before the first
//! wave heading belong to no wave. The preamble is the text before the
//! first wave heading, those tasks left out. A one-line bold paragraph that
//! names a phase (`**Phase 1: Setup**`, `**Week 2**`, `**阶段一**`) is a
//! section one level below the heading above it ([`Section::bold_paragraph`]);
//! a heading's own box (`## [ ] Phase 1`) is dropped from its title.
//! Headings that name checks rather than work ("Success criteria",
//! "Definition of done", "Verification checklist", `验证清单`, `検証`) are
//! marked [`Section::not_work`].
//!
//! # Hints: where a hint may stand
//!
//! | placement | example | applies to |
//! | --- | --- | --- |
//! | before the first heading, or in the preamble outside a list (e.g. under the title) | `<!-- jobs: 2; cross-wave: true -->` | the document ([`Document::hints`]) |
//! | directly under a wave or group heading (only other comments between) | `### Backend` then `<!-- parallel: false -->` | that section ([`Section::hints`]); a group's `parallel`, `module`, `after` |
//! | indented inside a task's list item, on its own line or under a detail bullet | `- [ ] build` then `  <!-- id: build -->` | that task ([`Task::hints`]) |
//! | inline after the task text | `- [ ] build <!-- id: build -->` | that task |
//!
//! Keys: `parallel` (alias `parallelizable`; `true`, `false` or a number),
//! `module`, `id`, `after`, `resource`, `verify`, `optional`, `skip`,
//! `retries`, `timeout` (`90s`, `30m`), and for the document only
//! `cross-wave`, `jobs`, `wave-level`. A `;` not followed by `key:` stays in
//! the value (`verify: cargo fmt --check; cargo test`).
//!
//! A comment is read as a hint when every part has the shape `key: value`
//! and a key is known or close to one (`paralel`), or several lowercase
//! pairs are given. Such a comment with an unknown key, a bad value, a key
//! that means nothing where it stands, or standing anywhere else (between
//! paragraphs of a wave; unindented after a list item, which ends the list)
//! is an error naming the key and the nearest known key. Other comments
//! (`<!-- Note: … -->`, `<!-- markdownlint-disable -->`) are left alone.
//!
//! # Ids
//!
//! An `id:` hint; else a spec-kit id (`T001`); else a kiro number (`1.2`);
//! else a slug of the section path from the wave heading down (normalised:
//! `Setup ✅ COMPLETE` and `Phase 1: Setup` both give `setup`) and the text's
//! first line, e.g. `setup/install-deps`. Derived ids that collide get `-2`,
//! `-3`; two `id:` hints with the same id are an error.
//!
//! # Dialects
//!
//! spec-kit when at least half the tasks carry `T001`-style ids; kiro when at
//! least half are numbered (`1.`, `1.1`), or the file has `_Requirements:`
//! lines, or most level-2 headings above tasks are numbered (`## 1.`,
//! `## 1)`); else waves. [`Document::dialect_reason`] says which signal
//! decided; [`ParseOptions::dialect`] overrides. Dependency text (`(depends
//! on T012, T013)`, ranges `T012-T015`, `_Depends: 1.2_`, `Dependencies:
//! Task 11`) fills [`Task::depends_on`].
//!
//! # Dependencies in prose
//!
//! Outside the tasks, `prose` reads what authors write about order, into
//! [`Document::prose_deps`], each with its line: `**Dependencies:** Task 9`
//! (or `None`) under a heading; the numbered items or the arrow chain
//! (`Phase 1 → Phase 2`) of an "Implementation order" / "Execution order"
//! section; and lines that open with what waits (`User Story 6: can start
//! after US1, US4`, `Task 2.1 depends on Task 1.3`, `US1 must complete
//! before US2`). Only reference-shaped words count (`T012`, `Task 11`,
//! `Phase 2`, `US3`, `2.1`), so ordinary prose adds nothing.

mod dialect;
pub(crate) mod fxhash;
mod hints;
mod ids;
mod model;
mod prose;
mod scan;
mod source;

pub use model::*;

use crate::error::{Diagnostic, Diagnostics, ReadError};

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
                let line_end = bytes[line_start..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| line_start + p)
                    .min(line_start + 100_000);
                let shown = String::from_utf8_lossy(&bytes[line_start..line_end]);
                Err(Diagnostics(vec![
                    Diagnostic::error(line, col, "the file is not valid UTF-8")
                        .with_help("save the task file as UTF-8")
                        .with_source_line(shown.trim_end_matches('\r'))
                        .with_path(options.path.clone()),
                ]))
            }
        }
    }

    /// Parses raw bytes and keeps going past errors: the document (with
    /// whatever is in error left out: a bad hint ignored, a duplicate id
    /// renamed) and every error and warning, so `mdbatch check` can plan and
    /// lint the file too and list all its problems at once. The document is
    /// `None` only when the bytes are not UTF-8. A document that comes with
    /// errors is for reporting, never for running.
    pub fn parse_bytes_keep_going(
        bytes: &[u8],
        options: &ParseOptions,
    ) -> (Option<Document>, Vec<Diagnostic>) {
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                let (doc, mut diags) = scan::parse_keep_going(text, options);
                diags.extend(doc.warnings.iter().cloned());
                (Some(doc), diags)
            }
            Err(_) => match Self::parse_bytes(bytes, options) {
                Ok(doc) => {
                    let warnings = doc.warnings.clone();
                    (Some(doc), warnings)
                }
                Err(e) => (None, e.0),
            },
        }
    }

    /// Reads and parses a file.
    ///
    /// # Errors
    ///
    /// [`ReadError::Io`] when the file cannot be read (match
    /// [`ReadError::io_kind`] against `NotFound`), [`ReadError::Invalid`]
    /// with every problem when it does not parse.
    pub fn read(path: &std::path::Path, options: &ParseOptions) -> Result<Document, ReadError> {
        let mut options = options.clone();
        if options.path.is_none() {
            options.path = Some(path.to_path_buf());
        }
        match std::fs::read(path) {
            Ok(bytes) => Ok(Self::parse_bytes(&bytes, &options)?),
            Err(e) => Err(ReadError::Io {
                path: path.to_path_buf(),
                source: std::sync::Arc::new(e),
            }),
        }
    }
}
