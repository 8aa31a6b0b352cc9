//! The one place a [`TaskSpec`] is built from a task of a [`Document`]: the
//! executor uses it for every attempt and `mdbatch plan --show-prompt` to show
//! the prompt a subagent would get, so the two never differ.

use std::path::{Path, PathBuf};

use crate::doc::{Document, Task};
use crate::runner::{PromptTemplate, TaskSpec};

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
/// with `template`.
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
    Resolved::new(place).spec(doc, task, |spec| template.render(spec))
}

/// A [`SpecPlace`] with its paths made absolute: resolved once for a whole
/// run rather than once per task (each is a `getcwd` for a relative path).
pub(crate) struct Resolved<'a> {
    task_file: PathBuf,
    workdir: PathBuf,
    verify: Option<&'a str>,
}

impl<'a> Resolved<'a> {
    pub(crate) fn new(place: &SpecPlace<'a>) -> Self {
        let task_file = absolute(place.task_file);
        let workdir = match place.workdir {
            Some(w) => absolute(w),
            None => task_file
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
        };
        Self {
            task_file,
            workdir,
            verify: place.verify,
        }
    }

    /// The template bound to this place and `doc`'s preamble: renders every
    /// task of `doc` as `template` does, faster.
    pub(crate) fn bind(
        &self,
        doc: &Document,
        template: &PromptTemplate,
    ) -> impl Fn(&TaskSpec) -> String + use<> {
        let bound = template.bind(&self.task_file, &self.workdir, &doc.preamble);
        move |spec| bound.render(spec)
    }

    /// [`task_spec`] at this place, its prompt rendered by `render`.
    pub(crate) fn spec(
        &self,
        doc: &Document,
        task: &Task,
        render: impl FnOnce(&TaskSpec) -> String,
    ) -> TaskSpec {
        let mut spec = TaskSpec {
            id: task.id.clone(),
            text: task.text.clone(),
            details: task.details.clone(),
            section_path: doc.section_path(task.index),
            preamble: doc.preamble.clone(),
            prompt: String::new(),
            task_file: self.task_file.clone(),
            workdir: self.workdir.clone(),
            verify: task
                .hints
                .verify
                .clone()
                .or_else(|| self.verify.map(str::to_string)),
        };
        spec.prompt = render(&spec);
        spec
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
        assert_eq!(one.task_file, cwd.join("sub/task.md"));
        assert_eq!(one.workdir, cwd.join("sub"));
        assert_eq!(one.verify.as_deref(), Some("make one"));
        assert_eq!(two.verify.as_deref(), Some("make all"));
        assert!(one.preamble.contains("Context."));
        assert_eq!(
            one.prompt,
            format!(
                "{} {} One",
                cwd.join("sub/task.md").display(),
                cwd.join("sub").display()
            )
        );
    }
}
