//! The prompt template: how a task becomes the text a subagent reads.
//!
//! A template is plain text with `{placeholder}`s; `{{` and `}}` stand for
//! literal braces. Placeholders:
//!
//! | placeholder | becomes |
//! | --- | --- |
//! | `{preamble}` | the task file's preamble (title, context, conventions) |
//! | `{section}` | the task's section path, `Wave > Group > …` |
//! | `{task}` | the task text (its first paragraph) |
//! | `{details}` | the rest of the list item (nested bullets, code, notes) |
//! | `{file}` | the task file's path |
//! | `{id}` | the task id (`T004`, `1.2`, a slug) |
//! | `{workdir}` | the folder the subagent runs in |
//!
//! After substitution, runs of blank lines are collapsed into one and the
//! ends trimmed, so a placeholder that is empty (no preamble, no details)
//! leaves no hole.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::TaskSpec;

/// Placeholders a prompt template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "preamble", "section", "task", "details", "file", "id", "workdir",
];

/// The default template (see the module docs for the placeholders).
pub const DEFAULT_TEMPLATE: &str = "\
You are one subagent of a batch run by mdbatch over the task list in `{file}`.

{preamble}

Your task ({id}, under {section}):

{task}

{details}

Rules:
- Do this one task only; other subagents are doing the other tasks, some of them at the same time.
- Do not edit the checkboxes in `{file}`; mdbatch checks this task's box when you finish.
- When you are done, reply with a one-line summary of what you did.
";

/// A problem in a prompt template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// `{name}` is not a known placeholder.
    #[error("line {line}, column {col}: unknown placeholder `{{{name}}}`; known: {known}")]
    UnknownPlaceholder {
        /// The placeholder's name.
        name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters) of its `{`.
        col: usize,
        /// The known placeholders, for the message.
        known: String,
    },
    /// A `{` without its `}` (write `{{` for a literal brace).
    #[error("line {line}, column {col}: `{{` is not closed; write `{{{{` for a literal brace")]
    Unclosed {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Piece {
    Text(String),
    Field(Field),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Field {
    Preamble,
    Section,
    Task,
    Details,
    File,
    Id,
    Workdir,
}

impl Field {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "preamble" => Field::Preamble,
            "section" => Field::Section,
            "task" => Field::Task,
            "details" => Field::Details,
            "file" => Field::File,
            "id" => Field::Id,
            "workdir" => Field::Workdir,
            _ => return None,
        })
    }
}

/// A prompt template (`--prompt-template FILE`); `Default` is [`DEFAULT_TEMPLATE`].
///
/// ```
/// use batch_core::{PromptTemplate, TaskSpec};
///
/// let t = PromptTemplate::parse("Do {id}: {task}").unwrap();
/// assert_eq!(t.render(&TaskSpec::new("T1", "write the parser")), "Do T1: write the parser");
/// assert!(PromptTemplate::parse("{tsk}").unwrap_err().to_string().contains("`{tsk}`"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTemplate {
    pieces: Vec<Piece>,
}

impl Default for PromptTemplate {
    fn default() -> Self {
        Self::parse(DEFAULT_TEMPLATE).expect("the default template is valid")
    }
}

