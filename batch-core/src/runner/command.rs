//! The command runner (`--cmd TEMPLATE`).
//!
//! The template is split into argv once, by shell-word rules (the `shlex`
//! crate), when the runner is built. For every attempt the placeholders
//! `{prompt}`, `{task}`, `{id}`, `{file}` and `{attempt}` are replaced *inside*
//! each argument, in one pass, so a task text stays exactly one argument
//! however many spaces, quotes, `$(…)` or leading dashes it holds, and text
//! substituted in is never scanned for placeholders again. No shell is
//! involved unless the template itself names one (`sh -c '…'`). Write `{{`
//! and `}}` for literal braces; any other `{word}` is an error at build time.
//!
//! The task's data is also in the environment: `MDBATCH_TASK_ID`,
//! `MDBATCH_TASK`, `MDBATCH_PROMPT`, `MDBATCH_ATTEMPT`, `MDBATCH_FILE`,
//! `MDBATCH_WORKDIR` (where the subagent runs: its worktree when isolated) and
//! `MDBATCH_PROGRESS_FILE` (lines appended to that file stream as progress);
//! every subagent also carries `MDBATCH_REAPER_TOKEN`, by which the run's
//! reaper finds it if mdbatch is killed.
//!
//! Exit status to kind: 0 success; 75 (`EX_TEMPFAIL`) `Transient`, rate
//! limited; 126 and 127 (cannot execute, not found) `Fatal`; any other status
//! or a signal `Failed`; `Timeout` when mdbatch stopped it at its deadline.

use std::ffi::OsString;
use std::path::PathBuf;

use async_trait::async_trait;

use super::process::{ProcessCommand, ProcessExit, spawn_streaming};
use super::{Progress, RunContext, SubagentRunner, TaskOutput, TaskSpec};
use crate::error::{CommandTemplateError, ErrorKind, RunError};
use crate::util::last_line;

/// Placeholders a `--cmd` template may use.
pub const CMD_PLACEHOLDERS: &[&str] = &["prompt", "task", "id", "file", "attempt", "workdir"];

/// Runs each task as a command built from a template.
///
/// ```
/// use batch_core::runner::CommandRunnerBuilder;
///
/// let runner = CommandRunnerBuilder::new("my-agent --task {task} --id={id}").build().unwrap();
/// assert_eq!(runner.template_argv()[0], "my-agent");
/// assert!(CommandRunnerBuilder::new("agent {promt}").build().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct CommandRunner {
    argv: Vec<Vec<Piece>>,
    raw: Vec<String>,
}

/// Builds a [`CommandRunner`].
#[derive(Debug, Clone, Default)]
pub struct CommandRunnerBuilder {
    template: String,
}

/// One piece of a template argument.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Prompt,
    Task,
    Id,
    File,
    Workdir,
    Attempt,
}

impl CommandRunnerBuilder {
    /// A builder for `template` (split by shell-word rules).
    pub fn new(template: impl Into<String>) -> Self {
        Self {
            template: template.into(),
        }
    }

