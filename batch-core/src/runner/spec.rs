//! The data a runner receives and returns: plain data, no runtime, so that
//! the event schema and the prompt can use it without the `exec` feature.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

pub use crate::usage::Usage;

/// How many lines of output an attempt's tail keeps
/// ([`TaskOutput::output_tail`], [`RunError::output_tail`](crate::RunError::output_tail));
/// a display that keeps a tail per task can use the same number.
pub const OUTPUT_TAIL_LINES: usize = 40;

/// Everything a runner needs to know about one task.
///
/// Read it through its methods. A spec is cheap to clone: the fields shared
/// by every task of a run (preamble, task file, working folder, section
/// titles) are shared, not copied, and the prompt is composed only when a
/// runner asks for it ([`prompt`](Self::prompt)), once per spec.
///
/// ```
/// use batch_core::TaskSpec;
///
/// let spec = TaskSpec::new("T1", "write the parser").with_details("- in Rust");
/// assert_eq!(spec.id(), "T1");
/// assert_eq!(spec.details(), "- in Rust");
/// // A spec made with `new` has the task text as its prompt until one is set.
/// assert_eq!(spec.prompt(), "write the parser");
/// ```
#[derive(Clone, Deserialize)]
#[serde(from = "SpecFields")]
#[non_exhaustive]
pub struct TaskSpec {
    id: Arc<str>,
    text: Arc<str>,
    details: Arc<str>,
    section_path: Arc<[String]>,
    preamble: Arc<str>,
    task_file: Arc<Path>,
    workdir: Arc<Path>,
    verify: Option<Arc<str>>,
    prompt: Prompt,
}

/// Where a spec's prompt comes from.
#[derive(Clone)]
enum Prompt {
    /// The task text ([`TaskSpec::new`]).
    Text,
    /// Set outright ([`TaskSpec::with_prompt`]).
    Given(String),
    /// Composed from a template over the spec's fields when first asked for.
    #[cfg_attr(
        not(feature = "exec"),
        expect(dead_code, reason = "the executor makes specs of a template")
    )]
    Template {
        template: Arc<SpecTemplate>,
        rendered: OnceLock<String>,
    },
}

/// The template of the specs of one run.
#[derive(Debug)]
pub(crate) struct SpecTemplate {
    template: super::PromptTemplate,
    /// The template bound to the run's task file, working folder and
    /// preamble: it renders the specs that still hold those very values
    /// (the same allocations), faster and to the same text.
    #[cfg(feature = "exec")]
    bound: Option<Bound>,
}

#[cfg(feature = "exec")]
#[derive(Debug)]
struct Bound {
    template: super::prompt::BoundTemplate,
    task_file: Arc<Path>,
    workdir: Arc<Path>,
    preamble: Arc<str>,
}

impl SpecTemplate {
    /// `template`, rendering faster the specs that share this `task_file`,
    /// `workdir` and `preamble` (see [`TaskSpec::from_shared`]).
    #[cfg(feature = "exec")]
    pub(crate) fn bound(
        template: super::PromptTemplate,
        task_file: Arc<Path>,
        workdir: Arc<Path>,
        preamble: Arc<str>,
    ) -> Arc<Self> {
        let bound = template.bind(&task_file, &workdir, &preamble);
        Arc::new(Self {
            template,
            bound: Some(Bound {
                template: bound,
                task_file,
                workdir,
                preamble,
            }),
        })
    }

    fn render(&self, spec: &TaskSpec) -> String {
        #[cfg(feature = "exec")]
        if let Some(b) = &self.bound
            && Arc::ptr_eq(&b.task_file, &spec.task_file)
            && Arc::ptr_eq(&b.workdir, &spec.workdir)
            && Arc::ptr_eq(&b.preamble, &spec.preamble)
        {
            return b.template.render(spec);
        }
        self.template.render(spec)
    }
}

/// The fields of a spec made of shared parts (see [`TaskSpec::from_shared`]).
#[cfg(feature = "exec")]
pub(crate) struct SharedFields {
    pub(crate) id: Arc<str>,
    pub(crate) text: Arc<str>,
    pub(crate) details: Arc<str>,
    pub(crate) section_path: Arc<[String]>,
    pub(crate) preamble: Arc<str>,
    pub(crate) task_file: Arc<Path>,
    pub(crate) workdir: Arc<Path>,
    pub(crate) verify: Option<Arc<str>>,
}

