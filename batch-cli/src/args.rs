//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run a markdown checklist through coding agents, in waves, with live progress.
#[derive(Debug, Parser)]
#[command(
    name = "mdbatch",
    version,
    about,
    long_about = "mdbatch reads a markdown checklist (task.md), plans it into waves and groups, \
runs every unchecked task through a subagent (claude -p, codex exec, gemini -p or any command) \
in parallel where the document allows, retries failures, checks each box [x] in the file the \
moment its task succeeds, and resumes an interrupted batch where it stopped.",
    after_help = "Examples:\n  mdbatch demo                      # see it work, nothing to install\n  mdbatch plan tasks.md             # what would run, in what order\n  mdbatch run --runner claude -j 3  # run it with Claude Code\n  mdbatch status                    # what is done, what failed"
)]
pub struct Cli {
    /// When to use colour: auto, always or never (NO_COLOR is respected).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal unless NO_COLOR is set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the plan: waves, groups, tasks, what each waits for.
    #[command(
        after_help = "Examples:\n  mdbatch plan\n  mdbatch plan tasks.md --format json\n  mdbatch plan --cross-wave --format mermaid\n  mdbatch plan --show-prompt T004"
    )]
    Plan(PlanArgs),
    /// Run every open task through subagents.
    #[command(
        after_help = "Examples:\n  mdbatch run --runner claude\n  mdbatch run --cmd 'my-agent --task={prompt}' -j 8\n  mdbatch run --only T004-T010 --dry-run\n  mdbatch run --json > events.jsonl"
    )]
    Run(Box<RunArgs>),
    /// Done/open per wave and group, and what the journal knows.
    #[command(after_help = "Examples:\n  mdbatch status\n  mdbatch status tasks.md --json")]
    Status(StatusArgs),
    /// Report every problem in a task file, compiler-style.
    #[command(after_help = "Examples:\n  mdbatch check\n  mdbatch check specs/001/tasks.md")]
    Check(CheckArgs),
    /// Show a task's attempt log.
    #[command(
        after_help = "Examples:\n  mdbatch logs T004\n  mdbatch logs T004 --attempt 1\n  mdbatch logs T004 --follow"
    )]
    Logs(LogsArgs),
    /// Start tasks over: uncheck boxes, forget failed attempts.
    #[command(
        after_help = "Examples:\n  mdbatch reset --failed              # forget failures; the next run starts them at attempt 1\n  mdbatch reset tasks.md --all --yes  # uncheck every box, no question asked"
    )]
    Reset(ResetArgs),
    /// Remove the git worktrees and branches runs left behind, and report the space freed.
    #[command(after_help = "Examples:\n  mdbatch clean --dry-run\n  mdbatch clean")]
    Clean(CleanArgs),
    /// Write a starter tasks.md (and a Claude Code slash command).
    #[command(after_help = "Examples:\n  mdbatch init\n  mdbatch init --claude-command")]
    Init(InitArgs),
    /// Check the agent CLIs: installed, versions, tested.
    #[command(after_help = "Examples:\n  mdbatch doctor")]
    Doctor(DoctorArgs),
    /// Run a sample batch with a built-in stand-in agent (nothing to install).
    #[command(after_help = "Examples:\n  mdbatch demo\n  mdbatch demo --dir /tmp/try-mdbatch")]
    Demo(DemoArgs),
    /// Wait for a run (a detached one, or any in progress) to end, and print its summary.
    #[command(
        after_help = "Examples:\n  mdbatch wait\n  mdbatch wait tasks.md --timeout 50s   # exit 124 if it is still running then"
    )]
    Wait(WaitArgs),
    /// Stop a run in progress: gracefully (running tasks are ended and
    /// recorded as interrupted); a second stop, or --now, ends it at once.
    #[command(after_help = "Examples:\n  mdbatch stop\n  mdbatch stop tasks.md --now")]
    Stop(StopArgs),
    /// An MCP server on stdio, so an agent host (Claude Code, …) can plan, run
    /// and follow batches through tools.
    #[command(
        after_help = "Examples:\n  mdbatch mcp\n  mdbatch mcp --root ~/project\n  claude mcp add -s project mdbatch -- mdbatch mcp"
    )]
    Mcp(McpArgs),
    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  mdbatch completions bash > ~/.local/share/bash-completion/completions/mdbatch\n  mdbatch completions zsh > ~/.zfunc/_mdbatch\n  mdbatch completions fish > ~/.config/fish/completions/mdbatch.fish"
    )]
    Completions(CompletionsArgs),
}

/// How the task file is read and planned (shared by plan, run, check, status).
#[derive(Debug, Clone, Args)]
pub struct DocArgs {
    /// The task file (default: task.md, then tasks.md).
    pub file: Option<PathBuf>,
    /// Force the dialect: waves, spec-kit or kiro.
    #[arg(long)]
    pub dialect: Option<String>,
    /// Heading level of waves (default: detected).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=6))]
    pub wave_level: Option<u8>,
}

