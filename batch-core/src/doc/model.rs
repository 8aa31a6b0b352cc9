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
///
/// The parts few tasks have (child tasks, dependency text, a spec-kit story,
/// a place in a numbered list) are kept together in one box behind
/// accessors ([`Task::children`], [`Task::depends_on`], [`Task::story`],
/// [`Task::list_step`]): a task without them is 88 bytes smaller, 8.8 MB
/// over a 100,000-task file. Serialised, a task has every field as before.
#[derive(Debug, Clone, PartialEq)]
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
    /// Marked `[P]` (spec-kit) or `(P)` (kiro).
    pub parallel_marker: bool,
    /// Byte range of the three bytes `[?]` in the original file (BOM included);
    /// the flip is one byte at `marker.start + 1`.
    pub marker: Range<usize>,
    /// Where the list item starts.
    pub pos: Pos,
    /// The enclosing task, if nested (or numbered) under one.
    pub parent: Option<TaskIdx>,
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
    pub hints: Arc<Hints>,
    /// Children, dependency text, story and list step; `None` when all are
    /// empty (most tasks).
    rare: Option<Box<Rare>>,
}

/// The parts of a [`Task`] few tasks have.
#[derive(Debug, Clone, PartialEq, Default)]
struct Rare {
    children: Vec<TaskIdx>,
    depends_on: Vec<String>,
    story: Option<String>,
    list_step: Option<(usize, usize)>,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.depends_on.is_empty()
            && self.story.is_none()
            && self.list_step.is_none()
    }
}

/// The fields a task is serialised with, in their order (the JSON of a
/// task is unchanged by [`Rare`]).
#[derive(Serialize)]
struct TaskOut<'a> {
    index: TaskIdx,
    id: &'a str,
    id_source: IdSource,
    text: &'a str,
    details: &'a str,
    checked: bool,
    optional: bool,
    skip: bool,
    marker: &'a Range<usize>,
    pos: Pos,
    parent: Option<TaskIdx>,
    children: &'a [TaskIdx],
    section: Option<SectionIdx>,
    wave: Option<WaveIdx>,
    group: Option<GroupIdx>,
    hints: &'a Hints,
    depends_on: &'a [String],
    parallel_marker: bool,
    story: Option<&'a str>,
    list_step: Option<(usize, usize)>,
}

/// [`TaskOut`], read back.
#[derive(Deserialize)]
struct TaskIn {
    index: TaskIdx,
    id: String,
    id_source: IdSource,
    text: String,
    details: String,
    checked: bool,
    optional: bool,
    skip: bool,
    marker: Range<usize>,
    pos: Pos,
    parent: Option<TaskIdx>,
    children: Vec<TaskIdx>,
    section: Option<SectionIdx>,
    wave: Option<WaveIdx>,
    group: Option<GroupIdx>,
    hints: Hints,
    depends_on: Vec<String>,
    parallel_marker: bool,
    story: Option<String>,
    list_step: Option<(usize, usize)>,
}

impl Serialize for Task {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TaskOut {
            index: self.index,
            id: &self.id,
            id_source: self.id_source,
            text: &self.text,
            details: &self.details,
            checked: self.checked,
            optional: self.optional,
            skip: self.skip,
            marker: &self.marker,
            pos: self.pos,
            parent: self.parent,
            children: self.children(),
            section: self.section,
            wave: self.wave,
            group: self.group,
            hints: &self.hints,
            depends_on: self.depends_on(),
            parallel_marker: self.parallel_marker,
            story: self.story(),
            list_step: self.list_step(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Task {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = TaskIn::deserialize(d)?;
        let mut task = Task::new(t.index, t.pos, t.marker, Arc::new(t.hints));
        task.id = t.id;
        task.id_source = t.id_source;
        task.text = t.text;
        task.details = t.details;
        task.checked = t.checked;
        task.optional = t.optional;
        task.skip = t.skip;
        task.parent = t.parent;
        task.section = t.section;
        task.wave = t.wave;
        task.group = t.group;
        task.parallel_marker = t.parallel_marker;
        task.set_rare(Rare {
            children: t.children,
            depends_on: t.depends_on,
            story: t.story,
            list_step: t.list_step,
        });
        Ok(task)
    }
}

impl Task {
    /// A task at `pos` with box `marker` and `hints`, and nothing else set
    /// (crate use: the parser and tests fill in the rest).
    pub(crate) fn new(index: TaskIdx, pos: Pos, marker: Range<usize>, hints: Arc<Hints>) -> Self {
        Task {
            index,
            id: String::new(),
            id_source: IdSource::Slug,
            text: String::new(),
            details: String::new(),
            checked: false,
            optional: false,
            skip: false,
            parallel_marker: false,
            marker,
            pos,
            parent: None,
            section: None,
            wave: None,
            group: None,
            hints,
            rare: None,
        }
    }