impl TaskSpec {
    /// A spec with just an id and text (tests, embedders); everything else
    /// empty, the working folder `.`, and the text as its prompt.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: Arc::from(id.into()),
            text: Arc::from(text.into()),
            details: Arc::from(""),
            section_path: Arc::from(Vec::new()),
            preamble: Arc::from(""),
            task_file: Arc::from(Path::new("")),
            workdir: Arc::from(Path::new(".")),
            verify: None,
            prompt: Prompt::Text,
        }
    }

    /// A spec of shared parts whose prompt `template` composes when asked.
    #[cfg(feature = "exec")]
    pub(crate) fn from_shared(fields: SharedFields, template: Arc<SpecTemplate>) -> Self {
        let SharedFields {
            id,
            text,
            details,
            section_path,
            preamble,
            task_file,
            workdir,
            verify,
        } = fields;
        Self {
            id,
            text,
            details,
            section_path,
            preamble,
            task_file,
            workdir,
            verify,
            prompt: Prompt::Template {
                template,
                rendered: OnceLock::new(),
            },
        }
    }

    /// The task id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The task id, shared.
    #[cfg(feature = "exec")]
    pub(crate) fn shared_id(&self) -> &Arc<str> {
        &self.id
    }

    /// The task text (first paragraph).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The rest of the list item.
    pub fn details(&self) -> &str {
        &self.details
    }

    /// Section titles from the outermost heading down.
    pub fn section_path(&self) -> &[String] {
        &self.section_path
    }

    /// The document preamble.
    pub fn preamble(&self) -> &str {
        &self.preamble
    }

    /// The composed prompt (see [`PromptTemplate`](crate::PromptTemplate)).
    ///
    /// A spec of a run (or of [`task_spec`](crate::task_spec)) composes it
    /// from its template and its other fields the first time it is asked
    /// for, and keeps it; a spec made with [`new`](Self::new) has its text
    /// as its prompt; [`with_prompt`](Self::with_prompt) sets it outright.
    pub fn prompt(&self) -> &str {
        match &self.prompt {
            Prompt::Text => &self.text,
            Prompt::Given(p) => p,
            Prompt::Template { template, rendered } => {
                rendered.get_or_init(|| template.render(self))
            }
        }
    }

    /// The task file.
    pub fn task_file(&self) -> &Path {
        &self.task_file
    }

    /// The folder the subagent runs in.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// The command to run after success before the box is checked (`verify:` / `--verify`).
    pub fn verify(&self) -> Option<&str> {
        self.verify.as_deref()
    }

    /// Forgets a prompt composed from the template (a run calls it when an
    /// attempt ends, so 100,000 finished tasks do not each keep theirs);
    /// [`prompt`](Self::prompt) composes the same text again if asked.
    #[cfg(feature = "exec")]
    pub(crate) fn forget_composed_prompt(&mut self) {
        self.changed();
    }

    /// A prompt composed from a template is composed again from the
    /// changed fields.
    fn changed(&mut self) {
        if let Prompt::Template { rendered, .. } = &mut self.prompt {
            *rendered = OnceLock::new();
        }
    }
}

/// The setters. A spec whose prompt is composed from a template composes it
/// from the new value (one whose prompt was set with
/// [`with_prompt`](TaskSpec::with_prompt), or made with
/// [`new`](TaskSpec::new), keeps it).
impl TaskSpec {
    /// Sets [`TaskSpec::details`]: the rest of the list item.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Arc::from(details.into());
        self.changed();
        self
    }

    /// Sets [`TaskSpec::section_path`]: the section titles.
    pub fn with_section_path<I, S>(mut self, section_path: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.section_path = section_path.into_iter().map(Into::into).collect();
        self.changed();
        self
    }

    /// Sets [`TaskSpec::preamble`]: the document preamble.
    pub fn with_preamble(mut self, preamble: impl Into<String>) -> Self {
        self.preamble = Arc::from(preamble.into());
        self.changed();
        self
    }

    /// Sets [`TaskSpec::prompt`]: the composed prompt.
    pub fn with_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = Prompt::Given(prompt.into());
        self
    }

    /// Sets [`TaskSpec::task_file`]: the task file.
    pub fn with_task_file(mut self, task_file: impl Into<PathBuf>) -> Self {
        self.task_file = Arc::from(task_file.into());
        self.changed();
        self
    }

    /// Sets [`TaskSpec::workdir`]: the folder the subagent runs in.
    pub fn with_workdir(mut self, workdir: impl Into<PathBuf>) -> Self {
        self.workdir = Arc::from(workdir.into());
        self.changed();
        self
    }

    /// Sets [`TaskSpec::verify`]: the command to run after success.
    pub fn with_verify(mut self, verify: impl Into<String>) -> Self {
        self.verify = Some(Arc::from(verify.into()));
        self
    }
}

