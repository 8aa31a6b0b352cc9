//! `mdbatch run`: resolve the arguments, build the runner, drive the executor,
//! report, and turn the outcome into an exit code.

use std::sync::Arc;

use batch_core::exec::Outcome;
use batch_core::runner::CommandRunnerBuilder;
use batch_core::{Document, ExecutorBuilder, Plan, PromptTemplate, RunOptions, SubagentRunner};

use crate::args::{ColorChoice, RunArgs, RunnerArg};
use crate::exit;
use crate::output::{self, Output, safe};
use crate::resolve;

/// Runs `mdbatch run`.
pub fn run(args: &RunArgs, color: ColorChoice) -> anyhow::Result<u8> {
    let path = resolve::task_file(args.doc.file.as_deref())?;
    let popts = resolve::parse_options(&path, &args.doc)?;
    if let Some(junit) = &args.junit
        && same_file(junit, &path)
    {
        anyhow::bail!(
            "--junit {}: that is the task file; name another file for the report",
            junit.display()
        );
    }
    let mut options = run_options(args, &popts)?;
    if args.launcher.as_deref() == Some("slurm") {
        // Before a detached run forks: the refusal is shown here.
        if let Ok(doc) = Document::read(&path, &popts) {
            batch_core::runner::slurm::refuse_launcher_hints(&doc, &path)?;
        }
    }
    let template = prompt_template(args)?;

    if args.dry_run {
        return dry_run(&path, &popts, args);
    }

    let runner = build_runner(args)?;
    if args.detach {
        return detach(&path);
    }
    if let Some(code) = approve_verify(&path, &mut options) {
        return Ok(code);
    }

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
                anyhow::bail!("{}: cannot write the JUnit report: {e}", junit.display());
            }
            if let Some(what) = &report.summary.capped {
                eprintln!(
                    "stopped at the cap: {what}; `mdbatch run` again (with a higher cap) runs the rest"
                );
            }
            Ok(if report.summary.cancelled {
                exit::INTERRUPTED
            } else if report.summary.capped.is_some() {
                exit::CAPPED
            } else if report.tasks.iter().any(|t| match t.outcome {
                Outcome::Failed => true,
                Outcome::Skipped => !t.checked_by_hand && !t.removed,
                _ => false,
            }) {
                exit::TASKS_FAILED
            } else {
                exit::SUCCESS
            })
        }
        Err(e) => {
            drop(output);
            Err(e.into())
        }
    }
}

/// New `verify:` commands (an agent may have written them): shown and asked
/// about on a terminal; elsewhere the run refuses them (its error says how to
/// approve). `Some(code)` when the run must not go on.
fn approve_verify(path: &std::path::Path, options: &mut RunOptions) -> Option<u8> {
    use std::io::{BufRead, IsTerminal, Write};
    let pending = match batch_core::exec::unapproved_verify(path, options) {
        Ok(p) => p,
        // The run reports the same problem, with its diagnostics.
        Err(_) => return None,
    };
    if pending.is_empty() || !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return None;
    }
    let mut text = format!(
        "{}: {} not run before (an agent may have written {}):\n",
        path.display(),
        if pending.len() == 1 {
            "this verify command was"
        } else {
            "these verify commands were"
        },
        if pending.len() == 1 { "it" } else { "them" }
    );
    for p in &pending {
        text.push_str(&format!(
            "  line {}, task `{}`: {}\n",
            p.line, p.id, p.command
        ));
    }
    eprint!("{}", safe::text(&text));
    eprint!(
        "Run {} with sh -c? [y/N] ",
        if pending.len() == 1 { "it" } else { "them" }
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        *options = std::mem::take(options).with_trust_verify(true);
        None
    } else {
        eprintln!("nothing run; approve them with --trust-verify once reviewed");
        Some(exit::USAGE)
    }
}