impl PromptTemplate {
    /// Parses a template; an unknown placeholder is an error naming it and its line.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = text.char_indices().peekable();
        let (mut line, mut col) = (1usize, 0usize);
        while let Some((i, c)) = chars.next() {
            col += 1;
            match c {
                '\n' => {
                    lit.push(c);
                    line += 1;
                    col = 0;
                }
                '{' if chars.peek().map(|&(_, n)| n) == Some('{') => {
                    chars.next();
                    col += 1;
                    lit.push('{');
                }
                '}' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                    chars.next();
                    col += 1;
                    lit.push('}');
                }
                '{' => {
                    let rest = &text[i + 1..];
                    let end = rest
                        .find(['}', '\n', '{'])
                        .filter(|&e| rest.as_bytes()[e] == b'}');
                    let Some(end) = end else {
                        return Err(TemplateError::Unclosed { line, col });
                    };
                    let name = &rest[..end];
                    let Some(field) = Field::from_name(name.trim()) else {
                        return Err(TemplateError::UnknownPlaceholder {
                            name: name.to_string(),
                            line,
                            col,
                            known: PLACEHOLDERS
                                .iter()
                                .map(|p| format!("{{{p}}}"))
                                .collect::<Vec<_>>()
                                .join(" "),
                        });
                    };
                    if !lit.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Field(field));
                    // Skip the name and the closing brace.
                    for _ in 0..=name.chars().count() {
                        chars.next();
                        col += 1;
                    }
                }
                _ => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Ok(Self { pieces })
    }

    /// Composes the prompt of a task (uses every field of `spec` but `prompt`).
    pub fn render(&self, spec: &TaskSpec) -> String {
        // Sized once: the literal text plus every field it uses.
        let size: usize = self
            .pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(t) => t.len(),
                Piece::Field(f) => match f {
                    Field::Preamble => spec.preamble().len(),
                    Field::Section => spec
                        .section_path()
                        .iter()
                        .map(|s| s.len() + 3)
                        .sum::<usize>()
                        .max("the task list".len()),
                    Field::Task => spec.text().len(),
                    Field::Details => spec.details().len(),
                    Field::File => spec.task_file().as_os_str().len(),
                    Field::Id => spec.id().len(),
                    Field::Workdir => spec.workdir().as_os_str().len(),
                },
            })
            .sum();
        let mut out = String::with_capacity(size);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => push_field(&mut out, *f, spec),
            }
        }
        collapse_blank_lines(&out)
    }
}

/// A template bound to one run: the fields that are the same for every task
/// (`{file}`, `{workdir}`, `{preamble}`) filled in, and its lines sorted
/// once into constant ones, already collapsed, and lines that hold a
/// task's own fields. Rendering a task then scans only those lines: a run's
/// specs share one, and each renders its prompt when a runner asks for it.
///
/// [`render`](Self::render) returns what [`PromptTemplate::render`] returns
/// for a spec with the bound file, workdir and preamble.
#[cfg_attr(
    not(feature = "exec"),
    allow(dead_code, reason = "the executor binds templates")
)]
#[derive(Debug, Clone)]
pub(crate) struct BoundTemplate {
    segments: Vec<Segment>,
    /// The bytes of constant text, for sizing the output.
    constant_len: usize,
}

#[cfg_attr(
    not(feature = "exec"),
    allow(dead_code, reason = "the executor binds templates")
)]
#[derive(Debug, Clone)]
enum Segment {
    /// Constant lines that are not blank, joined by `\n`.
    Lines(String),
    /// One or more constant blank lines.
    Blank,
    /// One line of the template with a task's fields in it; `ended` when a
    /// `\n` of the template ends it (the last line may have none).
    Fields { pieces: Vec<Piece>, ended: bool },
}

#[cfg_attr(
    not(feature = "exec"),
    allow(dead_code, reason = "the executor binds templates")
)]
impl PromptTemplate {
    /// This template with `task_file`, `workdir` and `preamble` filled in
    /// (see [`BoundTemplate`]).
    pub(crate) fn bind(
        &self,
        task_file: &std::path::Path,
        workdir: &std::path::Path,
        preamble: &str,
    ) -> BoundTemplate {
        let text = |p: &std::path::Path| p.display().to_string();
        // The template's lines, the run's fields in them as text.
        let mut lines: Vec<(Vec<Piece>, bool)> = vec![(Vec::new(), false)];
        let push_text = |lines: &mut Vec<(Vec<Piece>, bool)>, t: &str| {
            let mut parts = t.split('\n');
            if let Some(first) = parts.next()
                && !first.is_empty()
            {
                lines
                    .last_mut()
                    .expect("one line at least")
                    .0
                    .push(Piece::Text(first.into()));
            }
            for part in parts {
                lines.last_mut().expect("one line at least").1 = true;
                let mut next = Vec::new();
                if !part.is_empty() {
                    next.push(Piece::Text(part.into()));
                }
                lines.push((next, false));
            }
        };
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => push_text(&mut lines, t),
                Piece::Field(Field::File) => push_text(&mut lines, &text(task_file)),
                Piece::Field(Field::Workdir) => push_text(&mut lines, &text(workdir)),
                Piece::Field(Field::Preamble) => push_text(&mut lines, preamble.trim()),
                Piece::Field(f) => lines
                    .last_mut()
                    .expect("one line at least")
                    .0
                    .push(Piece::Field(*f)),
            }
        }
        let mut segments: Vec<Segment> = Vec::new();
        let mut constant_len = 0;
        for (pieces, ended) in lines {
            if pieces.iter().any(|p| matches!(p, Piece::Field(_))) {
                for p in &pieces {
                    if let Piece::Text(t) = p {
                        constant_len += t.len() + 1;
                    }
                }
                segments.push(Segment::Fields { pieces, ended });
                continue;
            }
            let mut line: String = pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => t.as_str(),
                    Piece::Field(_) => "",
                })
                .collect();
            if ended && line.ends_with('\r') {
                line.pop();
            }
            if is_blank(&line) {
                if !matches!(segments.last(), Some(Segment::Blank)) {
                    segments.push(Segment::Blank);
                }
                continue;
            }
            constant_len += line.len() + 2;
            match segments.last_mut() {
                Some(Segment::Lines(prev)) => {
                    prev.push('\n');
                    prev.push_str(&line);
                }
                _ => segments.push(Segment::Lines(line)),
            }
        }
        BoundTemplate {
            segments,
            constant_len,
        }
    }
}

