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
    let task_file = absolute(place.task_file);
    let workdir = match place.workdir {
        Some(w) => absolute(w),
        None => task_file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let mut spec = TaskSpec::new(task.id.clone(), task.text.clone());
    spec.details = task.details.clone();
    spec.section_path = doc.section_path(task.index);
    spec.preamble = doc.preamble.clone();
    spec.task_file = task_file;
    spec.workdir = workdir;
    spec.verify = task
        .hints
        .verify
        .clone()
        .or_else(|| place.verify.map(str::to_string));
    spec.prompt = template.render(&spec);
    spec
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