fn run_options(args: &RunArgs, popts: &batch_core::ParseOptions) -> anyhow::Result<RunOptions> {
    if args.jobs == Some(0) {
        anyhow::bail!("--jobs must be at least 1");
    }
    if args.timeout == Some(std::time::Duration::ZERO) {
        anyhow::bail!("--timeout must be more than 0 (leave it out for no timeout)");
    }
    let defaults = RunOptions::new();
    let mut o = RunOptions::new()
        .with_retries(args.retries.unwrap_or(defaults.retries))
        .with_grace(args.grace.unwrap_or(defaults.grace))
        .with_max_wait(args.max_wait.unwrap_or(defaults.max_wait))
        .with_fail_fast(args.fail_fast)
        .with_only(&args.select.only)
        .with_include_optional(args.select.include_optional)
        .with_resume_sessions(args.resume_sessions);
    // The optional settings stay unset (the document or the default decides)
    // unless given.
    if let Some(jobs) = args.jobs {
        o = o.with_jobs(jobs);
    }
    if let Some(usd) = args.max_cost {
        if !(usd.is_finite() && usd > 0.0) {
            anyhow::bail!("--max-cost must be a number of dollars more than 0");
        }
        o = o.with_max_cost(usd);
    }
    if let Some(tokens) = args.max_tokens {
        if tokens == 0 {
            anyhow::bail!("--max-tokens must be at least 1");
        }
        o = o.with_max_tokens(tokens);
    }
    if let Some(at) = &args.at_cap {
        if args.max_cost.is_none() && args.max_tokens.is_none() {
            anyhow::bail!("--at-cap needs --max-cost or --max-tokens");
        }
        o = o.with_at_cap(
            at.parse()
                .map_err(|e: String| anyhow::anyhow!("--at-cap: {e}"))?,
        );
    }
    if let Some(timeout) = args.timeout {
        o = o.with_timeout(timeout);
    }
    if let Some(verify) = &args.verify {
        o = o.with_verify(verify);
    }
    o = o.with_trust_verify(args.trust_verify);
    if args.select.cross_wave {
        o = o.with_cross_wave(true);
    }
    if let Some(dialect) = popts.dialect {
        o = o.with_dialect(dialect);
    }
    if let Some(level) = popts.wave_level {
        o = o.with_wave_level(level);
    }
    if let Some(workdir) = &args.workdir {
        o = o.with_workdir(workdir);
    }
    if let Some(cmd) = &args.cmd {
        o = o.with_cmd(cmd);
    }
    if let Some(mode) = &args.isolate {
        o = o.with_isolate(
            mode.parse()
                .map_err(|e: String| anyhow::anyhow!("--isolate: {e}"))?,
        );
    }
    if let Some(dir) = &args.worktree_dir {
        o = o.with_worktree_dir(dir);
    }
    if let Some(into) = &args.into {
        o = o.with_into(into);
    }
    if let Some(l) = &args.launcher {
        o = o.with_launcher(
            l.parse()
                .map_err(|e: String| anyhow::anyhow!("--launcher: {e}"))?,
        );
    }
    for arg in &args.launcher_args {
        if let Some(why) = batch_core::runner::slurm::refused_launcher_arg(arg) {
            anyhow::bail!("--launcher-arg {arg}: mdbatch does not pass it: {why}");
        }
    }
    if !args.launcher_args.is_empty() && args.launcher.as_deref() != Some("slurm") {
        anyhow::bail!("--launcher-arg needs --launcher slurm");
    }
    Ok(o.with_commit(args.commit)
        .with_launcher_args(&args.launcher_args))
}

/// `run --detach`: the same command line without `--detach`, in the background.
fn detach(path: &std::path::Path) -> anyhow::Result<u8> {
    let run_args: Vec<std::ffi::OsString> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "--detach")
        .collect();
    let cwd = std::env::current_dir()?;
    let started = crate::cmd::detach::start(path, &cwd, &run_args)?;
    println!(
        "run {} started in the background (pid {})",
        started.run_id, started.pid
    );
    println!("log: {}", started.log.display());
    println!(
        "follow it: mdbatch status {f} · mdbatch wait {f} · mdbatch stop {f}",
        f = path.display()
    );
    Ok(exit::SUCCESS)
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
            .map_err(|e| anyhow::anyhow!(output::error::command_template(&e)))?;
        for warning in [runner.shell_warning(), runner.option_warning()]
            .into_iter()
            .flatten()
        {
            eprintln!("warning: {}", safe::text(&warning));
        }
        return Ok(Arc::new(runner));
    }
    if let Some(kind) = args.runner {
        return preset_runner(kind, args);
    }
    anyhow::bail!(
        "choose how tasks run: --runner claude|codex|gemini|shell, or --cmd 'TEMPLATE' \
         (e.g. --cmd 'my-agent -- {{prompt}}')"
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
    let mut agent_args = args.agent_args.clone();
    if kind == PresetKind::Claude
        && let Some(usd) = args.max_cost
        && !agent_args.iter().any(|a| a.starts_with("--max-budget-usd"))
    {
        agent_args.push("--max-budget-usd".into());
        agent_args.push(format!("{:.4}", task_budget(usd, args.jobs)));
    }
    let mut opts = PresetOptions::new().with_agent_args(&agent_args);
    if let Some(model) = &args.model {
        opts = opts.with_model(model);
    }
    if let Some(turns) = args.max_turns {
        opts = opts.with_max_turns(turns);
    }
    if let Some(mode) = &args.permission_mode {
        opts = opts.with_permission_mode(mode);
    }
    if let Some(sandbox) = &args.sandbox {
        opts = opts.with_sandbox(sandbox);
    }
    let runner =
        presets::build(kind, opts).map_err(|e| anyhow::anyhow!("--runner {}: {e}", kind.name()))?;
    if let Some(w) = presets::version::untested_warning(kind, None) {
        eprintln!("warning: {}", safe::text(&w));
    }
    Ok(runner)
}

/// Each Claude Code task's own budget under `--max-cost`: the cap shared by
/// the tasks that can run at once (`--jobs`, 4 when not given), so the run
/// overshoots its cap by less than the cap again at worst: when the report
/// that reaches it arrives, at most `jobs` tasks have been running, each
/// stopped by Claude Code at its share.
pub fn task_budget(max_cost: f64, jobs: Option<u32>) -> f64 {
    max_cost / f64::from(jobs.unwrap_or(4).max(1))
}

fn dry_run(
    path: &std::path::Path,
    popts: &batch_core::ParseOptions,
    args: &RunArgs,
) -> anyhow::Result<u8> {
    let doc = Document::read(path, popts)?;
    let plan = Plan::build(&doc, &resolve::plan_options(&args.select))?;
    println!(
        "{}",
        safe::text(&batch_core::render_plan(
            &doc,
            &plan,
            batch_core::PlanFormat::Text
        ))
    );
    Ok(exit::SUCCESS)
}

/// Whether two paths name one file (symlinks and hard links included).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}
