//! Hand-built documents for the planner's unit tests (independent of the parser).

use crate::doc::{
    Dialect, Document, Group, Hints, IdSource, Parallelism, Pos, Section, Task, TaskIdx, Wave,
};

/// Builds a [`Document`] line by line: `wave`, `group`, `task`, `child`.
pub(crate) struct DocBuilder {
    doc: Document,
    line: usize,
    wave_section: Option<usize>,
    group: Option<usize>,
}

impl DocBuilder {
    pub(crate) fn new(dialect: Dialect) -> Self {
        Self {
            doc: Document {
                path: Some("tasks.md".into()),
                bom: false,
                crlf: false,
                front_matter: None,
                preamble: String::new(),
                sections: Vec::new(),
                tasks: Vec::new(),
                waves: Vec::new(),
                groups: Vec::new(),
                wave_level: 2,
                dialect,
                dialect_reason: "test".into(),
                hints: Hints::default(),
                warnings: Vec::new(),
                prose_deps: Vec::new(),
                id_index: Default::default(),
            },
            line: 1,
            wave_section: None,
            group: None,
        }
    }

    fn pos(&mut self) -> Pos {
        self.line += 1;
        Pos {
            offset: self.line * 100,
            line: self.line,
            col: 1,
        }
    }

    fn section(&mut self, level: u8, title: &str, parent: Option<usize>) -> usize {
        let pos = self.pos();
        let index = self.doc.sections.len();
        self.doc.sections.push(Section {
            index,
            level,
            title: title.into(),
            pos,
            parent,
            hints: Hints::default(),
            not_work: false,
            bold_paragraph: false,
        });
        index
    }

    /// A heading that is not a wave (preamble, checklist at the end, …).
    pub(crate) fn heading(&mut self, level: u8, title: &str) -> usize {
        let s = self.section(level, title, None);
        self.wave_section = None;
        self.group = None;
        s
    }

    /// A `## title` wave; following tasks go to its lead group.
    pub(crate) fn wave(&mut self, title: &str) -> usize {
        let s = self.section(2, title, None);
        let index = self.doc.waves.len();
        self.doc.waves.push(Wave {
            index,
            section: Some(s),
            title: title.into(),
            groups: Vec::new(),
        });
        self.wave_section = Some(s);
        self.group = None;
        index
    }

    /// A `### title` group of the current wave (module = lowercased title).
    pub(crate) fn group(&mut self, title: &str) -> usize {
        let s = self.section(3, title, self.wave_section);
        self.push_group(Some(s), title, Some(title.to_lowercase()))
    }

    fn push_group(&mut self, section: Option<usize>, title: &str, module: Option<String>) -> usize {
        let wave = self.doc.waves.len() - 1;
        let index = self.doc.groups.len();
        let parallel = match self.doc.dialect {
            Dialect::Waves => Parallelism::Unbounded,
            _ => Parallelism::Sequential,
        };
        self.doc.groups.push(Group {
            index,
            wave,
            section,
            title: title.into(),
            module,
            tasks: Vec::new(),
            parallel,
            parallel_from_hint: false,
            after: Vec::new(),
        });
        self.doc.waves[wave].groups.push(index);
        self.group = Some(index);
        index
    }

    /// A task in the current group (a lead group is made when needed).
    pub(crate) fn task(&mut self, id: &str, text: &str) -> TaskIdx {
        self.add(id, text, None)
    }

    /// A child task of `parent`.
    pub(crate) fn child(&mut self, parent: TaskIdx, id: &str, text: &str) -> TaskIdx {
        let t = self.add(id, text, Some(parent));
        self.doc.tasks[parent].push_child(t);
        t
    }

    fn add(&mut self, id: &str, text: &str, parent: Option<TaskIdx>) -> TaskIdx {
        if self.group.is_none() && !self.doc.waves.is_empty() && self.wave_section.is_some() {
            let title = self
                .doc
                .waves
                .last()
                .map(|w| w.title.clone())
                .unwrap_or_default();
            self.push_group(None, &title, None);
        }
        let pos = self.pos();
        let index = self.doc.tasks.len();
        let section = self.doc.sections.len().checked_sub(1);
        let group = self.group;
        let wave = group.map(|g| self.doc.groups[g].wave);
        let mut task = Task::new(
            index,
            pos,
            pos.offset + 2..pos.offset + 5,
            Default::default(),
        );
        task.id = id.into();
        task.id_source = IdSource::Hint;
        task.text = text.into();
        task.parent = parent;
        task.section = section;
        task.wave = wave;
        task.group = group;
        self.doc.tasks.push(task);
        if let Some(g) = group {
            self.doc.groups[g].tasks.push(index);
        }
        index
    }

    /// Edits a task.
    pub(crate) fn edit(&mut self, t: TaskIdx, f: impl FnOnce(&mut Task)) -> &mut Self {
        f(&mut self.doc.tasks[t]);
        self
    }

    /// Edits a group.
    pub(crate) fn edit_group(&mut self, g: usize, f: impl FnOnce(&mut Group)) -> &mut Self {
        f(&mut self.doc.groups[g]);
        self
    }

    /// Edits a section.
    pub(crate) fn edit_section(&mut self, s: usize, f: impl FnOnce(&mut Section)) -> &mut Self {
        f(&mut self.doc.sections[s]);
        self
    }

    /// Edits the document.
    pub(crate) fn edit_doc(&mut self, f: impl FnOnce(&mut Document)) -> &mut Self {
        f(&mut self.doc);
        self
    }

    pub(crate) fn build(&self) -> Document {
        self.doc.clone()
    }
}