/// Which tasks, in which order (plan and run).
#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// A module waits only for its own earlier tasks, not the whole previous wave.
    #[arg(long)]
    pub cross_wave: bool,
    /// Only these tasks and what they need: ids, ranges (T004-T010), section names; comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = parse_selection)]
    pub only: Vec<String>,
    /// Run optional tasks (kiro `- [ ]*`, `optional: true`) too.
    #[arg(long)]
    pub include_optional: bool,
}

/// `mdbatch plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub doc: DocArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormatArg::Text)]
    pub format: PlanFormatArg,
    /// Print the prompt a subagent would get for this task id, and nothing else.
    #[arg(long, value_name = "ID")]
    pub show_prompt: Option<String>,
    /// A prompt template file (for --show-prompt).
    #[arg(long, value_name = "FILE")]
    pub prompt_template: Option<PathBuf>,
}

/// `--format` of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormatArg {
    /// Waves > groups > tasks, for people.
    Text,
    /// The versioned JSON schema.
    Json,
    /// Graphviz dot.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// Built-in runners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunnerArg {
    /// Claude Code (`claude -p`).
    Claude,
    /// OpenAI Codex CLI (`codex exec`).
    Codex,
    /// Gemini CLI (`gemini -p`).
    Gemini,
    /// Run each task's inline code span with `sh -c` (task files that are scripts).
    Shell,
    /// The built-in stand-in agent of `mdbatch demo`.
    Demo,
}

/// `mdbatch run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub doc: DocArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Command template run per task; placeholders {prompt} {task} {id} {file} {attempt}. Never goes through a shell.
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "runner")]
    pub cmd: Option<String>,
    /// A built-in runner.
    #[arg(long, value_enum)]
    pub runner: Option<RunnerArg>,
    /// Max subagents at once (default 4, or the document's `jobs:` hint).
    #[arg(short = 'j', long)]
    pub jobs: Option<u32>,
    /// Model for the agent CLI.
    #[arg(long)]
    pub model: Option<String>,
    /// Max agent turns per attempt (presets).
    #[arg(long)]
    pub max_turns: Option<u32>,
    /// An extra argument passed to the agent CLI (repeatable).
    #[arg(long = "agent-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub agent_args: Vec<String>,
    /// Permission mode for Claude Code (default: acceptEdits).
    #[arg(long)]
    pub permission_mode: Option<String>,
    /// Sandbox for Codex (default: workspace-write).
    #[arg(long)]
    pub sandbox: Option<String>,
    /// Replace the default prompt template.
    #[arg(long, value_name = "FILE")]
    pub prompt_template: Option<PathBuf>,
    /// Continue the agent session of an attempt an earlier run left unfinished.
    #[arg(long)]
    pub resume_sessions: bool,
    /// Retries after the first attempt (default 2; `Fatal` errors are never retried).
    #[arg(long)]
    pub retries: Option<u32>,
    /// Per-attempt timeout, e.g. 90s, 30m.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Wait after SIGTERM before SIGKILL (default 10s).
    #[arg(long, value_parser = parse_duration)]
    pub grace: Option<std::time::Duration>,
    /// Longest total wait on rate limits per task (default 30m).
    #[arg(long, value_parser = parse_duration)]
    pub max_wait: Option<std::time::Duration>,
    /// A command that must pass after a subagent succeeds before its box is checked.
    #[arg(long, value_name = "CMD")]
    pub verify: Option<String>,
    /// Run `verify:` hint commands that are new or changed since this file
    /// was last run (an agent may have written them), and approve them for
    /// later runs. Without it, mdbatch asks on a terminal and refuses otherwise.
    #[arg(long)]
    pub trust_verify: bool,
    /// Stop launching new tasks after the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Spending cap for the whole run in US dollars: stop launching tasks once
    /// the costs the agents report add up to it (exit code 3). Claude Code
    /// tasks also get `--max-budget-usd` of the cap divided by --jobs.
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// Token cap for the whole run (input + output tokens the agents report).
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// At the cap, let running tasks `finish` (default) or `stop` them.
    #[arg(long, value_name = "WHAT", value_parser = ["finish", "stop"])]
    pub at_cap: Option<String>,
    /// Folder subagents run in (default: the task file's folder).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Isolation: `worktree` runs each task in its own git worktree and lands
    /// it as one commit through a merge queue (the default inside a git
    /// repository); `none` runs every task in the same folder (the default
    /// outside git).
    #[arg(long, value_name = "MODE", value_parser = ["worktree", "none", "auto"])]
    pub isolate: Option<String>,
    /// Where task worktrees go (default: `<repo>.mdbatch-worktrees/` beside the checkout).
    #[arg(long, value_name = "DIR")]
    pub worktree_dir: Option<PathBuf>,
    /// Land the tasks' commits on this branch instead of the one checked out.
    #[arg(long, value_name = "BRANCH")]
    pub into: Option<String>,
    /// Without worktrees (`--isolate none -j 1`): commit each finished task's
    /// change in the shared folder, one commit per task.
    #[arg(long)]
    pub commit: bool,
    /// Where subagents run: `local`, or `slurm` (each attempt as its own
    /// Slurm job step through `srun`, on a file system the cluster shares).
    #[arg(long, value_name = "LAUNCHER", value_parser = ["local", "slurm"])]
    pub launcher: Option<String>,
    /// An extra `srun` argument for every task, e.g. `--launcher-arg=--partition=gpu`
    /// (repeatable; `launcher-arg:` hints add per section and task).
    #[arg(long = "launcher-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub launcher_args: Vec<String>,
    /// Show what would run, in order, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print versioned JSON events on stdout (one per line).
    #[arg(long)]
    pub json: bool,
    /// Print every subagent output line, prefixed with its task id.
    #[arg(short, long)]
    pub verbose: bool,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Start the run in the background and return at once: it outlives the
    /// terminal (its own session, output to a log under the state folder);
    /// prints its run id and log. Follow it with `status`, `wait`, `stop`.
    #[arg(long, conflicts_with_all = ["dry_run", "json"])]
    pub detach: bool,
}