    /// Whether the task has child tasks (then it is never run itself).
    pub fn is_parent(&self) -> bool {
        !self.children().is_empty()
    }

    /// Child tasks in document order.
    pub fn children(&self) -> &[TaskIdx] {
        self.rare.as_ref().map_or(&[], |r| r.children.as_slice())
    }

    /// Dependency references read from the text (`depends on T012`,
    /// `_Depends: 1.2_`), ranges already expanded where they could be.
    pub fn depends_on(&self) -> &[String] {
        self.rare.as_ref().map_or(&[], |r| r.depends_on.as_slice())
    }

    /// Spec-kit user-story tag such as `US1`.
    pub fn story(&self) -> Option<&str> {
        self.rare.as_ref().and_then(|r| r.story.as_deref())
    }

    /// Its place in an ordered list: `(list, item number)` of the nearest
    /// numbered list item holding it (`3. [ ] Push the tag`, or a task under
    /// `2. **Short-term**`), counted from 1 per list; `None` when no numbered
    /// item holds it below its parent task. Tasks of one numbered list run in
    /// the order of their numbers.
    pub fn list_step(&self) -> Option<(usize, usize)> {
        self.rare.as_ref().and_then(|r| r.list_step)
    }

    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    fn set_rare(&mut self, rare: Rare) {
        self.rare = (!rare.is_empty()).then(|| Box::new(rare));
    }

    /// Adds a child task (crate use: the parser and tests).
    pub(crate) fn push_child(&mut self, child: TaskIdx) {
        self.rare_mut().children.push(child);
    }

    /// Sets the dependency references (crate use).
    pub(crate) fn set_depends_on(&mut self, deps: Vec<String>) {
        if deps.is_empty() && self.rare.is_none() {
            return;
        }
        self.rare_mut().depends_on = deps;
    }

    /// Sets the story tag (crate use).
    pub(crate) fn set_story(&mut self, story: Option<String>) {
        if story.is_none() && self.rare.is_none() {
            return;
        }
        self.rare_mut().story = story;
    }

