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
                    Field::Preamble => spec.preamble.len(),
                    Field::Section => spec
                        .section_path
                        .iter()
                        .map(|s| s.len() + 3)
                        .sum::<usize>()
                        .max("the task list".len()),
                    Field::Task => spec.text.len(),
                    Field::Details => spec.details.len(),
                    Field::File => spec.task_file.as_os_str().len(),
                    Field::Id => spec.id.len(),
                    Field::Workdir => spec.workdir.as_os_str().len(),
                },
            })
            .sum();
        let mut out = String::with_capacity(size);
        let push_path = |out: &mut String, p: &std::path::Path| match p.to_str() {
            Some(p) => out.push_str(p),
            None => out.push_str(&p.display().to_string()),
        };
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => match f {
                    Field::Preamble => out.push_str(spec.preamble.trim()),
                    Field::Section => {
                        if spec.section_path.is_empty() {
                            out.push_str("the task list");
                        } else {
                            for (k, s) in spec.section_path.iter().enumerate() {
                                if k > 0 {
                                    out.push_str(" > ");
                                }
                                out.push_str(s);
                            }
                        }
                    }
                    Field::Task => out.push_str(spec.text.trim()),
                    Field::Details => out.push_str(spec.details.trim_end()),
                    Field::File => push_path(&mut out, &spec.task_file),
                    Field::Id => out.push_str(&spec.id),
                    Field::Workdir => push_path(&mut out, &spec.workdir),
                },
            }
        }
        collapse_blank_lines(&out)
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
    let mut out = String::with_capacity(text.len());
    let mut blank_run = false;
    let mut rest = text;
    while !rest.is_empty() {
        let (line, next) = match rest.find('\n') {
            Some(n) => {
                let line = &rest[..n];
                (line.strip_suffix('\r').unwrap_or(line), &rest[n + 1..])
            }
            None => (rest, ""),
        };
        rest = next;
        if is_blank(line) {
            blank_run = true;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_run {
                out.push('\n');
            }
        }
        blank_run = false;
        out.push_str(line);
    }
    out
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
    use std::path::PathBuf;

    use super::*;

    fn spec() -> TaskSpec {
        let mut s = TaskSpec::new("T004", "Add the login form");
        s.details = "- fields: email, password\n- validate on submit".into();
        s.section_path = vec!["Wave 2: UI".into(), "Frontend".into()];
        s.preamble = "# Shop\n\nA React shop. Use TypeScript.".into();
        s.task_file = PathBuf::from("/work/shop/tasks.md");
        s
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
        let mut s = TaskSpec::new("a", "do it");
        s.task_file = PathBuf::from("t.md");
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
    fn task_text_with_braces_is_not_interpreted() {
        let s = TaskSpec::new("x", "print {task} literally and {{x}}");
        let t = PromptTemplate::parse("{task}").unwrap();
        assert_eq!(t.render(&s), "print {task} literally and {{x}}");
    }
}
