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
use crate::output::safe;
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
    for d in diags.iter_mut() {
        // Messages quote ids and task text; the source line is the file's.
        safe::diagnostic(d);
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
        eprintln!("error: {}", crate::output::safe::text(&format!("{e:#}")));
        exit::USAGE
    })?;
    let options = resolve::parse_options(&path, doc).map_err(|e| {
        eprintln!("error: {}", crate::output::safe::text(&format!("{e:#}")));
        exit::USAGE
    })?;
    let bytes = resolve::read_task_bytes(&path).map_err(|e| {
        eprintln!("error: {}: cannot read the task file: {e}", path.display());
        exit::USAGE
    })?;
    Ok((path, options, bytes))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What `check` counts, as `plan` does: tasks to run, the waves they fill,
/// and what is not run.
pub(crate) struct Counts {
    pub(crate) to_run: usize,
    pub(crate) waves: usize,
    pub(crate) done: usize,
    pub(crate) not_run: usize,
}

/// Every problem `check` finds in a file, all at once, as a compiler lists
/// them: parse errors and warnings, plan errors (an unknown `after:`
/// target, a cycle) even when hints have errors too, and lints; with the
/// plan's counts when it could be made.
pub(crate) fn problems(bytes: &[u8], options: &ParseOptions) -> (Vec<Diagnostic>, Option<Counts>) {
    let (doc, mut diags) = Document::parse_bytes_keep_going(bytes, options);
    let mut counts = None;
    if let Some(doc) = doc {
        match Plan::build(&doc, &PlanOptions::default()) {
            Ok(plan) => {
                diags.extend(check(&doc, &plan));
                let waves: std::collections::BTreeSet<usize> =
                    plan.nodes.iter().map(|n| n.wave).collect();
                let done = plan.excluded.iter().filter(|e| e.reason == "done").count();
                let parents = plan
                    .excluded
                    .iter()
                    .filter(|e| e.reason == "parent")
                    .count();
                counts = Some(Counts {
                    to_run: plan.nodes.len(),
                    waves: waves.len(),
                    done,
                    not_run: plan.excluded.len() - done - parents,
                });
            }
            Err(e) => {
                diags.extend(e.0);
                diags.extend(check_document(&doc));
            }
        }
    }
    diags.sort_by_key(|d| (d.line, d.col));
    (diags, counts)
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
    if let Some(c) = counts {
        summary.push_str(&format!(
            "{} to run in {}",
            plural(c.to_run, "task", "tasks"),
            plural(c.waves, "wave", "waves")
        ));
        if c.done > 0 {
            summary.push_str(&format!(", {} done", c.done));
        }
        if c.not_run > 0 {
            summary.push_str(&format!(", {} not run (see `mdbatch plan`)", c.not_run));
        }
        summary.push_str("; ");
    }
    summary.push_str(&format!(
        "{}, {}",
        plural(errors, "error", "errors"),
        plural(warnings, "warning", "warnings")
    ));
    let summary = safe::text(&summary);
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
