//! `mdbatch run`: resolve the arguments, build the runner, drive the executor,
//! report, and turn the outcome into an exit code.

use std::sync::Arc;

use batch_core::exec::Outcome;
use batch_core::runner::CommandRunnerBuilder;
use batch_core::{
    Document, ExecutorBuilder, Plan, PromptTemplate, RunOptions, RunSetupError, SubagentRunner,
};

use crate::args::{ColorChoice, RunArgs, RunnerArg};
use crate::exit;
use crate::output::{self, Output};
use crate::resolve;

/// Runs `mdbatch run`.
pub fn run(args: &RunArgs, color: ColorChoice) -> u8 {
    let path = match resolve::task_file(args.doc.file.as_deref()) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let popts = match resolve::parse_options(&path, &args.doc) {
        Ok(o) => o,
        Err(e) => return usage(e),
    };
    if let Some(junit) = &args.junit
        && same_file(junit, &path)
    {
        eprintln!(
            "error: --junit {}: that is the task file; name another file for the report",
            junit.display()
        );
        return exit::USAGE;
    }
    let options = match run_options(args, &popts) {
        Ok(o) => o,
        Err(e) => return usage(e),
    };
    let template = match prompt_template(args) {
        Ok(t) => t,
        Err(e) => return usage(e),
    };

    if args.dry_run {
        return dry_run(&path, &popts, args);
    }

    let runner = match build_runner(args) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };

    let output = Output::new(args.json, args.verbose, color);
    let builder = ExecutorBuilder::new(&path)
        .options(options)
        .runner(runner)
        .prompt_template(template)
        .handle_signals(true)
        .on_event(output.on_event());
    let result = builder.build().and_then(|ex| ex.run_blocking());
    match result {
        Ok(report) => {
            let retries = output.retries();
            output.finish(&report);
            if let Some(junit) = &args.junit
                && let Err(e) =
                    output::junit::write_for_run(junit, &path, &popts, &report, &retries)
            {
                eprintln!(
                    "error: {}: cannot write the JUnit report: {e}",
                    junit.display()
                );
                return exit::USAGE;
            }
            if report.summary.cancelled {
                exit::INTERRUPTED
            } else if report.tasks.iter().any(|t| match t.outcome {
                Outcome::Failed => true,
                Outcome::Skipped => !t.checked_by_hand,
                _ => false,
            }) {
                exit::TASKS_FAILED
            } else {
                exit::SUCCESS
            }
        }
        Err(e) => {
            drop(output);
            setup_error(&e, &path, color)
        }
    }
}

fn run_options(args: &RunArgs, popts: &batch_core::ParseOptions) -> anyhow::Result<RunOptions> {
    let mut o = RunOptions::default();
    o.jobs = args.jobs;
    if let Some(r) = args.retries {
        o.retries = r;
    }
    o.timeout = args.timeout;
    if let Some(g) = args.grace {
        o.grace = g;
    }
    if let Some(w) = args.max_wait {
        o.max_wait = w;
    }
    o.verify = args.verify.clone();
    o.fail_fast = args.fail_fast;
    o.cross_wave = args.select.cross_wave.then_some(true);
    o.only = args.select.only.clone();
    o.include_optional = args.select.include_optional;
    o.dialect = popts.dialect;
    o.wave_level = popts.wave_level;
    o.workdir = args.workdir.clone();
    o.resume_sessions = args.resume_sessions;
    o.cmd = args.cmd.clone();
    if let Some(mode) = &args.isolate {
        o.isolate = mode
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--isolate: {e}"))?;
    }
    o.worktree_dir = args.worktree_dir.clone();
    o.into = args.into.clone();
    o.commit = args.commit;
    if o.jobs == Some(0) {
        anyhow::bail!("--jobs must be at least 1");
    }
    Ok(o)
}

