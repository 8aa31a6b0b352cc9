//! The task-file model: [`Document`], [`Task`], [`Section`], [`Wave`], [`Group`].
//!
//! Everything is stored in flat vectors and refers to other items by index
//! (`TaskIdx`, `SectionIdx`, …): a `Document` is plain data, cheap to clone,
//! serialisable, and free of lifetimes.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Diagnostic;

/// Index of a task in [`Document::tasks`].
pub type TaskIdx = usize;
/// Index of a section in [`Document::sections`].
pub type SectionIdx = usize;
/// Index of a wave in [`Document::waves`].
pub type WaveIdx = usize;
/// Index of a group in [`Document::groups`].
pub type GroupIdx = usize;

/// The markdown dialect of a task file; it decides the order inside a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Dialect {
    /// Headings + checkboxes: all tasks of a group side by side.
    #[default]
    Waves,
    /// GitHub spec-kit: `T001` ids, `[P]` markers, `## Phase N:` waves.
    SpecKit,
    /// Kiro, cc-sdd, OpenSpec: numbered tasks `1.`, `1.1`, a chain with `(P)` runs.
    Kiro,
}

impl Dialect {
    /// The name used on the command line and in JSON (`waves`, `spec-kit`, `kiro`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Waves => "waves",
            Dialect::SpecKit => "spec-kit",
            Dialect::Kiro => "kiro",
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "waves" => Ok(Dialect::Waves),
            "spec-kit" | "speckit" | "spec_kit" => Ok(Dialect::SpecKit),
            "kiro" | "cc-sdd" | "openspec" => Ok(Dialect::Kiro),
            other => Err(format!(
                "unknown dialect `{other}`; expected one of `waves`, `spec-kit`, `kiro`"
            )),
        }
    }
}

/// How many tasks of a group may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "max")]
#[non_exhaustive]
pub enum Parallelism {
    /// One at a time, in document order (`parallel: false`).
    Sequential,
    /// All side by side (`parallel: true`).
    Unbounded,
    /// At most this many at once (`parallel: 3`).
    Max(u32),
}

/// Hints read from `<!-- key: value; … -->` comments.
///
/// Every field is `None` when the hint was not given. Document-only keys
/// (`cross_wave`, `jobs`, `wave_level`) are only set on [`Document::hints`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Hints {
    /// `parallel:` / `parallelizable:`.
    pub parallel: Option<Parallelism>,
    /// `module:`.
    pub module: Option<String>,
    /// `id:`.
    pub id: Option<String>,
    /// `after:` task ids or section names.
    pub after: Vec<String>,
    /// `resource:` names.
    pub resource: Vec<String>,
    /// `launcher-arg:` values: extra `srun` arguments with `--launcher slurm`
    /// (a section's apply to its tasks, after the run's and before the task's).
    pub launcher_args: Vec<String>,
    /// `verify:` command.
    pub verify: Option<String>,
    /// `optional:`.
    pub optional: Option<bool>,
    /// `skip:`.
    pub skip: Option<bool>,
    /// `retries:`.
    pub retries: Option<u32>,
    /// `timeout:`.
    pub timeout: Option<Duration>,
    /// `cross-wave:` (document).
    pub cross_wave: Option<bool>,
    /// `jobs:` (document).
    pub jobs: Option<u32>,
    /// `wave-level:` (document).
    pub wave_level: Option<u8>,
}

/// Where a task's id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IdSource {
    /// An `id:` hint.
    Hint,
    /// A spec-kit id such as `T001`.
    SpecKit,
    /// A kiro number such as `1.2`.
    Number,
    /// A slug of the section path and the text.
    Slug,
}

/// A position in the source: byte offset plus 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Pos {
    /// Byte offset in the original file (BOM included).
    pub offset: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column in characters.
    pub col: usize,
}