impl fmt::Debug for TaskSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSpec")
            .field("id", &self.id())
            .field("text", &self.text())
            .field("details", &self.details())
            .field("section_path", &self.section_path())
            .field("preamble", &self.preamble())
            .field("prompt", &self.prompt())
            .field("task_file", &self.task_file())
            .field("workdir", &self.workdir())
            .field("verify", &self.verify())
            .finish()
    }
}

/// Specs are equal when every field is, the prompt included.
impl PartialEq for TaskSpec {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
            && self.text() == other.text()
            && self.details() == other.details()
            && self.section_path() == other.section_path()
            && self.preamble() == other.preamble()
            && self.task_file() == other.task_file()
            && self.workdir() == other.workdir()
            && self.verify() == other.verify()
            && self.prompt() == other.prompt()
    }
}

/// The JSON of a spec (the C interface's task JSON holds it): every field,
/// the prompt composed.
impl Serialize for TaskSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("TaskSpec", 9)?;
        s.serialize_field("id", self.id())?;
        s.serialize_field("text", self.text())?;
        s.serialize_field("details", self.details())?;
        s.serialize_field("section_path", self.section_path())?;
        s.serialize_field("preamble", self.preamble())?;
        s.serialize_field("prompt", self.prompt())?;
        s.serialize_field("task_file", self.task_file())?;
        s.serialize_field("workdir", self.workdir())?;
        s.serialize_field("verify", &self.verify())?;
        s.end()
    }
}

/// A spec's JSON, read back.
#[derive(Deserialize)]
struct SpecFields {
    id: String,
    text: String,
    details: String,
    section_path: Vec<String>,
    preamble: String,
    prompt: String,
    task_file: PathBuf,
    workdir: PathBuf,
    verify: Option<String>,
}

impl From<SpecFields> for TaskSpec {
    fn from(f: SpecFields) -> Self {
        Self {
            id: Arc::from(f.id),
            text: Arc::from(f.text),
            details: Arc::from(f.details),
            section_path: Arc::from(f.section_path),
            preamble: Arc::from(f.preamble),
            task_file: Arc::from(f.task_file),
            workdir: Arc::from(f.workdir),
            verify: f.verify.map(Arc::from),
            prompt: Prompt::Given(f.prompt),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_made_with_new_has_its_text_as_prompt_until_one_is_set() {
        let spec = TaskSpec::new("T1", "write it").with_details("more");
        assert_eq!(spec.prompt(), "write it");
        assert_eq!(spec.workdir(), Path::new("."));
        let spec = spec.with_prompt("the prompt").with_workdir("/w");
        assert_eq!(spec.prompt(), "the prompt");
        assert_eq!(spec.workdir(), Path::new("/w"));
    }

    #[test]
    fn the_json_of_a_spec_holds_every_field_in_order_and_reads_back_equal() {
        let spec = TaskSpec::new("T1", "write it")
            .with_details("d")
            .with_section_path(["A", "B"])
            .with_preamble("p")
            .with_prompt("the prompt")
            .with_task_file("/t/tasks.md")
            .with_workdir("/t")
            .with_verify("make");
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(
            json,
            r#"{"id":"T1","text":"write it","details":"d","section_path":["A","B"],"preamble":"p","prompt":"the prompt","task_file":"/t/tasks.md","workdir":"/t","verify":"make"}"#
        );
        let back: TaskSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
    }
}
