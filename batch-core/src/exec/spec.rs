//! The one place a [`TaskSpec`] is built from a task of a [`Document`]: the
//! executor uses it for every attempt and `mdbatch plan --show-prompt` to show
//! the prompt a subagent would get, so the two never differ.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::doc::{Document, Task};
use crate::runner::{PromptTemplate, SharedFields, SpecTemplate, TaskSpec};

/// Where a task runs: what a [`TaskSpec`] holds that is not in the document.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SpecPlace<'a> {
    /// The task file (made absolute for the spec).
    pub task_file: &'a Path,
    /// The folder the subagent runs in (`None`: the task file's folder); made absolute.
    pub workdir: Option<&'a Path>,
    /// The verify command when the task has no `verify:` hint.
    pub verify: Option<&'a str>,
}

impl<'a> SpecPlace<'a> {
    /// A task in `task_file`, run in its folder, with no default verify command.
    pub fn new(task_file: &'a Path) -> Self {
        Self {
            task_file,
            workdir: None,
            verify: None,
        }
    }
}

/// The [`TaskSpec`] a runner gets for `task` of `doc`, its prompt rendered
/// with `template` (when asked for: [`TaskSpec::prompt`]).
///
/// The task file and the working folder are absolute (relative to the
/// current folder), so `{file}` and `{workdir}` mean the same wherever the
/// subagent runs; the verify command is the task's `verify:` hint, else
/// `place.verify`.
pub fn task_spec(
    doc: &Document,
    task: &Task,
    place: &SpecPlace<'_>,
    template: &PromptTemplate,
) -> TaskSpec {
    Resolved::new(place, doc, template.clone()).spec(doc, task)
}

/// A [`SpecPlace`] with its paths made absolute, and what every spec of a
/// run shares: made once for a whole run rather than once per task (each
/// path is a `getcwd` for a relative one), so that a spec holds its own
/// id, text and details and shares the rest.
pub(crate) struct Resolved {
    task_file: Arc<Path>,
    workdir: Arc<Path>,
    verify: Option<Arc<str>>,
    preamble: Arc<str>,
    empty: Arc<str>,
    template: Arc<SpecTemplate>,
    /// The section path of each section (`None`: not made yet), and of the
    /// tasks above every heading.
    sections: Vec<Option<Arc<[String]>>>,
    top: Arc<[String]>,
}

impl Resolved {
    /// The place of the specs of `doc`'s tasks, their prompts rendered with
    /// `template`.
    pub(crate) fn new(place: &SpecPlace<'_>, doc: &Document, template: PromptTemplate) -> Self {
        let task_file = absolute(place.task_file);
        let workdir = match place.workdir {
            Some(w) => absolute(w),
            None => task_file
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
        };
        let (task_file, workdir): (Arc<Path>, Arc<Path>) = (task_file.into(), workdir.into());
        let preamble: Arc<str> = Arc::from(doc.preamble.as_str());
        Self {
            template: SpecTemplate::bound(
                template,
                task_file.clone(),
                workdir.clone(),
                preamble.clone(),
            ),
            task_file,
            workdir,
            verify: place.verify.map(Arc::from),
            preamble,
            empty: Arc::from(""),
            sections: vec![None; doc.sections.len()],
            top: Arc::from(Vec::new()),
        }
    }

    /// The spec of `task` of `doc`, the document this place was made for.
    pub(crate) fn spec(&mut self, doc: &Document, task: &Task) -> TaskSpec {
        let section_path = match task.section {
            Some(s) if s < self.sections.len() => self.sections[s]
                .get_or_insert_with(|| doc.section_path(task.index).into())
                .clone(),
            Some(_) => doc.section_path(task.index).into(),
            None => self.top.clone(),
        };
        let shared = |s: &str, empty: &Arc<str>| {
            if s.is_empty() {
                empty.clone()
            } else {
                Arc::from(s)
            }
        };
        TaskSpec::from_shared(
            SharedFields {
                id: Arc::from(task.id.as_str()),
                text: Arc::from(task.text.as_str()),
                details: shared(&task.details, &self.empty),
                section_path,
                preamble: self.preamble.clone(),
                task_file: self.task_file.clone(),
                workdir: self.workdir.clone(),
                verify: match &task.hints.verify {
                    Some(v) => Some(Arc::from(v.as_str())),
                    None => self.verify.clone(),
                },
            },
            self.template.clone(),
        )
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParseOptions;

    #[test]
    fn paths_are_absolute_and_the_hint_verify_wins_over_the_default() {
        let doc = Document::parse(
            "# T\n\nContext.\n\n## W\n- [ ] One\n  <!-- verify: make one -->\n- [ ] Two\n",
            &ParseOptions::default(),
        )
        .unwrap();
        let mut place = SpecPlace::new(Path::new("sub/task.md"));
        place.verify = Some("make all");
        let t = PromptTemplate::parse("{file} {workdir} {task}").unwrap();
        let one = task_spec(&doc, &doc.tasks[0], &place, &t);
        let two = task_spec(&doc, &doc.tasks[1], &place, &t);
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(one.task_file(), cwd.join("sub/task.md"));
        assert_eq!(one.workdir(), cwd.join("sub"));
        assert_eq!(one.verify(), Some("make one"));
        assert_eq!(two.verify(), Some("make all"));
        assert!(one.preamble().contains("Context."));
        assert_eq!(
            one.prompt(),
            format!(
                "{} {} One",
                cwd.join("sub/task.md").display(),
                cwd.join("sub").display()
            )
        );
    }

    #[test]
    fn a_prompt_is_composed_when_asked_and_again_for_changed_fields_but_not_once_set() {
        let doc = Document::parse(
            "# T\n\nContext.\n\n## W\n- [ ] One\n\n  details\n",
            &ParseOptions::default(),
        )
        .unwrap();
        let t = PromptTemplate::parse("{workdir}: {task} / {details} / {preamble}").unwrap();
        let spec = task_spec(
            &doc,
            &doc.tasks[0],
            &SpecPlace::new(Path::new("/x/task.md")),
            &t,
        );
        assert_eq!(spec.prompt(), "/x: One / details / # T\n\nContext.");
        // A clone of a composed spec keeps its prompt; a changed field
        // composes it again, as the template renders the changed spec.
        let moved = spec.clone().with_workdir("/y");
        assert_eq!(moved.prompt(), "/y: One / details / # T\n\nContext.");
        assert_eq!(moved.prompt(), t.render(&moved));
        assert_eq!(spec.prompt(), "/x: One / details / # T\n\nContext.");
        // A prompt set outright stays, whatever changes after.
        let pinned = spec.clone().with_prompt("mine").with_details("other");
        assert_eq!(pinned.prompt(), "mine");
    }
}
