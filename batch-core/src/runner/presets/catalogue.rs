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

/// Settings of a preset; `Default` (or [`PresetOptions::new`]) gives the
/// documented defaults; set fields with the `with_*` methods.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PresetOptions {
    /// The CLI to run: a path, or a name looked up on `PATH` (default: the
    /// preset's program, e.g. `claude`).
    pub program: Option<PathBuf>,
    /// The model the CLI is asked to use (default: the CLI's own choice).
    pub model: Option<String>,
    /// The turn budget of a first attempt (Claude Code only); a turn-limit
    /// retry doubles it.
    pub max_turns: Option<u32>,
    /// Extra arguments passed to the CLI before the prompt.
    pub agent_args: Vec<String>,
    /// Claude Code's permission mode. Default `acceptEdits`: file edits
    /// inside the working folder are allowed, shell commands and anything
    /// else that asks for permission are refused (print mode cannot ask), so
    /// an agent can do ordinary coding work but cannot run arbitrary
    /// commands unless its arguments allow some (e.g.
    /// `--allowedTools=Bash(cargo test:*)`) or you choose `bypassPermissions`.
    pub permission_mode: Option<String>,
    /// Codex's sandbox (default `workspace-write`: writes inside the
    /// working folder, no network).
    pub sandbox: Option<String>,
    /// Gemini CLI's approval mode (default `yolo`: headless Gemini only
    /// registers its write tools in that mode).
    pub approval_mode: Option<String>,
    /// Extra environment variables for the CLI (a `PATH` here is also where
    /// the program is looked up).
    pub env: Vec<(String, String)>,
}

impl PresetOptions {
    /// The documented defaults (the same as `Default`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an environment variable for the CLI.
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets [`PresetOptions::program`]: the CLI to run.
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// Sets [`PresetOptions::model`]: the model.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets [`PresetOptions::max_turns`]: the first attempt's turn budget.
    pub fn with_max_turns(mut self, max_turns: u32) -> Self {
        self.max_turns = Some(max_turns);
        self
    }

    /// Sets [`PresetOptions::agent_args`]: extra CLI arguments.
    pub fn with_agent_args<I, S>(mut self, agent_args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.agent_args = agent_args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`PresetOptions::permission_mode`]: Claude Code's permission mode.
    pub fn with_permission_mode(mut self, permission_mode: impl Into<String>) -> Self {
        self.permission_mode = Some(permission_mode.into());
        self
    }

    /// Sets [`PresetOptions::sandbox`]: Codex's sandbox.
    pub fn with_sandbox(mut self, sandbox: impl Into<String>) -> Self {
        self.sandbox = Some(sandbox.into());
        self
    }

    /// Sets [`PresetOptions::approval_mode`]: Gemini CLI's approval mode.
    pub fn with_approval_mode(mut self, approval_mode: impl Into<String>) -> Self {
        self.approval_mode = Some(approval_mode.into());
        self
    }
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
        let o = PresetOptions::new().with_env("PATH", "/nonexistent-mdbatch-dir");
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