    /// Sets the list step (crate use).
    pub(crate) fn set_list_step(&mut self, step: Option<(usize, usize)>) {
        if step.is_none() && self.rare.is_none() {
            return;
        }
        self.rare_mut().list_step = step;
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
/// first task with it, and, for the few hashes two different ids share, every
/// such task. Every hit is checked against the task's id, and a changed
/// number of tasks makes a lookup scan; only an id changed in place after the
/// index was built (same count) could be missed — a clone starts with no
/// index.
#[derive(Default)]
pub(crate) struct IdIndex {
    built: std::sync::OnceLock<BuiltIndex>,
}

struct BuiltIndex {
    /// The number of tasks indexed.
    len: usize,
    /// Hash of an id to its first task.
    first: super::fxhash::FxHashMap<u64, usize>,
    /// Hashes shared by different ids (Fx gives the same 64 bits to about
    /// 2.6% of `item-0` … `item-99999`): every first task with it.
    shared: super::fxhash::FxHashMap<u64, Vec<usize>>,
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
        let index = self.built.get_or_init(|| {
            let mut first = super::fxhash::map_with_capacity(tasks.len());
            let mut shared: super::fxhash::FxHashMap<u64, Vec<usize>> = Default::default();
            for (i, t) in tasks.iter().enumerate() {
                let h = Self::hash(&t.id);
                match first.entry(h) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(i);
                    }
                    // The same id again: the first one stands.
                    std::collections::hash_map::Entry::Occupied(o)
                        if tasks[*o.get()].id == t.id => {}
                    std::collections::hash_map::Entry::Occupied(_) => {
                        let list: &mut Vec<usize> = shared.entry(h).or_default();
                        if !list.iter().any(|&k| tasks[k].id == t.id) {
                            list.push(i);
                        }
                    }
                }
            }
            BuiltIndex {
                len: tasks.len(),
                first,
                shared,
            }
        });
        if index.len != tasks.len() {
            // Tasks changed since: look.
            return tasks.iter().find(|t| t.id == id);
        }
        let h = Self::hash(id);
        match index.first.get(&h).and_then(|&i| tasks.get(i)) {
            Some(t) if t.id == id => Some(t),
            None => None,
            Some(_) => index
                .shared
                .get(&h)?
                .iter()
                .filter_map(|&i| tasks.get(i))
                .find(|t| t.id == id),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_serialises_with_every_field_in_order_and_reads_back_the_same() {
        let text = "# Tasks\n\n## Phase 1\n\n- [ ] T001 [US1] Build it (depends on T002)\n  - [ ] T002 Part\n- [ ] T003 Plain\n";
        let doc = Document::parse(text, &crate::ParseOptions::default()).unwrap();
        let with_rare = &doc.tasks[0];
        assert_eq!(with_rare.children(), [1]);
        assert_eq!(with_rare.story(), Some("US1"));
        assert_eq!(with_rare.depends_on(), ["T002"]);
        let plain = &doc.tasks[2];
        assert!(plain.children().is_empty() && plain.depends_on().is_empty());
        assert_eq!((plain.story(), plain.list_step()), (None, None));
        let json = serde_json::to_value(plain).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = [
            "index",
            "id",
            "id_source",
            "text",
            "details",
            "checked",
            "optional",
            "skip",
            "marker",
            "pos",
            "parent",
            "children",
            "section",
            "wave",
            "group",
            "hints",
            "depends_on",
            "parallel_marker",
            "story",
            "list_step",
        ];
        // serde_json's map is sorted unless `preserve_order` is on: compare as sets.
        let mut got = keys.clone();
        got.sort_unstable();
        expected.sort_unstable();
        assert_eq!(got, expected);
        assert_eq!(json["children"], serde_json::json!([]));
        assert_eq!(json["depends_on"], serde_json::json!([]));
        assert_eq!(json["story"], serde_json::Value::Null);
        for t in &doc.tasks {
            let back: Task = serde_json::from_str(&serde_json::to_string(t).unwrap()).unwrap();
            assert_eq!(&back, t);
        }
    }

    #[test]
    fn ids_whose_hashes_collide_are_each_found_and_a_repeated_id_finds_its_first_task() {
        // Ids of the form `item-N` whose 64-bit index hashes are equal
        // (the parser's Fx hash gives a few percent of them a shared value).
        let mut seen: std::collections::HashMap<u64, u32> = Default::default();
        let mut pairs = Vec::new();
        for n in 0..200_000u32 {
            if let Some(m) = seen.insert(IdIndex::hash(&format!("item-{n}")), n) {
                pairs.push((m, n));
                if pairs.len() == 20 {
                    break;
                }
            }
        }
        assert_eq!(pairs.len(), 20, "the test needs colliding ids");
        let mut text = String::from("# T\n\n");
        for (a, b) in &pairs {
            text.push_str(&format!("- [ ] item {a}\n- [ ] item {b}\n"));
        }
        // A repeated text: its id comes out as the same slug plus a suffix,
        // or the same id, depending on the dialect; either way the first task
        // with an id is the one found.
        text.push_str(&format!("- [ ] item {}\n", pairs[0].0));
        let doc = Document::parse(&text, &crate::ParseOptions::default()).unwrap();
        for (a, b) in &pairs {
            for n in [a, b] {
                let id = format!("item-{n}");
                let t = doc
                    .task_by_id(&id)
                    .unwrap_or_else(|| panic!("{id} not found"));
                assert_eq!(t.text, format!("item {n}"));
                assert_eq!(t.id, id);
            }
        }
        for t in &doc.tasks {
            let first = doc.tasks.iter().find(|u| u.id == t.id).unwrap();
            assert!(std::ptr::eq(doc.task_by_id(&t.id).unwrap(), first));
        }
        assert!(doc.task_by_id("item-absent").is_none());
    }
}
