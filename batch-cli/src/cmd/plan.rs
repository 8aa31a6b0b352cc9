//! `mdbatch plan`: what would run, in what order, and why.

use std::path::Path;

use batch_core::exec::{SpecPlace, task_spec};
use batch_core::plan::{PlanFormat, render};
use batch_core::{Document, Plan, PromptTemplate};

use super::check::{print_diagnostics, read_task_file, stderr_color};
use crate::args::{ColorChoice, PlanArgs, PlanFormatArg};
use crate::exit;
use crate::output::safe;
use crate::resolve;

/// Runs `mdbatch plan`.
pub fn run(args: &PlanArgs, color: ColorChoice) -> u8 {
    let color = stderr_color(color);
    let (path, options, bytes) = match read_task_file(args.doc.file.as_deref(), &args.doc) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let text = String::from_utf8_lossy(&bytes);
    let doc = match Document::parse_bytes(&bytes, &options) {
        Ok(doc) => doc,
        Err(mut e) => return cannot_plan(&path, &mut e.0, &text, color),
    };
    let mut warnings = doc.warnings.clone();
    print_diagnostics(&mut warnings, &text, color);
    if let Some(id) = &args.show_prompt {
        return show_prompt(&doc, &path, id, args.prompt_template.as_deref());
    }
    let plan = match Plan::build(&doc, &resolve::plan_options(&args.select)) {
        Ok(plan) => plan,
        Err(mut e) => return cannot_plan(&path, &mut e.0, &text, color),
    };
    let format = match args.format {
        PlanFormatArg::Text => PlanFormat::Text,
        PlanFormatArg::Json => PlanFormat::Json,
        PlanFormatArg::Dot => PlanFormat::Dot,
        PlanFormatArg::Mermaid => PlanFormat::Mermaid,
    };
    let out = render(&doc, &plan, format);
    match format {
        // JSON escapes control characters itself.
        PlanFormat::Json => print!("{out}"),
        _ => print!("{}", safe::text(&out)),
    }
    // The process ends after this: freeing a 100,000-task document and plan
    // one allocation at a time would cost more than printing them (about
    // 7% of a plan's instructions); the OS takes the memory back at exit.
    std::mem::forget((doc, plan, out));
    exit::SUCCESS
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