#[cfg_attr(
    not(feature = "exec"),
    allow(dead_code, reason = "the executor binds templates")
)]
impl BoundTemplate {
    /// The prompt of `spec` (whose file, workdir and preamble are the bound ones).
    pub(crate) fn render(&self, spec: &TaskSpec) -> String {
        let fields = spec.id().len()
            + spec.text().len()
            + spec.details().len()
            + spec
                .section_path()
                .iter()
                .map(|s| s.len() + 3)
                .sum::<usize>()
            + "the task list".len();
        let mut out = Collapsed {
            out: String::with_capacity(self.constant_len + fields),
            blank_run: false,
        };
        // Sized for the longest line with fields.
        let mut scratch = String::with_capacity(self.constant_len + fields);
        for segment in &self.segments {
            match segment {
                Segment::Lines(lines) => out.line(lines),
                Segment::Blank => out.blank_run = true,
                Segment::Fields { pieces, ended } => {
                    scratch.clear();
                    for piece in pieces {
                        match piece {
                            Piece::Text(t) => scratch.push_str(t),
                            Piece::Field(f) => push_field(&mut scratch, *f, spec),
                        }
                    }
                    out.text(&scratch, *ended);
                }
            }
        }
        out.out
    }
}

/// Appends field `f` of `spec` as [`PromptTemplate::render`] writes it.
fn push_field(out: &mut String, f: Field, spec: &TaskSpec) {
    let push_path = |out: &mut String, p: &std::path::Path| match p.to_str() {
        Some(p) => out.push_str(p),
        None => out.push_str(&p.display().to_string()),
    };
    match f {
        Field::Preamble => out.push_str(spec.preamble().trim()),
        Field::Section => {
            if spec.section_path().is_empty() {
                out.push_str("the task list");
            } else {
                for (k, s) in spec.section_path().iter().enumerate() {
                    if k > 0 {
                        out.push_str(" > ");
                    }
                    out.push_str(s);
                }
            }
        }
        Field::Task => out.push_str(spec.text().trim()),
        Field::Details => out.push_str(spec.details().trim_end()),
        Field::File => push_path(out, spec.task_file()),
        Field::Id => out.push_str(spec.id()),
        Field::Workdir => push_path(out, spec.workdir()),
    }
}

/// The output of [`collapse_blank_lines`] built line by line.
struct Collapsed {
    out: String,
    /// Blank lines came since the last line kept.
    blank_run: bool,
}

impl Collapsed {
    /// Keeps `line` (not blank; may be several lines none of them blank).
    fn line(&mut self, line: &str) {
        if !self.out.is_empty() {
            self.out.push('\n');
            if self.blank_run {
                self.out.push('\n');
            }
        }
        self.blank_run = false;
        self.out.push_str(line);
    }