/// One checkbox list item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Task {
    /// This task's index in [`Document::tasks`].
    pub index: TaskIdx,
    /// Stable id (see the crate docs for how it is chosen).
    pub id: String,
    /// Where the id came from.
    pub id_source: IdSource,
    /// The first paragraph, as written (inline markdown kept), trimmed, without
    /// the id prefix or trailing hint comments.
    pub text: String,
    /// The rest of the list item (nested bullets, code, paragraphs) as source text,
    /// child tasks excluded.
    pub details: String,
    /// The box is `[x]` / `[X]`.
    pub checked: bool,
    /// Kiro `- [ ]*` or an `optional: true` hint.
    pub optional: bool,
    /// A `skip: true` hint: never run, never checked.
    pub skip: bool,
    /// Byte range of the three bytes `[?]` in the original file (BOM included);
    /// the flip is one byte at `marker.start + 1`.
    pub marker: Range<usize>,
    /// Where the list item starts.
    pub pos: Pos,
    /// The enclosing task, if nested (or numbered) under one.
    pub parent: Option<TaskIdx>,
    /// Child tasks in document order.
    pub children: Vec<TaskIdx>,
    /// The deepest heading above the task.
    pub section: Option<SectionIdx>,
    /// The wave this task belongs to (`None`: outside any wave, e.g. in the preamble).
    pub wave: Option<WaveIdx>,
    /// The group this task belongs to.
    pub group: Option<GroupIdx>,
    /// Task-level hints. Shared: the tasks without hints (most of them)
    /// hold one empty set between them, which keeps a task small (a
    /// `Hints` is 192 bytes). Read through it as a `Hints`; change one
    /// task's with [`Arc::make_mut`].
    #[serde(with = "shared_hints")]
    pub hints: Arc<Hints>,
    /// Dependency references read from the text (`depends on T012`, `_Depends: 1.2_`),
    /// ranges already expanded where they could be.
    pub depends_on: Vec<String>,
    /// Marked `[P]` (spec-kit) or `(P)` (kiro).
    pub parallel_marker: bool,
    /// Spec-kit user-story tag such as `US1`.
    pub story: Option<String>,
    /// Its place in an ordered list: `(list, item number)` of the nearest
    /// numbered list item holding it (`3. [ ] Push the tag`, or a task under
    /// `2. **Short-term**`), counted from 1 per list; `None` when no numbered
    /// item holds it below its parent task. Tasks of one numbered list run in
    /// the order of their numbers.
    pub list_step: Option<(usize, usize)>,
}

/// Serde for a shared [`Hints`]: written and read as the `Hints` itself (no
/// need for serde's `rc` feature, and the JSON is unchanged).
mod shared_hints {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Hints;

    pub(super) fn serialize<S: Serializer>(h: &Arc<Hints>, s: S) -> Result<S::Ok, S::Error> {
        Hints::serialize(h, s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Hints>, D::Error> {
        Hints::deserialize(d).map(Arc::new)
    }
}

impl Task {
    /// Whether the task has child tasks (then it is never run itself).
    pub fn is_parent(&self) -> bool {
        !self.children.is_empty()
    }
}

/// A heading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Section {
    /// This section's index in [`Document::sections`].
    pub index: SectionIdx,
    /// Heading level 1–6.
    pub level: u8,
    /// Heading text (inline markdown flattened to text), trimmed.
    pub title: String,
    /// Where the heading starts.
    pub pos: Pos,
    /// The enclosing (shallower) heading.
    pub parent: Option<SectionIdx>,
    /// Section-level hints.
    pub hints: Hints,
    /// The title names something that is not work ("Success criteria",
    /// "Definition of done", "Verification checklist", `验证清单`, `検証`…):
    /// its open tasks are not run unless a `skip: false` hint says so.
    pub not_work: bool,
    /// Written as a bold paragraph (`**Phase 1: Setup**`) rather than a
    /// `#` heading; it is a section all the same.
    pub bold_paragraph: bool,
}

/// What waits, in a dependency read from prose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
#[non_exhaustive]
pub enum ProseWaiter {
    /// Every task of a section (`**Dependencies:** Task 11` under its heading).
    Section(SectionIdx),
    /// Whatever a reference names (`Task 3`, `T010-T012`, `Phase 2`, `US6`),
    /// as in an "Implementation order" list.
    Named(String),
}

/// A dependency read from prose rather than from a hint or a task's own
/// text: a `**Dependencies:** Task 11, Task 12` paragraph under a heading,
/// an "Implementation order" / "Execution order" list, a spec-kit "User
/// Story 6 … can start after US1, US4" line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProseDep {
    /// What waits.
    pub waiter: ProseWaiter,
    /// What it waits for, as written (`Task 11`, `T004-T006`, `US1`,
    /// `Phase 2`); empty for a section whose author wrote
    /// `**Dependencies:** None`.
    pub on: Vec<String>,
    /// Where it was read (1-based line).
    pub line: usize,
    /// The line it was read from, trimmed.
    pub source: String,
}

/// A wave: a heading at the wave level (or the whole file when it has none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Wave {
    /// This wave's index in [`Document::waves`].
    pub index: WaveIdx,
    /// The wave heading (`None` for a file without headings).
    pub section: Option<SectionIdx>,
    /// Its title (`"(document)"` for a file without headings).
    pub title: String,
    /// Its groups in document order; the lead group (tasks directly under the
    /// wave heading) first when there is one.
    pub groups: Vec<GroupIdx>,
}

/// A group: a heading one level below a wave, or a wave's lead group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Group {
    /// This group's index in [`Document::groups`].
    pub index: GroupIdx,
    /// The wave it belongs to.
    pub wave: WaveIdx,
    /// The group heading (`None` for a lead group).
    pub section: Option<SectionIdx>,
    /// Its title (the wave's title for a lead group).
    pub title: String,
    /// Normalised heading text or `module:` hint; `None` for a lead group.
    pub module: Option<String>,
    /// Its tasks in document order (parents included).
    pub tasks: Vec<TaskIdx>,
    /// Effective parallelism (hint, else the dialect's default).
    pub parallel: Parallelism,
    /// Whether `parallel` came from a hint (for lints).
    pub parallel_from_hint: bool,
    /// `after:` of the group (its section's hints).
    pub after: Vec<String>,
}

