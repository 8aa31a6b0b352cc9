//! Every error type of the crate, re-exported at the root.
//!
//! Two families:
//! - [`Diagnostic`] / [`Diagnostics`]: problems *in a task file* (parse, hint,
//!   plan), each at `path:line:col`, collected so `mdbatch check` can report
//!   them all at once.
//! - [`RunError`] (what one subagent attempt returned, its [`ErrorKind`] drives
//!   retries) and [`RunSetupError`] (why a run could not start at all).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Severity {
    /// Worth a look; the plan is still made.
    Warning,
    /// The file cannot be planned or run until this is fixed.
    Error,
}

/// One problem found in a task file, at a place in it.
///
/// `Display` renders it compiler-style:
///
/// ```text
/// error: unknown hint key `paralel`
///   --> task.md:12:6
///    |
/// 12 | <!-- paralel: false -->
///    |      ^
///    = help: did you mean `parallel`?
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file, as given by the caller (`None` for text parsed from memory).
    pub path: Option<PathBuf>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
    /// What is wrong: a lowercase fragment without a final period.
    pub message: String,
    /// What to do about it, when there is something to suggest.
    pub help: Option<String>,
    /// The source line the problem is on (without its line end), for the caret display.
    pub source_line: String,
}

impl Diagnostic {
    /// A new error at `line:col` with no help and no source line.
    pub fn error(line: usize, col: usize, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            path: None,
            line,
            col,
            message: message.into(),
            help: None,
            source_line: String::new(),
        }
    }

    /// A new warning at `line:col` with no help and no source line.
    pub fn warning(line: usize, col: usize, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(line, col, message)
        }
    }

    /// Adds what the user should do.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the source line shown under the location.
    pub fn with_source_line(mut self, line: impl Into<String>) -> Self {
        self.source_line = line.into();
        self
    }

    /// Sets the file the diagnostic is in.
    pub fn with_path(mut self, path: Option<PathBuf>) -> Self {
        self.path = path;
        self
    }

    /// `path:line:col` (or `<input>:line:col`).
    pub fn location(&self) -> String {
        let path = self
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<input>".to_string());
        format!("{path}:{}:{}", self.line, self.col)
    }

    /// Whether this diagnostic is an error (and not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(f, "{label}: {}", self.message)?;
        let num = self.line.to_string();
        let pad = " ".repeat(num.len());
        writeln!(f, "{pad}--> {}", self.location())?;
        if !self.source_line.is_empty() {
            // Long lines (a 100 KB heading) are cut around the column.
            let chars: Vec<char> = self.source_line.chars().collect();
            let col0 = self.col.saturating_sub(1).min(chars.len());
            let start = col0.saturating_sub(60);
            let end = (col0 + 60).min(chars.len());
            let shown: String = chars[start..end].iter().collect();
            let lead = if start > 0 { "…" } else { "" };
            let caret_at = col0 - start + lead.chars().count();
            writeln!(f, "{pad} |")?;
            writeln!(
                f,
                "{num} | {lead}{shown}{}",
                if end < chars.len() { "…" } else { "" }
            )?;
            writeln!(f, "{pad} | {}^", " ".repeat(caret_at))?;
        }
        if let Some(help) = &self.help {
            writeln!(f, "{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in one file; the error type of parsing and planning.
///
/// Holds at least one [`Severity::Error`] when returned as an `Err`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_all(.0))]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// The number of errors (not warnings).
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }
}

fn render_all(all: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in all {
        out.push_str(&d.to_string());
    }
    out.truncate(out.trim_end().len());
    out
}

/// The kind of a failed attempt; it decides whether and how to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Rate limit, overload, network: try again later (may carry a retry-after).
    Transient,
    /// mdbatch stopped the subagent at its deadline.
    Timeout,
    /// The prompt or conversation no longer fits the model's context.
    ContextOverflow,
    /// The agent ran out of turns before finishing.
    TurnLimit,
    /// The subagent ran and reported failure, or exited non-zero.
    Failed,
    /// Authentication, a missing binary, bad configuration: never retried.
    Fatal,
    /// The run was cancelled (Ctrl-C) while the attempt ran.
    Cancelled,
    /// The task's change no longer applies on top of the work landed
    /// meanwhile, or fails verify only once merged with it (worktree
    /// isolation): retried from the new head with the collision in the prompt.
    Conflict,
}