fn prompt_template(args: &RunArgs) -> anyhow::Result<PromptTemplate> {
    match &args.prompt_template {
        None => Ok(PromptTemplate::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                anyhow::anyhow!("{}: cannot read the prompt template: {e}", p.display())
            })?;
            PromptTemplate::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
        }
    }
}

fn build_runner(args: &RunArgs) -> anyhow::Result<Arc<dyn SubagentRunner>> {
    if let Some(cmd) = &args.cmd {
        let runner = CommandRunnerBuilder::new(cmd.clone())
            .build()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for warning in [runner.shell_warning(), runner.option_warning()]
            .into_iter()
            .flatten()
        {
            eprintln!("warning: {warning}");
        }
        return Ok(Arc::new(runner));
    }
    if let Some(kind) = args.runner {
        return preset_runner(kind, args);
    }
    anyhow::bail!(
        "choose how tasks run: --runner claude|codex|gemini|shell, or --cmd 'TEMPLATE' \
         (e.g. --cmd 'my-agent {{prompt}}')"
    )
}

/// A built-in runner (`--runner`): the agent CLI must be installed (checked here,
/// before any task starts).
fn preset_runner(kind: RunnerArg, args: &RunArgs) -> anyhow::Result<Arc<dyn SubagentRunner>> {
    use batch_core::runner::presets::{self, PresetKind, PresetOptions};
    let kind = match kind {
        RunnerArg::Claude => PresetKind::Claude,
        RunnerArg::Codex => PresetKind::Codex,
        RunnerArg::Gemini => PresetKind::Gemini,
        RunnerArg::Shell => PresetKind::Shell,
        RunnerArg::Demo => PresetKind::Demo,
    };
    let mut opts = PresetOptions::default();
    opts.model = args.model.clone();
    opts.max_turns = args.max_turns;
    opts.agent_args = args.agent_args.clone();
    opts.permission_mode = args.permission_mode.clone();
    opts.sandbox = args.sandbox.clone();
    let runner =
        presets::build(kind, opts).map_err(|e| anyhow::anyhow!("--runner {}: {e}", kind.name()))?;
    if let Some(w) = presets::version::untested_warning(kind, None) {
        eprintln!("warning: {w}");
    }
    Ok(runner)
}

fn dry_run(path: &std::path::Path, popts: &batch_core::ParseOptions, args: &RunArgs) -> u8 {
    let doc = match Document::read(path, popts) {
        Ok(d) => d,
        Err(d) => return diagnostics(&d, Some(path)),
    };
    let plan = match Plan::build(&doc, &resolve::plan_options(&args.select)) {
        Ok(p) => p,
        Err(d) => return diagnostics(&d, Some(path)),
    };
    println!(
        "{}",
        batch_core::plan::render(&doc, &plan, batch_core::plan::PlanFormat::Text)
    );
    exit::SUCCESS
}

/// Prints a file's errors as `plan` and `check` do: with the source line
/// and a caret under the column.
fn diagnostics(d: &batch_core::Diagnostics, path: Option<&std::path::Path>) -> u8 {
    let mut diags = d.0.clone();
    let text = path
        .and_then(|p| std::fs::read(p).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    super::check::print_diagnostics(
        &mut diags,
        &text,
        super::check::stderr_color(ColorChoice::Auto),
    );
    exit::USAGE
}

/// Whether two paths name one file (symlinks and hard links included).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

fn usage(e: anyhow::Error) -> u8 {
    eprintln!("error: {e:#}");
    exit::USAGE
}

fn setup_error(e: &RunSetupError, path: &std::path::Path, color: ColorChoice) -> u8 {
    match e {
        RunSetupError::Invalid(d) => {
            let mut diags = d.0.clone();
            let text = std::fs::read(path)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            super::check::print_diagnostics(&mut diags, &text, super::check::stderr_color(color));
            exit::USAGE
        }
        other => {
            eprintln!("error: {}", batch_core::util::with_causes(other));
            exit::USAGE
        }
    }
}