    /// Splits the template; errors on unbalanced quotes, an empty command or
    /// an unknown placeholder.
    ///
    /// # Errors
    ///
    /// A [`CommandTemplateError`] saying what is wrong with the template.
    pub fn build(self) -> Result<CommandRunner, CommandTemplateError> {
        let template = self.template;
        let Some(raw) = shlex::split(&template) else {
            return Err(CommandTemplateError::UnbalancedQuotes { template });
        };
        if raw.is_empty() {
            return Err(CommandTemplateError::Empty);
        }
        let argv = match raw
            .iter()
            .map(|arg| parse_arg(arg))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(argv) => argv,
            Err(name) => {
                return Err(CommandTemplateError::UnknownPlaceholder {
                    template,
                    name,
                    known: CMD_PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        };
        if argv[0].iter().any(|p| !matches!(p, Piece::Lit(_))) {
            return Err(CommandTemplateError::PlaceholderProgram { template });
        }
        Ok(CommandRunner { argv, raw })
    }
}

/// The pieces of one argument; `Err` holds an unknown placeholder's name.
fn parse_arg(arg: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut rest = arg;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{") {
            lit.push('{');
            rest = &rest[2..];
        } else if rest.starts_with("}}") {
            lit.push('}');
            rest = &rest[2..];
        } else if c == '{' {
            let close = rest.find('}');
            let word = close.map(|i| &rest[1..i]);
            match word {
                Some(w)
                    if !w.is_empty()
                        && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    let piece = match w {
                        "prompt" => Piece::Prompt,
                        "task" => Piece::Task,
                        "id" => Piece::Id,
                        "file" => Piece::File,
                        "workdir" => Piece::Workdir,
                        "attempt" => Piece::Attempt,
                        other => return Err(other.to_string()),
                    };
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(piece);
                    rest = &rest[w.len() + 2..];
                }
                _ => {
                    lit.push('{');
                    rest = &rest[1..];
                }
            }
        } else {
            lit.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !lit.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

impl CommandRunner {
    /// A warning when the template hands task text to a shell as script
    /// (`sh -c "agent {task}"`): the text is then run as shell code. mdbatch
    /// never adds a shell itself; this is the one way a user can, so say so.
    pub fn shell_warning(&self) -> Option<String> {
        const SHELLS: &[&str] = &["sh", "bash", "zsh", "dash", "ksh", "fish"];
        let raw = self.template_argv();
        let pos = raw.windows(2).position(|w| {
            let name = w[0].rsplit('/').next().unwrap_or(&w[0]);
            SHELLS.contains(&name) && w[1].starts_with('-') && w[1].contains('c')
        })?;
        let script = raw.get(pos + 2)?;
        let text = ["{prompt}", "{task}"]
            .into_iter()
            .find(|p| script.contains(p))?;
        Some(format!(
            "--cmd puts {text} inside a shell script given to `{shell} {flag}`: task text will run as \
             shell code; pass it as an argument of its own instead, e.g. \
             --cmd '{shell} {flag} \"my-agent \\\"$1\\\"\" _ {text}'",
            shell = raw[pos],
            flag = raw[pos + 1],
        ))
    }

    /// A warning when task text is an argument of its own with no `--`
    /// before it (`sort {task} out.txt`, `sort -r {task} out.txt`): a task
    /// whose text starts with `-` (`-o/tmp/x`) would then be read by the
    /// program as an option. An argument right after an option is no safer
    /// than any other: mdbatch cannot know whether `-r` takes a value, so
    /// `-r {task}` is warned about like a bare positional.
    ///
    /// Safe, and not warned about: text after `--`, text glued into an
    /// argument after something else (`--task={prompt}`, `-p{prompt}`: the
    /// program reads it as that option's value), and the arguments a shell
    /// gets after `sh -c SCRIPT` (the shell never parses them as options;
    /// [`shell_warning`](Self::shell_warning) is about the script). The
    /// presets are safe.
    pub fn option_warning(&self) -> Option<String> {
        const SHELLS: &[&str] = &["sh", "bash", "zsh", "dash", "ksh", "fish"];
        let raw = self.template_argv();
        // `sh -c SCRIPT NAME ARGS…`: from NAME on, the shell's positional
        // parameters.
        let shell_params = raw
            .windows(2)
            .position(|w| {
                let name = w[0].rsplit('/').next().unwrap_or(&w[0]);
                SHELLS.contains(&name) && w[1].starts_with('-') && w[1].contains('c')
            })
            .map(|pos| pos + 3);
        let mut after_dashes = false;
        for (i, arg) in raw.iter().enumerate() {
            if arg == "--" {
                after_dashes = true;
                continue;
            }
            let Some(text) = ["{prompt}", "{task}"]
                .into_iter()
                .find(|p| arg.starts_with(p))
            else {
                continue;
            };
            if after_dashes || i == 0 || shell_params.is_some_and(|p| i >= p) {
                continue;
            }
            let mut safe: Vec<String> = raw[..i].to_vec();
            safe.push("--".into());
            safe.extend(raw[i..].iter().cloned());
            let var = if text == "{prompt}" {
                "MDBATCH_PROMPT"
            } else {
                "MDBATCH_TASK"
            };
            return Some(format!(
                "--cmd passes {text} to `{program}` as an argument of its own: a task whose text \
                 starts with `-` would be read as an option (after another option too: mdbatch \
                 cannot tell `-o {text}` from `-r {text}`); put `--` before it if `{program}` \
                 accepts one: --cmd '{safe}', glue it to its option (`--task={text}`), or have \
                 the program read ${var} instead",
                program = raw[0],
                safe = safe.join(" "),
            ));
        }
        None
    }

    /// The template's arguments as split (placeholders not yet substituted).
    pub fn template_argv(&self) -> &[String] {
        &self.raw
    }

    /// The argv for one attempt of `task`.
    pub fn argv_for(&self, task: &TaskSpec, attempt: u32) -> Vec<String> {
        let file = task.task_file().display().to_string();
        self.argv
            .iter()
            .map(|pieces| {
                let mut s = String::new();
                for p in pieces {
                    match p {
                        Piece::Lit(l) => s.push_str(l),
                        Piece::Prompt => s.push_str(task.prompt()),
                        Piece::Task => s.push_str(task.text()),
                        Piece::Id => s.push_str(task.id()),
                        Piece::File => s.push_str(&file),
                        Piece::Workdir => s.push_str(&task.workdir().display().to_string()),
                        Piece::Attempt => s.push_str(&attempt.to_string()),
                    }
                }
                no_nul(s)
            })
            .collect()
    }
}

/// A NUL byte cannot cross `exec`: replace it rather than fail the spawn.
fn no_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{fffd}")
    } else {
        s
    }
}

/// Where an attempt's progress file goes: beside its log, else in the temp folder.
pub(crate) fn progress_file_for(task: &TaskSpec, ctx: &RunContext) -> PathBuf {
    match &ctx.log_path {
        Some(log) => crate::store::progress_path(log),
        None => std::env::temp_dir().join(format!(
            "mdbatch-{}-{}-{}.progress",
            std::process::id(),
            crate::store::safe_name(task.id()),
            uuid::Uuid::new_v4().simple()
        )),
    }
}

/// The `MDBATCH_*` variables of one attempt.
pub(crate) fn task_env(
    task: &TaskSpec,
    attempt: u32,
    progress_file: &std::path::Path,
) -> Vec<(OsString, OsString)> {
    let pairs = [
        ("MDBATCH_TASK_ID", task.id().to_string()),
        ("MDBATCH_TASK", task.text().to_string()),
        ("MDBATCH_PROMPT", task.prompt().to_string()),
        ("MDBATCH_ATTEMPT", attempt.to_string()),
        ("MDBATCH_FILE", task.task_file().display().to_string()),
        ("MDBATCH_WORKDIR", task.workdir().display().to_string()),
    ];
    let mut env: Vec<(OsString, OsString)> = pairs
        .into_iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(no_nul(v))))
        .collect();
    env.push((
        OsString::from("MDBATCH_PROGRESS_FILE"),
        progress_file.as_os_str().to_owned(),
    ));
    env
}