impl ErrorKind {
    /// The snake_case name used in JSON and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ContextOverflow => "context_overflow",
            ErrorKind::TurnLimit => "turn_limit",
            ErrorKind::Failed => "failed",
            ErrorKind::Fatal => "fatal",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Conflict => "conflict",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a failed subagent attempt returns.
///
/// The [`kind`](RunError::kind) drives the retry policy; `retry_after` (from a
/// rate-limit response) overrides the backoff; `rate_limited` tells the
/// executor the *account* is limited, so every launch pauses, not just this
/// task's.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}")]
#[non_exhaustive]
pub struct RunError {
    /// What went wrong, in the terms the retry policy understands.
    pub kind: ErrorKind,
    /// A human-readable one-line description.
    pub message: String,
    /// How long the provider asked us to wait, when it said.
    pub retry_after: Option<Duration>,
    /// The account (not just this task) is rate limited or the API overloaded.
    pub rate_limited: bool,
    /// The agent session this attempt ran in, when known (for resuming).
    pub session_id: Option<String>,
    /// The last lines of the attempt's output, for the next attempt's prompt.
    pub output_tail: Option<String>,
    /// Tokens and cost the failed attempt used, when the agent reported them.
    /// (Boxed to keep `RunError` small in `Result`s.)
    pub usage: Option<Box<crate::usage::Usage>>,
    /// The underlying error, if any.
    #[source]
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl RunError {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
            rate_limited: false,
            session_id: None,
            output_tail: None,
            usage: None,
            source: None,
        }
    }

    /// The kind that drives retries.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Sets the provider's retry-after.
    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }

    /// Marks the account as rate limited (pauses every launch).
    pub fn rate_limited(mut self, yes: bool) -> Self {
        self.rate_limited = yes;
        self
    }

    /// Records the agent session id.
    pub fn with_session(mut self, session: Option<String>) -> Self {
        self.session_id = session;
        self
    }

    /// Records the tail of the attempt's output.
    pub fn with_output_tail(mut self, tail: Option<String>) -> Self {
        self.output_tail = tail;
        self
    }

    /// Records the tokens and cost the attempt used.
    pub fn with_usage(mut self, usage: Option<crate::usage::Usage>) -> Self {
        self.usage = usage.map(Box::new);
        self
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }
}

/// Why a run could not start, or stopped as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunSetupError {
    /// The task file has errors.
    #[error(transparent)]
    Invalid(#[from] Diagnostics),
    /// The task file could not be read or is not writable, or the state
    /// folder could not be used. [`RunSetupError::io_kind`] gives the
    /// [`std::io::ErrorKind`] (`NotFound` for a missing task file).
    #[error("{}: {message}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// What was being done.
        message: String,
        /// The cause.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// Another mdbatch run holds the lock on this task file.
    #[error("{}: locked by another mdbatch run (pid {pid}); wait for it to finish or stop it", path.display())]
    Locked {
        /// The task file.
        path: PathBuf,
        /// The holder's pid, as recorded in the lock file (0 when unknown).
        pid: u32,
    },
    /// The options are inconsistent.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The runner could not be set up (bad template, agent CLI not installed).
    #[error(transparent)]
    Runner(#[from] RunnerSetupError),
    /// The state could not be used (the journal, the write-back).
    #[error(transparent)]
    Store(StoreError),
    /// Worktree isolation cannot start (not a git repository, detached HEAD, git too old).
    #[cfg(feature = "exec")]
    #[error(transparent)]
    Isolate(#[from] crate::exec::IsolateError),
    /// `verify:` hints hold commands that appeared or changed since the user
    /// last ran this file (an agent may have written them); see
    /// [`RunOptions::trust_verify`](crate::RunOptions::trust_verify).
    #[cfg(feature = "exec")]
    #[error(
        "{}: {} not run before and not approved:{}\nreview {}, then run again with --trust-verify to approve {}",
        path.display(),
        if commands.len() == 1 { "a verify command was" } else { "verify commands were" },
        commands.iter().map(|c| format!("\n  line {}, task `{}`: {}", c.line, c.id, c.command)).collect::<String>(),
        if commands.len() == 1 { "it" } else { "them" },
        if commands.len() == 1 { "it" } else { "them" }
    )]
    UnapprovedVerify {
        /// The task file.
        path: PathBuf,
        /// Each command, with its task.
        commands: Vec<crate::exec::UnapprovedVerify>,
    },
    /// A `launcher-arg:` hint in the task file (which agents can write) asks
    /// the cluster launcher for more than where and with what resources a
    /// job runs: a prolog, an output file, another folder.
    #[error(
        "{}:{line}:{col}: launcher-arg: {arg}: refused: {why} (give it on the command line with --launcher-arg if you mean it)",
        path.display()
    )]
    RefusedLauncherHint {
        /// The task file.
        path: PathBuf,
        /// 1-based line of the hint's task or section (0: the document's).
        line: usize,
        /// 1-based column.
        col: usize,
        /// The argument.
        arg: String,
        /// Why it is refused.
        why: String,
    },
}

