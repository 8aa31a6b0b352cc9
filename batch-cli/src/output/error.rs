//! How an error that ends a command is printed: task-file diagnostics
//! compiler-style, everything else as `error: …` with its causes. The
//! library's errors name settings; here they get the flags that set them.

use batch_core::plan::attach_source_lines;
use batch_core::{
    CommandTemplateError, Diagnostic, Diagnostics, OptionsError, ReadError, RunSetupError,
    RunnerSetupError,
};

/// The text `main` prints for `e` (no trailing newline). Task-file
/// diagnostics get their source lines (read from the file they name) and,
/// when `color`, a coloured label, through `format`.
pub fn render(
    e: &anyhow::Error,
    color: bool,
    format: impl Fn(&Diagnostic, bool) -> String,
) -> String {
    if let Some(d) = diagnostics(e) {
        let mut diags = d.0.clone();
        if let Some(path) = diags.iter().find_map(|d| d.path.clone())
            && let Ok(bytes) = crate::resolve::read_task_bytes(&path)
        {
            attach_source_lines(&mut diags, &String::from_utf8_lossy(&bytes));
        }
        for d in &mut diags {
            super::safe::diagnostic(d);
        }
        return diags
            .iter()
            .map(|d| format(d, color))
            .collect::<Vec<_>>()
            .join("\n");
    }
    // Messages quote ids, task text and agent output.
    if let Some(text) = e.downcast_ref::<RunSetupError>().and_then(in_flags) {
        return super::safe::text(&format!("error: {text}")).into_owned();
    }
    super::safe::text(&format!("error: {e:#}")).into_owned()
}

fn diagnostics(e: &anyhow::Error) -> Option<&Diagnostics> {
    e.downcast_ref::<Diagnostics>()
        .or_else(|| {
            e.downcast_ref::<ReadError>()
                .and_then(ReadError::diagnostics)
        })
        .or_else(|| match e.downcast_ref::<RunSetupError>() {
            Some(RunSetupError::Invalid(d)) => Some(d),
            _ => None,
        })
}

/// A setup error in the CLI's terms, when a flag is the cause.
fn in_flags(e: &RunSetupError) -> Option<String> {
    Some(match e {
        RunSetupError::Options(OptionsError::ZeroJobs) => "--jobs must be at least 1".into(),
        RunSetupError::Options(OptionsError::ZeroTimeout) => {
            "--timeout must be more than 0 (leave it out for no timeout)".into()
        }
        RunSetupError::Options(OptionsError::NoRunner) => {
            "choose how tasks run: --runner claude|codex|gemini|shell, or --cmd 'TEMPLATE'".into()
        }
        RunSetupError::Runner(RunnerSetupError::Command(t)) => command_template(t),
        _ => return None,
    })
}

/// A `--cmd` template error.
pub fn command_template(e: &CommandTemplateError) -> String {
    match e {
        CommandTemplateError::Empty => {
            "--cmd is empty; give a command such as `my-agent -- {prompt}`".into()
        }
        other => format!("--cmd: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(d: &Diagnostic, _color: bool) -> String {
        d.to_string()
    }

    #[test]
    fn option_errors_are_worded_with_the_flags_that_set_them() {
        let e = anyhow::Error::from(RunSetupError::from(OptionsError::ZeroJobs));
        assert_eq!(render(&e, false, plain), "error: --jobs must be at least 1");
        let e = anyhow::Error::from(RunSetupError::from(RunnerSetupError::from(
            CommandTemplateError::Empty,
        )));
        assert!(
            render(&e, false, plain).starts_with("error: --cmd is empty"),
            "{}",
            render(&e, false, plain)
        );
    }

    #[test]
    fn diagnostics_print_compiler_style_without_a_second_error_prefix() {
        let d = batch_core::Document::parse(
            "<!-- paralel: false -->\n- [ ] a\n",
            &batch_core::ParseOptions::default(),
        )
        .unwrap_err();
        let text = render(&anyhow::Error::from(ReadError::from(d)), false, plain);
        assert!(text.starts_with("error: "), "{text}");
        assert!(!text.starts_with("error: error"), "{text}");
        assert!(text.contains("did you mean `parallel`"), "{text}");
    }
}
