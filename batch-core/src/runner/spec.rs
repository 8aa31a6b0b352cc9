//! The data a runner receives and returns: plain data, no runtime, so that
//! the event schema and the prompt can use it without the `exec` feature.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::usage::Usage;

/// How many lines of output an attempt's tail keeps
/// ([`TaskOutput::output_tail`], [`RunError::output_tail`](crate::RunError::output_tail));
/// a display that keeps a tail per task can use the same number.
pub const OUTPUT_TAIL_LINES: usize = 40;

/// Everything a runner needs to know about one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskSpec {
    /// The task id.
    pub id: String,
    /// The task text (first paragraph).
    pub text: String,
    /// The rest of the list item.
    pub details: String,
    /// Section titles from the outermost heading down.
    pub section_path: Vec<String>,
    /// The document preamble.
    pub preamble: String,
    /// The composed prompt (see [`PromptTemplate`](crate::PromptTemplate)).
    pub prompt: String,
    /// The task file.
    pub task_file: PathBuf,
    /// The folder the subagent runs in.
    pub workdir: PathBuf,
    /// The command to run after success before the box is checked (`verify:` / `--verify`).
    pub verify: Option<String>,
}

impl TaskSpec {
    /// A spec with just an id and text (tests, embedders); everything else empty.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            id: id.into(),
            prompt: text.clone(),
            text,
            details: String::new(),
            section_path: Vec::new(),
            preamble: String::new(),
            task_file: PathBuf::new(),
            workdir: PathBuf::from("."),
            verify: None,
        }
    }
}

impl TaskSpec {
    /// Sets [`TaskSpec::details`]: the rest of the list item.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// Sets [`TaskSpec::section_path`]: the section titles.
    pub fn with_section_path<I, S>(mut self, section_path: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.section_path = section_path.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`TaskSpec::preamble`]: the document preamble.
    pub fn with_preamble(mut self, preamble: impl Into<String>) -> Self {
        self.preamble = preamble.into();
        self
    }

    /// Sets [`TaskSpec::prompt`]: the composed prompt.
    pub fn with_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = prompt.into();
        self
    }

    /// Sets [`TaskSpec::task_file`]: the task file.
    pub fn with_task_file(mut self, task_file: impl Into<PathBuf>) -> Self {
        self.task_file = task_file.into();
        self
    }

    /// Sets [`TaskSpec::workdir`]: the folder the subagent runs in.
    pub fn with_workdir(mut self, workdir: impl Into<PathBuf>) -> Self {
        self.workdir = workdir.into();
        self
    }

    /// Sets [`TaskSpec::verify`]: the command to run after success.
    pub fn with_verify(mut self, verify: impl Into<String>) -> Self {
        self.verify = Some(verify.into());
        self
    }
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// `$MDBATCH_PROGRESS_FILE`.
    ProgressFile,
    /// Reported by the runner itself.
    Runner,
}

/// A live progress item from a running subagent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Progress {
    /// A line of output.
    Output {
        /// Where it came from.
        stream: Stream,
        /// The line, without its line end, invalid UTF-8 replaced, overlong lines cut.
        line: String,
    },
    /// The agent called a tool.
    ToolCall {
        /// Tool name (`Write`, `Bash`, `command_execution`, …).
        tool: String,
        /// Its main argument (a path, a command), shortened.
        arg: Option<String>,
    },
    /// Assistant text (shortened).
    Message {
        /// The text.
        text: String,
    },
    /// The agent's session id is known.
    Session {
        /// The id.
        id: String,
    },
    /// The agent retries an API error itself.
    ApiRetry {
        /// Its attempt number.
        attempt: u32,
        /// HTTP status, when known.
        status: Option<u16>,
        /// Its delay before retrying.
        delay_ms: Option<u64>,
        /// The error text.
        error: Option<String>,
    },
    /// Usage reported so far.
    Usage {
        /// The numbers.
        usage: Usage,
    },
    /// The runner changed something for this attempt (a resumed session, more turns, …).
    Adjusted {
        /// What changed, human-readable.
        what: String,
    },
    /// The subagent process started.
    Spawned {
        /// Its pid.
        pid: u32,
    },
}

/// An item sent through a [`ProgressSink`](crate::ProgressSink).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProgressItem {
    /// The task id.
    pub task_id: String,
    /// The attempt number (1-based).
    pub attempt: u32,
    /// What happened.
    pub progress: Progress,
}

/// What a successful attempt returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskOutput {
    /// A one-line summary (the agent's final answer, shortened).
    pub summary: Option<String>,
    /// The agent session, when known.
    pub session_id: Option<String>,
    /// Token and cost accounting, when known.
    pub usage: Option<Usage>,
    /// The last lines of output.
    pub output_tail: Option<String>,
}

impl TaskOutput {
    /// An output with nothing set (the same as `Default`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`TaskOutput::summary`]: a one-line summary.
    pub fn with_summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }

    /// Sets [`TaskOutput::session_id`]: the agent session.
    pub fn with_session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Sets [`TaskOutput::usage`]: tokens and cost.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Sets [`TaskOutput::output_tail`]: the last lines of output.
    pub fn with_output_tail(mut self, output_tail: impl Into<String>) -> Self {
        self.output_tail = Some(output_tail.into());
        self
    }
}