    /// Takes the lines of `text`; its last one ends with a `\n` that follows
    /// it when `ended` (so a `\r` before it goes, as in [`str::lines`]).
    fn text(&mut self, text: &str, ended: bool) {
        let mut rest = text;
        loop {
            let (line, next, last) = match rest.find('\n') {
                Some(n) => (&rest[..n], &rest[n + 1..], false),
                None => (rest, "", true),
            };
            let line = if !last || ended {
                line.strip_suffix('\r').unwrap_or(line)
            } else {
                line
            };
            if is_blank(line) {
                self.blank_run = true;
            } else {
                self.line(line);
            }
            if last {
                return;
            }
            rest = next;
        }
    }
}

impl fmt::Display for PromptTemplate {
    /// The template's source text (placeholders and escaped braces restored).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => f.write_str(&t.replace('{', "{{").replace('}', "}}"))?,
                Piece::Field(field) => {
                    let name = PLACEHOLDERS[*field as usize];
                    write!(f, "{{{name}}}")?;
                }
            }
        }
        Ok(())
    }
}

/// Collapses runs of blank lines (whitespace-only lines count) into one blank
/// line, trims trailing spaces of blank lines, and trims both ends.
///
/// Lines are those of [`str::lines`] (`\n` or `\r\n`); a line is blank
/// when [`str::trim`] leaves nothing. This runs once per task of a run, so
/// it looks at a line's first bytes only until it meets one that is not
/// whitespace, and copies each kept line in one go.
pub(crate) fn collapse_blank_lines(text: &str) -> String {
    let mut out = Collapsed {
        out: String::with_capacity(text.len()),
        blank_run: false,
    };
    // A final `\n` ends the last line rather than starting an empty one.
    match text.strip_suffix('\n') {
        Some(t) => out.text(t, true),
        None => out.text(text, false),
    }
    out.out
}

