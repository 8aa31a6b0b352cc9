//! The catalogue of built-in runners: [`PresetKind`], [`PresetOptions`] and
//! [`build`], which finds the agent CLI before any task starts.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use super::agent::{AgentRunner, Cli};
use super::{DemoRunner, ShellRunner, claude, codex, gemini};
use crate::error::RunnerSetupError;
use crate::runner::SubagentRunner;

/// The built-in runners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PresetKind {
    /// Claude Code: `claude -p … --output-format stream-json --verbose`.
    Claude,
    /// OpenAI Codex CLI: `codex exec --json …`.
    Codex,
    /// Gemini CLI: `gemini --prompt=… --output-format stream-json`.
    Gemini,
    /// A task that is one inline code span runs with `sh -c` (opt-in).
    Shell,
    /// The stand-in agent of `mdbatch demo` (no process, nothing installed).
    Demo,
}

impl PresetKind {
    /// Every kind, in display order.
    pub const ALL: [PresetKind; 5] = [
        PresetKind::Claude,
        PresetKind::Codex,
        PresetKind::Gemini,
        PresetKind::Shell,
        PresetKind::Demo,
    ];

    /// The runner's name (`claude`, `codex`, …), as in `--runner`.
    pub fn name(self) -> &'static str {
        match self {
            PresetKind::Claude => "claude",
            PresetKind::Codex => "codex",
            PresetKind::Gemini => "gemini",
            PresetKind::Shell => "shell",
            PresetKind::Demo => "demo",
        }
    }

    /// The agent CLI's program name, for the three agent presets.
    pub fn program(self) -> Option<&'static str> {
        match self {
            PresetKind::Claude => Some("claude"),
            PresetKind::Codex => Some("codex"),
            PresetKind::Gemini => Some("gemini"),
            _ => None,
        }
    }

    /// How to install the CLI, for messages.
    pub fn install_hint(self) -> Option<&'static str> {
        match self {
            PresetKind::Claude => Some("npm install -g @anthropic-ai/claude-code"),
            PresetKind::Codex => Some("npm install -g @openai/codex"),
            PresetKind::Gemini => Some("npm install -g @google/gemini-cli"),
            _ => None,
        }
    }
}

impl fmt::Display for PresetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PresetKind {
    type Err = RunnerSetupError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PresetKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| RunnerSetupError::UnknownPreset(s.to_string()))
    }
}

/// Settings of a preset; `Default` gives the documented defaults.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PresetOptions {
    /// The CLI to run (default: the preset's program looked up on `PATH`).
    pub program: Option<PathBuf>,
    /// `--model` for the CLI.
    pub model: Option<String>,
    /// The turn budget of a first attempt (`--max-turns` for claude); a
    /// turn-limit retry doubles it.
    pub max_turns: Option<u32>,
    /// Extra arguments passed to the CLI before the prompt (`--agent-arg`).
    pub agent_args: Vec<String>,
    /// Claude Code's `--permission-mode`. Default `acceptEdits`: file edits
    /// inside the working folder are allowed, shell commands and anything
    /// else that asks for permission are refused (print mode cannot ask), so
    /// an agent can do ordinary coding work but cannot run arbitrary
    /// commands unless you pass e.g. `--agent-arg=--allowedTools=Bash(cargo test:*)`
    /// or choose `bypassPermissions` yourself.
    pub permission_mode: Option<String>,
    /// Codex's `--sandbox` (default `workspace-write`: writes inside the
    /// working folder, no network).
    pub sandbox: Option<String>,
    /// Gemini CLI's `--approval-mode` (default `yolo`: headless Gemini only
    /// registers its write tools in that mode).
    pub approval_mode: Option<String>,
    /// Extra environment variables for the CLI.
    pub env: Vec<(String, String)>,
}

/// Builds a built-in runner.
///
/// For `claude`, `codex` and `gemini` the CLI must be found (on `PATH`, or at
/// [`PresetOptions::program`]); otherwise the error says how to install it,
/// before any task starts.
pub fn build(
    kind: PresetKind,
    opts: PresetOptions,
) -> Result<Arc<dyn SubagentRunner>, RunnerSetupError> {
    let program = || resolve_program(kind, &opts);
    Ok(match kind {
        PresetKind::Claude => Arc::new(AgentRunner::new(
            claude::Claude {
                permission_mode: or_default(&opts.permission_mode, claude::DEFAULT_PERMISSION_MODE),
            },
            Cli::new(&program()?, &opts),
        )),
        PresetKind::Codex => Arc::new(AgentRunner::new(
            codex::Codex {
                sandbox: or_default(&opts.sandbox, codex::DEFAULT_SANDBOX),
            },
            Cli::new(&program()?, &opts),
        )),
        PresetKind::Gemini => Arc::new(AgentRunner::new(
            gemini::Gemini {
                approval_mode: or_default(&opts.approval_mode, gemini::DEFAULT_APPROVAL_MODE),
            },
            Cli::new(&program()?, &opts),
        )),
        PresetKind::Shell => Arc::new(ShellRunner::new()),
        PresetKind::Demo => Arc::new(DemoRunner::new()),
    })
}

/// A preset's own setting, or its default.
fn or_default(setting: &Option<String>, default: &str) -> String {
    setting.clone().unwrap_or_else(|| default.to_string())
}

fn resolve_program(kind: PresetKind, opts: &PresetOptions) -> Result<PathBuf, RunnerSetupError> {
    let name = kind.program().unwrap_or("sh");
    let path_env = opts
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| OsString::from(v))
        .or_else(|| std::env::var_os("PATH"));
    let found = match &opts.program {
        Some(p) if p.components().count() > 1 => p.is_file().then(|| p.clone()),
        Some(p) => find_on_path(&p.to_string_lossy(), path_env.as_deref()),
        None => find_on_path(name, path_env.as_deref()),
    };
    found.ok_or_else(|| RunnerSetupError::ProgramNotFound {
        program: opts
            .program
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| name.to_string()),
        on_path: opts.program.is_none(),
        install: kind.install_hint().unwrap_or("").to_string(),
    })
}

/// Looks `name` up on `path` (a `PATH` value) like a shell would.
pub(crate) fn find_on_path(name: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = path?;
    std::env::split_paths(path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_cli_is_a_setup_error_naming_the_install_command() {
        let mut o = PresetOptions::default();
        o.env
            .push(("PATH".into(), "/nonexistent-mdbatch-dir".into()));
        let Err(e) = build(PresetKind::Claude, o) else {
            panic!("expected an error")
        };
        let msg = e.to_string();
        assert!(msg.contains("`claude` was not found on PATH"), "{msg}");
        assert!(
            msg.contains("npm install -g @anthropic-ai/claude-code"),
            "{msg}"
        );
    }
}
