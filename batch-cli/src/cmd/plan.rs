//! `mdbatch plan`: what would run, in what order, and why.

use std::io::Write;
use std::path::Path;

use batch_core::exec::{SpecPlace, task_spec};
use batch_core::plan::{PlanFormat, render_to};
use batch_core::{Document, Plan, PromptTemplate};

use super::check::{print_diagnostics, read_task_file, stderr_color};
use crate::args::{ColorChoice, PlanArgs, PlanFormatArg};
use crate::exit;
use crate::output::safe;
use crate::resolve;

/// Runs `mdbatch plan`.
pub fn run(args: &PlanArgs, color: ColorChoice) -> u8 {
    keep_malloc_mmap_threshold();
    let color = stderr_color(color);
    let (path, options, bytes) = match read_task_file(args.doc.file.as_deref(), &args.doc) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // The text diagnostics quote lines from; most plans have none, and
    // decoding 5 MB costs more than the plan's lint.
    let text = || String::from_utf8_lossy(&bytes);
    let doc = match Document::parse_bytes(&bytes, &options) {
        Ok(doc) => doc,
        Err(mut e) => return cannot_plan(&path, &mut e.0, &text(), color),
    };
    if !doc.warnings.is_empty() {
        let mut warnings = doc.warnings.clone();
        print_diagnostics(&mut warnings, &text(), color);
    }
    if let Some(id) = &args.show_prompt {
        return show_prompt(&doc, &path, id, args.prompt_template.as_deref());
    }
    // The file's bytes are not needed past the parse unless the plan fails,
    // which is rare: they go before the plan is made (5 MB of a 100,000-task
    // plan's peak). A failing plan reads the file again for the lines its
    // diagnostics quote, and quotes none if the file has changed since.
    let read = fingerprint(&bytes);
    drop(bytes);
    let plan = match Plan::build(&doc, &resolve::plan_options(&args.select)) {
        Ok(plan) => plan,
        Err(mut e) => {
            let again = resolve::read_task_bytes(&path)
                .ok()
                .filter(|b| fingerprint(b) == read);
            let text = again.as_deref().map(String::from_utf8_lossy);
            return cannot_plan(&path, &mut e.0, text.as_deref().unwrap_or(""), color);
        }
    };
    let format = match args.format {
        PlanFormatArg::Text => PlanFormat::Text,
        PlanFormatArg::Json => PlanFormat::Json,
        PlanFormatArg::Dot => PlanFormat::Dot,
        PlanFormatArg::Mermaid => PlanFormat::Mermaid,
    };
    // Written as it is made, a piece of whole lines at a time: a 100,000-task
    // plan is 7 MB of text, never held whole.
    let written = {
        let mut stdout = std::io::stdout().lock();
        render_to(&doc, &plan, format, &mut |piece| match format {
            // JSON escapes control characters itself.
            PlanFormat::Json => stdout.write_all(piece.as_bytes()),
            _ => write_safe(&mut stdout, piece),
        })
        .and_then(|()| stdout.flush())
    };
    // The process ends after this: freeing a 100,000-task document and plan
    // one allocation at a time would cost more than printing them (about
    // 7% of a plan's instructions); the OS takes the memory back at exit.
    std::mem::forget((doc, plan));
    match written {
        // `mdbatch plan | head`: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the plan: {e}");
            exit::USAGE
        }
        Ok(()) => exit::SUCCESS,
    }
}

/// Writes `s` made safe for a terminal ([`safe::text`]), a block of whole
/// lines at a time: a block of printable ASCII (nearly all of a plan) is
/// written as it is, any other block goes through `safe::text`. Nothing
/// `safe::text` changes spans a line end, so this is `safe::text(s)`.
fn write_safe(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    const BLOCK: usize = 64 * 1024;
    let mut rest = s;
    while !rest.is_empty() {
        let bytes = rest.as_bytes();
        let from = BLOCK.min(bytes.len());
        // Just after a line end: always a char boundary.
        let cut = bytes[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| from + i + 1);
        let (block, tail) = rest.split_at(cut);
        if is_printable_ascii(block) {
            w.write_all(block.as_bytes())?;
        } else {
            w.write_all(safe::text(block).as_bytes())?;
        }
        rest = tail;
    }
    Ok(())
}

/// Whether `s` is all printable ASCII, newlines and tabs: text
/// [`safe::text`] would return unchanged. Folded without an early exit so
/// the compiler checks a block of bytes per instruction.
fn is_printable_ascii(s: &str) -> bool {
    s.as_bytes().chunks(64).all(|block| {
        block.iter().fold(true, |ok, &b| {
            ok & (matches!(b, b' '..=b'~' | b'\n' | b'\t'))
        })
    })
}