/// Options for [`Document::parse`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ParseOptions {
    /// The file's path, for diagnostics.
    pub path: Option<PathBuf>,
    /// Force the wave level instead of detecting it.
    pub wave_level: Option<u8>,
    /// Force the dialect instead of detecting it.
    pub dialect: Option<Dialect>,
}

impl ParseOptions {
    /// Options with the given path and everything else detected.
    pub fn with_path(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::default()
        }
    }

    /// Sets [`ParseOptions::wave_level`]: the heading level of waves.
    pub fn with_wave_level(mut self, level: u8) -> Self {
        self.wave_level = Some(level);
        self
    }

    /// Sets [`ParseOptions::dialect`]: the dialect to read the file as.
    pub fn with_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = Some(dialect);
        self
    }
}

/// A parsed task file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Document {
    /// The path given in [`ParseOptions`].
    pub path: Option<PathBuf>,
    /// The file started with a UTF-8 BOM.
    pub bom: bool,
    /// The file uses CRLF line ends.
    pub crlf: bool,
    /// YAML front matter, without its `---` fences.
    pub front_matter: Option<String>,
    /// Everything before the first wave heading, as source text: front matter
    /// and hint comments (which are for mdbatch, not the subagents) left out.
    pub preamble: String,
    /// All headings in document order.
    pub sections: Vec<Section>,
    /// All tasks in document order.
    pub tasks: Vec<Task>,
    /// Waves in document order.
    pub waves: Vec<Wave>,
    /// Groups in document order.
    pub groups: Vec<Group>,
    /// The heading level of waves (0 when the file has no wave headings).
    pub wave_level: u8,
    /// The dialect used.
    pub dialect: Dialect,
    /// Why that dialect: "detected: 42 tasks with T001-style ids", "--dialect".
    pub dialect_reason: String,
    /// Document-level hints.
    pub hints: Hints,
    /// Warnings found while parsing (errors make `parse` fail instead).
    pub warnings: Vec<Diagnostic>,
    /// Dependencies read from prose outside the tasks (see [`ProseDep`]).
    pub prose_deps: Vec<ProseDep>,
    /// Tasks by id, built on the first [`Document::task_by_id`].
    #[serde(skip)]
    pub(crate) id_index: IdIndex,
}

/// A lazily built index of a document's task ids: the hash of each id to the
/// first task with it. Every hit is checked against the task's id, and a
/// changed number of tasks makes a lookup scan; only an id changed in place
/// after the index was built (same count) could be missed — a clone starts
/// with no index.
#[derive(Default)]
pub(crate) struct IdIndex {
    built: std::sync::OnceLock<(usize, super::fxhash::FxHashMap<u64, usize>)>,
}

impl IdIndex {
    /// The parser's Fx hash (with its final fold, ids alike but for a digit
    /// or two spread over the whole value).
    fn hash(id: &str) -> u64 {
        use std::hash::Hasher;
        let mut h = super::fxhash::FxHasher::default();
        h.write(id.as_bytes());
        h.finish()
    }

    fn find<'a>(&self, tasks: &'a [Task], id: &str) -> Option<&'a Task> {
        let (len, map) = self.built.get_or_init(|| {
            let mut map = super::fxhash::map_with_capacity(tasks.len());
            for (i, t) in tasks.iter().enumerate() {
                map.entry(Self::hash(&t.id)).or_insert(i);
            }
            (tasks.len(), map)
        });
        match map.get(&Self::hash(id)).and_then(|&i| tasks.get(i)) {
            Some(t) if t.id == id => Some(t),
            // A miss is an answer while the tasks are the ones indexed.
            None if *len == tasks.len() => None,
            // A hash shared by two ids, or tasks changed since: look.
            _ => tasks.iter().find(|t| t.id == id),
        }
    }
}

impl Clone for IdIndex {
    fn clone(&self) -> Self {
        // Cheap to build again; the clone's tasks may be changed.
        IdIndex::default()
    }
}

impl PartialEq for IdIndex {
    fn eq(&self, _: &Self) -> bool {
        // A cache: never part of what a document is.
        true
    }
}

impl std::fmt::Debug for IdIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdIndex")
    }
}

impl Document {
    /// The task with this id (the first, if several share it). The first
    /// call builds an index of the ids, so looking up every task of a large
    /// file is linear, not quadratic.
    pub fn task_by_id(&self, id: &str) -> Option<&Task> {
        self.id_index.find(&self.tasks, id)
    }

    /// The section path of a task: titles from the outermost heading down.
    pub fn section_path(&self, task: TaskIdx) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = self.tasks.get(task).and_then(|t| t.section);
        while let Some(s) = cur {
            let Some(sec) = self.sections.get(s) else {
                break;
            };
            out.push(sec.title.clone());
            cur = sec.parent;
        }
        out.reverse();
        out
    }

    /// Leaf tasks: tasks without children, the units of work.
    pub fn leaves(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter().filter(|t| !t.is_parent())
    }
}