/// `line.trim().is_empty()`, deciding at the first byte that is not ASCII
/// whitespace when it is ASCII.
fn is_blank(line: &str) -> bool {
    // `char::is_whitespace` in ASCII: tab, LF, VT, FF, CR and space.
    match line
        .bytes()
        .find(|b| !matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' '))
    {
        None => true,
        Some(b) if b.is_ascii() => false,
        Some(_) => line.trim().is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TaskSpec {
        TaskSpec::new("T004", "Add the login form")
            .with_details("- fields: email, password\n- validate on submit")
            .with_section_path(["Wave 2: UI", "Frontend"])
            .with_preamble("# Shop\n\nA React shop. Use TypeScript.")
            .with_task_file("/work/shop/tasks.md")
    }

    #[test]
    fn default_template_composes_preamble_section_task_details_file_and_the_rule() {
        let p = PromptTemplate::default().render(&spec());
        assert!(p.contains("A React shop. Use TypeScript."), "{p}");
        assert!(p.contains("(T004, under Wave 2: UI > Frontend)"), "{p}");
        assert!(
            p.contains("Add the login form\n\n- fields: email, password"),
            "{p}"
        );
        assert!(p.contains("`/work/shop/tasks.md`"), "{p}");
        assert!(p.contains("Do this one task only"), "{p}");
        assert!(p.contains("Do not edit the checkboxes"), "{p}");
        assert!(!p.contains("\n\n\n"), "{p}");
    }

    #[test]
    fn empty_preamble_and_details_leave_no_blank_holes() {
        let s = TaskSpec::new("a", "do it").with_task_file("t.md");
        let p = PromptTemplate::default().render(&s);
        assert!(!p.contains("\n\n\n"), "{p}");
        assert!(p.contains("(a, under the task list)"), "{p}");
        assert!(p.starts_with("You are one subagent"));
    }

    #[test]
    fn unknown_placeholder_is_an_error_naming_it_and_its_line() {
        let err = PromptTemplate::parse("Task:\n  {task}\n  {detials}\n").unwrap_err();
        assert_eq!(
            err,
            TemplateError::UnknownPlaceholder {
                name: "detials".into(),
                line: 3,
                col: 3,
                known: "{preamble} {section} {task} {details} {file} {id} {workdir}".into(),
            }
        );
        assert!(
            err.to_string()
                .starts_with("line 3, column 3: unknown placeholder `{detials}`")
        );
    }

    #[test]
    fn unclosed_brace_is_an_error_and_doubled_braces_are_literal() {
        assert_eq!(
            PromptTemplate::parse("x\nab {task").unwrap_err(),
            TemplateError::Unclosed { line: 2, col: 4 }
        );
        let t = PromptTemplate::parse("json: {{\"id\": \"{id}\"}}").unwrap();
        assert_eq!(t.render(&spec()), "json: {\"id\": \"T004\"}");
        assert_eq!(t.to_string(), "json: {{\"id\": \"{id}\"}}");
    }

    #[test]
    fn every_documented_placeholder_parses() {
        for p in PLACEHOLDERS {
            let t = PromptTemplate::parse(&format!("<{{{p}}}>")).unwrap();
            assert_eq!(t.to_string(), format!("<{{{p}}}>"));
        }
    }

    /// The definition `collapse_blank_lines` must keep.
    fn collapse_reference(text: &str) -> String {
        let mut out = String::new();
        let mut blank_run = 0;
        for line in text.lines() {
            if line.trim().is_empty() {
                blank_run += 1;
                continue;
            }
            if !out.is_empty() {
                out.push('\n');
                if blank_run > 0 {
                    out.push('\n');
                }
            }
            blank_run = 0;
            out.push_str(line);
        }
        out
    }

    #[test]
    fn collapsing_blank_lines_keeps_its_definition_on_every_kind_of_whitespace() {
        let pieces = [
            "", "a", " ", "\t", "\n", "\r\n", "\r", "\u{0b}", "\u{0c}", "\u{a0}", "\u{2003}",
            "\u{85}", "é", "x ", " y", "\n\n\n",
        ];
        // Every string of up to four pieces.
        let mut cases = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for c in &cases {
                for p in pieces {
                    next.push(format!("{c}{p}"));
                }
            }
            cases.extend(next);
            cases.dedup();
        }
        for c in &cases {
            assert_eq!(collapse_blank_lines(c), collapse_reference(c), "{c:?}");
        }
    }

    #[test]
    fn a_bound_template_renders_what_the_template_renders() {
        // Templates and specs made of lines, blanks of every kind, `\r\n`,
        // and every placeholder; random but the same on every run.
        let bits = [
            "", "a", " ", "\t", "\n", "\r\n", "\r", "\n\n", "\u{a0}", "é", "x y", "{{", "}}",
        ];
        let fields = [
            "{preamble}",
            "{section}",
            "{task}",
            "{details}",
            "{file}",
            "{id}",
            "{workdir}",
        ];
        let values = [
            "",
            "one",
            " two ",
            "\n",
            "a\nb",
            "a\r\n\r\nb\n",
            "\u{2003}",
            " \t\n x",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        for case in 0..4000 {
            let mut source = String::new();
            for _ in 0..next(12) {
                if next(3) == 0 {
                    source.push_str(fields[next(fields.len())]);
                } else {
                    source.push_str(bits[next(bits.len())]);
                }
            }
            let template = PromptTemplate::parse(&source).unwrap();
            let spec = TaskSpec::new(values[next(8)], values[next(8)])
                .with_details(values[next(8)])
                .with_preamble(values[next(8)])
                .with_section_path((0..next(3)).map(|_| values[next(8)]).collect::<Vec<_>>())
                .with_task_file(format!("/t/{}.md", values[next(8)]))
                .with_workdir(values[next(8)]);
            let bound = template.bind(spec.task_file(), spec.workdir(), spec.preamble());
            assert_eq!(
                bound.render(&spec),
                template.render(&spec),
                "case {case}: {source:?} {spec:?}"
            );
        }
        let spec = spec();
        let t = PromptTemplate::default();
        let bound = t.bind(spec.task_file(), spec.workdir(), spec.preamble());
        assert_eq!(bound.render(&spec), t.render(&spec));
    }

    #[test]
    fn task_text_with_braces_is_not_interpreted() {
        let s = TaskSpec::new("x", "print {task} literally and {{x}}");
        let t = PromptTemplate::parse("{task}").unwrap();
        assert_eq!(t.render(&s), "print {task} literally and {{x}}");
    }
}