/// Maps a command's exit to the runner contract (see the module docs).
pub(crate) fn classify_exit(exit: &ProcessExit, what: &str) -> Result<(), RunError> {
    if let Some(e) = exit.stop_error(what) {
        return Err(e);
    }
    let tail = exit.tail_opt();
    let last = last_line(&exit.tail)
        .map(|l| format!(": {}", crate::runner::process::cut_line(l, 200)))
        .unwrap_or_default();
    let err = match exit.code() {
        Some(0) => return Ok(()),
        Some(75) => RunError::new(
            ErrorKind::Transient,
            format!("{what} asked to be retried later (exit status 75){last}"),
        )
        .rate_limited(true),
        Some(126) => RunError::new(
            ErrorKind::Fatal,
            format!("{what} could not be executed (exit status 126){last}"),
        ),
        Some(127) => RunError::new(
            ErrorKind::Fatal,
            format!("{what}: command not found (exit status 127){last}"),
        ),
        _ => RunError::new(
            ErrorKind::Failed,
            format!("{what} failed with {}{last}", exit.describe()),
        ),
    };
    Err(err.with_output_tail(tail))
}

#[async_trait]
impl SubagentRunner for CommandRunner {
    async fn run(&self, task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError> {
        let progress_file = progress_file_for(task, &ctx);
        let cmd = ProcessCommand {
            argv: self.argv_for(task, ctx.attempt),
            env: task_env(task, ctx.attempt, &progress_file),
            workdir: Some(task.workdir().to_path_buf()),
            progress_file: Some(progress_file.clone()),
            stdin: None,
        };
        let sink = ctx.progress.clone();
        let result = spawn_streaming(&cmd, &ctx, |stream, line| {
            sink.send(Progress::Output {
                stream,
                line: line.to_string(),
            });
        })
        .await;
        if ctx.log_path.is_none() {
            let _ = std::fs::remove_file(&progress_file);
        }
        let exit = result?;
        let what = format!("`{}`", self.raw[0]);
        classify_exit(&exit, &what)?;
        let summary = last_line(&exit.tail).map(|l| crate::runner::process::cut_line(l, 200));
        Ok(TaskOutput {
            summary,
            session_id: None,
            usage: None,
            output_tail: exit.tail_opt(),
        })
    }

    fn name(&self) -> &str {
        "command"
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn task_text_as_a_bare_positional_argument_is_warned_about() {
        let warn = |t: &str| {
            CommandRunnerBuilder::new(t)
                .build()
                .unwrap()
                .option_warning()
        };
        let w = warn("sort {task} /etc/hostname").expect("positional task text");
        assert!(w.contains("sort -- {task} /etc/hostname"), "{w}");
        assert!(w.contains("$MDBATCH_TASK"), "{w}");
        // After `--`, glued into an option, or as a shell's positional
        // parameter, the text cannot become an option.
        assert!(warn("sort -- {task} /etc/hostname").is_none());
        assert!(warn("sort -r -- {task} /etc/hostname").is_none());
        assert!(warn("my-agent --task={prompt}").is_none());
        assert!(warn("my-agent -p{prompt}").is_none());
        assert!(warn("sh -c 'my-agent -- \"$1\"' _ {task}").is_none());
        assert!(warn("my-agent {id}").is_none());
    }

    #[test]
    fn task_text_right_after_an_option_is_warned_about_since_the_option_may_take_no_value() {
        let warn = |t: &str| {
            CommandRunnerBuilder::new(t)
                .build()
                .unwrap()
                .option_warning()
        };
        // `-r` takes no value: a task `-o/tmp/x` would be sort's `-o`.
        let w = warn("sort -r {task} /etc/hostname").expect("text after a flag");
        assert!(w.contains("sort -r -- {task} /etc/hostname"), "{w}");
        // An option that does take a value looks the same to mdbatch.
        let w = warn("my-agent --task {prompt}").expect("text after an option");
        assert!(w.contains("my-agent --task -- {prompt}"), "{w}");
        assert!(
            w.contains("--task={prompt}") && w.contains("$MDBATCH_PROMPT"),
            "{w}"
        );
        assert!(warn("claude -p {prompt}").is_some());
    }

    #[test]
    fn a_placeholder_inside_a_shell_script_is_warned_about() {
        let warn = |t: &str| {
            CommandRunnerBuilder::new(t)
                .build()
                .unwrap()
                .shell_warning()
        };
        let w = warn("sh -c 'my-agent {task}'").expect("task text in a script");
        assert!(w.contains("{task}") && w.contains("shell code"), "{w}");
        assert!(warn("/bin/bash -lc \"agent {prompt}\"").is_some());
        // As its own argument after the script, the text is data: no warning.
        assert!(warn("sh -c 'my-agent \"$1\"' _ {task}").is_none());
        assert!(warn("my-agent {task}").is_none());
        assert!(warn("sh -c 'echo {id}'").is_none());
    }
    use super::*;

    fn spec() -> TaskSpec {
        TaskSpec::new("T001", "do {id} $(rm -rf ~) -rf")
            .with_prompt("PROMPT")
            .with_task_file("/x/task.md")
    }

    #[test]
    fn placeholders_are_substituted_inside_single_arguments_once() {
        let r = CommandRunnerBuilder::new(
            "agent --id={id} -p {prompt} {task} 'file: {file}' n{attempt}",
        )
        .build()
        .unwrap();
        let argv = r.argv_for(&spec(), 3);
        assert_eq!(
            argv,
            [
                "agent",
                "--id=T001",
                "-p",
                "PROMPT",
                "do {id} $(rm -rf ~) -rf",
                "file: /x/task.md",
                "n3"
            ]
        );
    }

    #[test]
    fn double_braces_are_literal_and_unknown_placeholders_are_errors() {
        let r = CommandRunnerBuilder::new("awk '{{print}}' {x")
            .build()
            .unwrap();
        assert_eq!(r.argv_for(&spec(), 1), ["awk", "{print}", "{x"]);
        let err = CommandRunnerBuilder::new("agent {promt}")
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, CommandTemplateError::UnknownPlaceholder { name, .. } if name == "promt"),
            "{err}"
        );
        assert!(
            err.to_string().contains("unknown placeholder `{promt}`"),
            "{err}"
        );
        assert!(matches!(
            CommandRunnerBuilder::new("agent 'unbalanced").build(),
            Err(CommandTemplateError::UnbalancedQuotes { .. })
        ));
        assert_eq!(
            CommandRunnerBuilder::new("   ").build().unwrap_err(),
            CommandTemplateError::Empty
        );
        assert!(matches!(
            CommandRunnerBuilder::new("{prompt} x").build(),
            Err(CommandTemplateError::PlaceholderProgram { .. })
        ));
    }

    #[test]
    fn nul_bytes_in_task_text_do_not_break_the_spawn() {
        let r = CommandRunnerBuilder::new("agent {task}").build().unwrap();
        let t = TaskSpec::new("a", "x\0y");
        assert_eq!(r.argv_for(&t, 1)[1], "x\u{fffd}y");
    }
}
