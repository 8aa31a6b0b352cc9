//! `mdbatch check`: every problem in a task file at once, compiler-style.
//!
//! Also home of the diagnostic printing `plan` shares: diagnostics go to
//! stderr, coloured only when stderr is a terminal and neither `NO_COLOR` nor
//! `--color never` says otherwise.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use batch_core::plan::{attach_source_lines, check, check_document};
use batch_core::{Diagnostic, Document, ParseOptions, Plan, PlanOptions};

use crate::args::{CheckArgs, ColorChoice};
use crate::exit;
use crate::resolve;

/// Whether to colour stderr: a pure function of the choice, whether stderr is
/// a terminal, and whether `NO_COLOR` is set (to anything but the empty string).
pub(crate) fn use_color(choice: ColorChoice, stderr_is_terminal: bool, no_color: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => stderr_is_terminal && !no_color,
    }
}

/// [`use_color`] for this process.
pub(crate) fn stderr_color(choice: ColorChoice) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    use_color(choice, std::io::stderr().is_terminal(), no_color)
}

/// One diagnostic, compiler-style, its label coloured when asked.
pub(crate) fn format_diagnostic(d: &Diagnostic, color: bool) -> String {
    let text = d.to_string();
    if !color {
        return text;
    }
    let (label, style) = if d.is_error() {
        ("error:", console::Style::new().red().bold())
    } else {
        ("warning:", console::Style::new().yellow().bold())
    };
    match text.strip_prefix(label) {
        Some(rest) => format!("{}{rest}", style.force_styling(true).apply_to(label)),
        None => text,
    }
}

/// Prints diagnostics to stderr (source lines filled in from `text`).
pub(crate) fn print_diagnostics(diags: &mut [Diagnostic], text: &str, color: bool) {
    attach_source_lines(diags, text);
    for d in diags.iter() {
        eprintln!("{}", format_diagnostic(d, color));
    }
}

/// The file to read, its parse options, and its bytes; or the exit code after
/// saying what went wrong.
pub(crate) fn read_task_file(
    file: Option<&Path>,
    doc: &crate::args::DocArgs,
) -> Result<(PathBuf, ParseOptions, Vec<u8>), u8> {
    let path = resolve::task_file(file).map_err(|e| {
        eprintln!("error: {e:#}");
        exit::USAGE
    })?;
    let options = resolve::parse_options(&path, doc).map_err(|e| {
        eprintln!("error: {e:#}");
        exit::USAGE
    })?;
    let bytes = std::fs::read(&path).map_err(|e| {
        eprintln!("error: {}: cannot read the task file: {e}", path.display());
        exit::USAGE
    })?;
    Ok((path, options, bytes))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Every problem `check` finds in a file: parse errors and warnings, plan
/// errors, lints; with the counts of tasks and waves when it parsed.
pub(crate) fn problems(
    bytes: &[u8],
    options: &ParseOptions,
) -> (Vec<Diagnostic>, Option<(usize, usize)>) {
    match Document::parse_bytes(bytes, options) {
        Err(d) => (d.0, None),
        Ok(doc) => {
            let mut diags = doc.warnings.clone();
            match Plan::build(&doc, &PlanOptions::default()) {
                Ok(plan) => diags.extend(check(&doc, &plan)),
                Err(e) => {
                    diags.extend(e.0);
                    diags.extend(check_document(&doc));
                }
            }
            diags.sort_by_key(|d| (d.line, d.col));
            (diags, Some((doc.tasks.len(), doc.waves.len())))
        }
    }
}

/// Runs `mdbatch check`.
pub fn run(args: &CheckArgs, color: ColorChoice) -> u8 {
    let (path, options, bytes) = match read_task_file(args.doc.file.as_deref(), &args.doc) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let text = String::from_utf8_lossy(&bytes);
    let (mut diags, counts) = problems(&bytes, &options);
    print_diagnostics(&mut diags, &text, stderr_color(color));
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    let mut summary = format!("{}: ", path.display());
    if let Some((tasks, waves)) = counts {
        summary.push_str(&format!(
            "{}, {}, ",
            plural(tasks, "task", "tasks"),
            plural(waves, "wave", "waves")
        ));
    }
    summary.push_str(&format!(
        "{}, {}",
        plural(errors, "error", "errors"),
        plural(warnings, "warning", "warnings")
    ));
    if errors > 0 {
        eprintln!("{summary}");
        exit::TASKS_FAILED
    } else {
        println!("{summary}");
        exit::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color_unless_forced() {
        for term in [false, true] {
            for no_color in [false, true] {
                assert!(use_color(ColorChoice::Always, term, no_color));
                assert!(!use_color(ColorChoice::Never, term, no_color));
                assert_eq!(
                    use_color(ColorChoice::Auto, term, no_color),
                    term && !no_color
                );
            }
        }
    }

    #[test]
    fn coloured_diagnostics_colour_only_the_label() {
        let d = Diagnostic::warning(3, 1, "task `x` is empty");
        let plain = format_diagnostic(&d, false);
        assert!(plain.starts_with("warning: task `x` is empty\n"));
        let coloured = format_diagnostic(&d, true);
        assert!(coloured.starts_with("\u{1b}["));
        assert!(
            coloured.contains("warning:\u{1b}[0m task `x` is empty\n"),
            "{coloured:?}"
        );
    }
}