/// Pins glibc malloc's mmap threshold at its default (128 KiB), so that
/// every large buffer is mapped on its own and given back to the OS when
/// freed.
///
/// By default glibc raises the threshold to the size of each large block
/// freed (up to 32 MiB): after the parser frees its first big buffers, the
/// document's and the plan's large vectors come from the heap, and the
/// holes they leave when they grow or go stay resident. Pinned, the peak
/// of a 100,000-task plan (while the plan is built, the markdown parser's
/// tree already gone) is about 6 MiB lower, at the cost of about 10% more
/// page faults.
fn keep_malloc_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes a setting of the allocator, under its
    // own lock; any value is valid for M_MMAP_THRESHOLD up to 32 MiB.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// The length and a 64-bit FNV-1a hash (over 8-byte words) of `bytes`: tells
/// whether a file read again is the one parsed. About 1 ms for 5 MB.
fn fingerprint(bytes: &[u8]) -> (usize, u64) {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let w: [u8; 8] = w.try_into().expect("chunks_exact(8) gives 8 bytes");
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(PRIME);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
    }
    (bytes.len(), h)
}

/// Prints the problems that stop a plan, and says so; returns the exit code.
fn cannot_plan(path: &Path, diags: &mut [batch_core::Diagnostic], text: &str, color: bool) -> u8 {
    print_diagnostics(diags, text, color);
    eprintln!(
        "error: {} cannot be planned; `mdbatch check` lists every problem",
        path.display()
    );
    exit::USAGE
}

/// `--show-prompt ID`: the prompt a subagent would get for that task.
fn show_prompt(doc: &Document, path: &Path, id: &str, template: Option<&Path>) -> u8 {
    let Some(task) = doc.task_by_id(id) else {
        let some: Vec<&str> = doc.tasks.iter().take(5).map(|t| t.id.as_str()).collect();
        eprintln!(
            "{}",
            safe::text(&format!(
                "error: no task `{id}` in {}; its ids look like: {}",
                path.display(),
                some.join(", ")
            ))
        );
        return exit::USAGE;
    };
    let template = match template {
        None => PromptTemplate::default(),
        Some(file) => {
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!(
                        "error: {}: cannot read the prompt template: {e}",
                        file.display()
                    );
                    return exit::USAGE;
                }
            };
            match PromptTemplate::parse(&text) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {}: {e}", file.display());
                    return exit::USAGE;
                }
            }
        }
    };
    // The same spec `run` builds, so this is the prompt the agent gets.
    let spec = task_spec(doc, task, &SpecPlace::new(path), &template);
    let prompt = spec.prompt();
    // Piped, the prompt is the agent's to the byte; on a terminal, made safe.
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        print!("{}", safe::text(prompt));
    } else {
        print!("{prompt}");
    }
    if !prompt.ends_with('\n') {
        println!();
    }
    exit::SUCCESS
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn the_fingerprint_tells_a_changed_file_from_the_same_one() {
        let a = b"# T\n\n- [ ] one\n- [ ] two\n".to_vec();
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        // One byte anywhere, in a whole word or in the tail, and the length.
        for at in [0, 7, 8, a.len() - 1] {
            let mut b = a.clone();
            b[at] ^= 1;
            assert_ne!(fingerprint(&a), fingerprint(&b), "byte {at}");
        }
        let mut longer = a.clone();
        longer.push(b'\n');
        assert_ne!(fingerprint(&a), fingerprint(&longer));
    }

    #[test]
    fn printable_ascii_is_exactly_what_safe_text_leaves_alone_among_ascii() {
        for b in 0u8..0x80 {
            // Each byte alone and at every place of a 64-byte block.
            for at in [0, 31, 63, 64, 100] {
                let mut s = "x".repeat(130);
                s.replace_range(at..=at, &char::from(b).to_string());
                let unchanged = matches!(safe::text(&s), Cow::Borrowed(_));
                assert_eq!(is_printable_ascii(&s), unchanged, "byte {b:#x} at {at}");
            }
        }
        assert!(!is_printable_ascii("caf\u{e9}"));
        assert!(is_printable_ascii(""));
    }

    #[test]
    fn written_in_blocks_it_is_safe_text_of_the_whole() {
        // Long enough for several blocks, with unsafe and non-ASCII text,
        // colour codes and a line end at and around the block edges.
        let mut s = String::new();
        for i in 0..40_000 {
            match i % 997 {
                0 => s.push_str("bell \u{7} and \u{1b}[31mred\u{1b}[0m, \u{202e}rtl\n"),
                1 => s.push_str("caf\u{e9} \u{2026}\n"),
                _ => s.push_str("    12. implement-item-1  Implement item 1 of m0\n"),
            }
        }
        for text in [s.as_str(), "", "no line end", "\u{1b}]0;title\u{7}"] {
            let mut out = Vec::new();
            write_safe(&mut out, text).expect("a Vec takes every write");
            assert_eq!(String::from_utf8(out).expect("UTF-8"), safe::text(text));
        }
    }
}
