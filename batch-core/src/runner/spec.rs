//! The data a runner receives and returns: plain data, no runtime, so that
//! the event schema and the prompt can use it without the `exec` feature.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::usage::Usage;

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