/// `mdbatch wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The task file (default: task.md, then tasks.md).
    pub file: Option<PathBuf>,
    /// Give up after this long (e.g. 50s, 10m) with exit code 124; the run goes on.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

/// `mdbatch stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// The task file (default: task.md, then tasks.md).
    pub file: Option<PathBuf>,
    /// End it at once: running subagents are killed, not given the grace period.
    #[arg(long)]
    pub now: bool,
}

/// `mdbatch mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// Only task files inside this folder can be used (default: the current folder).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// `mdbatch status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub doc: DocArgs,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `mdbatch check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub doc: DocArgs,
}

/// `mdbatch logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The task id.
    pub id: String,
    /// The task file (default: task.md, then tasks.md).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Which attempt (default: the latest).
    #[arg(long)]
    pub attempt: Option<u32>,
    /// Keep printing as the log grows, until the attempt ends.
    #[arg(short, long)]
    pub follow: bool,
    /// Print the log's bytes as they are. By default control characters
    /// (terminal escapes an agent printed) are shown visibly instead, so
    /// they cannot act on the terminal.
    #[arg(long)]
    pub raw: bool,
}

/// `mdbatch clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// The task file (default: task.md, then tasks.md).
    pub file: Option<PathBuf>,
    /// Where the worktrees were made, when not the default.
    #[arg(long, value_name = "DIR")]
    pub worktree_dir: Option<PathBuf>,
    /// Show what would go, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `mdbatch reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The task file (default: task.md, then tasks.md).
    pub file: Option<PathBuf>,
    /// Forget the journal history of tasks that failed, were skipped or never
    /// finished (their boxes are open already): `status` stops listing them and
    /// the next run starts them fresh, at attempt 1, with no resumed session.
    #[arg(long, conflicts_with = "all")]
    pub failed: bool,
    /// Uncheck every box and forget every task's journal history.
    #[arg(long)]
    pub all: bool,
    /// Do not ask (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

/// `mdbatch init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Also write .claude/commands/run-batch.md, a Claude Code slash command
    /// that starts a detached run and follows it (only you can invoke it).
    #[arg(long)]
    pub claude_command: bool,
    /// Add mdbatch's MCP server to the project's .mcp.json (merged with what is there).
    #[arg(long)]
    pub mcp: bool,
}

/// `mdbatch doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also check a cluster launcher: `slurm` (srun found, the cluster
    /// answers, the partition exists).
    #[arg(long, value_name = "LAUNCHER", value_parser = ["local", "slurm"])]
    pub launcher: Option<String>,
    /// The launcher arguments a run would pass (`--partition=NAME` is checked).
    #[arg(long = "launcher-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub launcher_args: Vec<String>,
}

/// `mdbatch demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder to create the demo in (default: a new temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `mdbatch completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// One `--only` name: never empty (`--only ''` selected nothing and ran
/// nothing, successfully).
fn parse_selection(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err(
            "an empty name selects no task; give ids, ranges (T004-T010) or section names, \
             or leave --only out to run everything"
                .to_string(),
        );
    }
    Ok(s.to_string())
}

fn parse_duration(s: &str) -> Result<std::time::Duration, batch_core::DurationError> {
    batch_core::parse_duration(s)
}