impl RunSetupError {
    /// The I/O error kind, when the run could not start because of I/O
    /// (`NotFound` for a task file that does not exist).
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            RunSetupError::Io { source, .. } => Some(source.kind()),
            RunSetupError::Store(StoreError::Io { source, .. }) => Some(source.kind()),
            _ => None,
        }
    }
}

impl From<StoreError> for RunSetupError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Io {
                path,
                message,
                source,
            } => RunSetupError::Io {
                path,
                message,
                source,
            },
            other => RunSetupError::Store(other),
        }
    }
}

impl From<ReadError> for RunSetupError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io { path, source } => RunSetupError::Io {
                path,
                message: "cannot read the task file".into(),
                source,
            },
            ReadError::Invalid(d) => RunSetupError::Invalid(d),
        }
    }
}

/// Run options that contradict each other or make no sense. The messages
/// name the setting, not a command-line flag: a front end adds its own
/// wording (the CLI says `--jobs must be at least 1`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// `jobs` is zero.
    #[error("the number of parallel jobs must be at least 1")]
    ZeroJobs,
    /// `timeout` is zero.
    #[error("the timeout must be more than zero (leave it unset for no timeout)")]
    ZeroTimeout,
    /// Neither a runner nor a command template was given.
    #[error("no runner: give a command template or a runner")]
    NoRunner,
    /// A document parsed from memory (no path) is to have its boxes written back.
    #[error(
        "the document has no path to write its boxes back to: give it one \
         (ParseOptions::with_path) or turn write-back off"
    )]
    WriteBackWithoutPath,
    /// A document parsed from memory (no path) is to keep its state beside its file.
    #[error(
        "the document has no path to keep its state beside: choose a state \
         folder (StateDir::At) or none (StateDir::Off)"
    )]
    StateBesideWithoutPath,
}

/// Why a built-in runner could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerSetupError {
    /// The command template is not usable.
    #[error(transparent)]
    Command(#[from] CommandTemplateError),
    /// The agent CLI of a preset is not installed.
    #[error("`{program}` was not found{}; install it ({install}) or check with `mdbatch doctor`", if *.on_path { " on PATH" } else { "" })]
    ProgramNotFound {
        /// The program as given or looked up.
        program: String,
        /// Whether it was looked up on `PATH` (rather than given as a path).
        on_path: bool,
        /// How to install it.
        install: String,
    },
    /// The name is not a built-in runner.
    #[error("unknown runner `{0}`; expected claude, codex, gemini, shell or demo")]
    UnknownPreset(String),
}

/// A command template (`my-agent --task {task}`) that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandTemplateError {
    /// A quote is not closed.
    #[error("command template `{template}`: unbalanced quotes")]
    UnbalancedQuotes {
        /// The template.
        template: String,
    },
    /// The template has no words.
    #[error("the command template is empty; give a command such as `my-agent {{prompt}}`")]
    Empty,
    /// A `{word}` that is not a placeholder.
    #[error(
        "command template `{template}`: unknown placeholder `{{{name}}}`; known: {known}; write `{{{{` for a literal brace"
    )]
    UnknownPlaceholder {
        /// The template.
        template: String,
        /// The placeholder's name.
        name: String,
        /// The known placeholders, for the message.
        known: String,
    },
    /// The program is a placeholder.
    #[error("command template `{template}`: the program name cannot be a placeholder")]
    PlaceholderProgram {
        /// The template.
        template: String,
    },
}

/// Why a task file could not be read into a [`Document`](crate::Document).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be read (`NotFound`, permissions, …).
    #[error("{}: cannot read the file: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause; match on `source.kind()`.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The file has errors.
    #[error(transparent)]
    Invalid(#[from] Diagnostics),
}

impl ReadError {
    /// The I/O error kind, when the file could not be read.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            ReadError::Io { source, .. } => Some(source.kind()),
            ReadError::Invalid(_) => None,
        }
    }

    /// The diagnostics, when the file was read but has errors.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            ReadError::Invalid(d) => Some(d),
            ReadError::Io { .. } => None,
        }
    }
}

/// No task file where one was looked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FindError {
    /// Neither `task.md` nor `tasks.md` is in the folder.
    #[error("no task.md or tasks.md in {}", dir.display())]
    NoTaskFile {
        /// The folder searched.
        dir: PathBuf,
    },
}

/// A duration that cannot be read (`90s`, `30m`, `1h30m` are fine).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Nothing was given.
    #[error("empty duration; write e.g. `90s`, `30m` or `1h`")]
    Empty,
    /// Not a number followed by a unit.
    #[error("bad duration `{0}`; write e.g. `90s`, `30m` or `1h`")]
    Malformed(String),
    /// A unit other than ms, s, m, h.
    #[error("bad duration unit `{unit}` in `{text}`; use ms, s, m or h")]
    Unit {
        /// The unit found.
        unit: String,
        /// The whole text.
        text: String,
    },
    /// Negative, infinite or absurdly long.
    #[error("duration `{0}` is out of range")]
    OutOfRange(String),
}

/// A problem reading or writing mdbatch's state (task file write-back, journal, lock).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O operation failed.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What was being done.
        message: String,
        /// The cause.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The task could no longer be found in the file (the user deleted or rewrote it).
    #[error("{}: task `{id}` is no longer in the file; its box was not checked", path.display())]
    TaskGone {
        /// The task file.
        path: PathBuf,
        /// The task id.
        id: String,
    },
    /// The bytes at the task's marker were not `[ ]`.
    #[error("{}: task `{id}`: expected `[ ]` at line {line}, found `{found}`; left untouched", path.display())]
    MarkerMismatch {
        /// The task file.
        path: PathBuf,
        /// The task id.
        id: String,
        /// 1-based line of the marker.
        line: usize,
        /// What was found there.
        found: String,
    },
    /// The task's text changed during the run: the work that ran was for
    /// other text, so its box is left open.
    #[error("{}: the text of task `{id}` changed while it ran; its box was not checked (it runs again next time)", path.display())]
    TextChanged {
        /// The task file.
        path: PathBuf,
        /// The task id.
        id: String,
    },
    /// Several open tasks now have the text of the task that ran (one was
    /// added during the run): mdbatch cannot tell which box is its.
    #[error("{}: {count} tasks now have the text of task `{id}`; none was checked (check the right one by hand)", path.display())]
    Ambiguous {
        /// The task file.
        path: PathBuf,
        /// The task id.
        id: String,
        /// How many tasks have that text.
        count: usize,
    },
    /// The task file no longer parses.
    #[error("{}: the file no longer parses; boxes were not checked", path.display())]
    Unparsable {
        /// The task file.
        path: PathBuf,
    },
}

impl StoreError {
    /// An I/O error at `path` while doing `message`.
    pub fn io(
        path: impl Into<PathBuf>,
        message: impl Into<String>,
        source: std::io::Error,
    ) -> Self {
        StoreError::Io {
            path: path.into(),
            message: message.into(),
            source: Arc::new(source),
        }
    }
}
