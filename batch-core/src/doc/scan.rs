//! One pass over pulldown-cmark's offset iterator, then the assembly of the
//! [`Document`]: texts and details, dialect, parents, waves, groups, ids.
//!
//! The pass is a loop over events with explicit stacks (open list items,
//! open headings): nothing recurses, so 800-deep nesting cannot overflow the
//! stack. Offsets from the parser are offsets into [`Source::body`]; every
//! range stored in the model is converted to the original file with
//! [`Source::orig`].
//!
//! Cost: the pass keeps one small record per task (hints, child items and
//! comments beside it, not in it); assembling turns each record into its
//! [`Task`] and gives the records' memory back as it goes. Each heading's
//! slug path is made once, not once per task under it. A 100,000-task file
//! stays within a few times a bare pulldown-cmark pass (the `parse_plan`
//! bench).
//!
//! Pitfalls handled here:
//! - In a loose list item, `Start(Paragraph)` comes before `TaskListMarker`
//!   in event order although the marker comes first in the source; the
//!   marker's range is checked against the source bytes (`[ ]`, `[x]`, `[X]`)
//!   rather than assumed.
//! - `- [ ]* 1.2 …` (kiro's optional task) is not a task to CommonMark: it is
//!   recognised from the source at the first inline event of the item.
//! - Multi-line comments arrive as several `Html` events: comments are read
//!   from the source over the whole HTML block instead.

use std::ops::Range;
use std::sync::Arc;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use super::dialect::{self, Signals};
use super::fxhash::{FxHashMap, map_with_capacity};
use super::hints::{self, Level, Problem};
use super::ids::{self, Candidate};
use super::model::*;
use super::prose;
use super::source::Source;
use crate::error::{Diagnostic, Diagnostics};

/// A task as the pass sees it (body offsets).
#[derive(Debug)]
struct RawTask {
    item: Range<usize>,
    marker: Range<usize>,
    checked: bool,
    optional_syntax: bool,
    text_start: usize,
    text_end: usize,
    nest_parent: Option<TaskIdx>,
    section: Option<SectionIdx>,
    /// Boxed: most tasks have none, and a `Hints` is 192 bytes.
    hints: Option<Box<Hints>>,
    list_step: Option<(usize, usize)>,
}

/// A line of prose outside any task (a paragraph's line, a list item's first
/// line), for the dependency readers of [`prose`].
#[derive(Debug)]
struct ProseLine {
    range: Range<usize>,
    section: Option<SectionIdx>,
    /// `(list, item number)` when it is the first line of a numbered item.
    list_pos: Option<(usize, usize)>,
}

#[derive(Debug)]
struct ListFrame {
    id: usize,
    ordered: bool,
    items: usize,
}

/// A hint comment whose level depends on where the waves start.
#[derive(Debug)]
struct Deferred {
    entries: Vec<hints::Entry>,
    at: usize,
    /// The heading it stands directly under, if any.
    section: Option<SectionIdx>,
}

/// A heading as the pass sees it.
#[derive(Debug)]
struct RawSection {
    level: u8,
    title: String,
    start: usize,
    parent: Option<SectionIdx>,
    hints: Hints,
    bold: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Para {
    /// No content of the item seen yet.
    Pending,
    /// Inside the item's first paragraph.
    Open,
    /// Past it.
    Done,
}

#[derive(Debug)]
struct ItemFrame {
    range: Range<usize>,
    task: Option<TaskIdx>,
    para: Para,
    /// Some inline content of the item was seen.
    seen_inline: bool,
    /// `(list, item number)` when the item is in a numbered list.
    list_pos: Option<(usize, usize)>,
}

struct Scanner<'s, 'a> {
    src: &'s Source<'a>,
    path: Option<std::path::PathBuf>,
    tasks: Vec<RawTask>,
    sections: Vec<RawSection>,
    items: Vec<ItemFrame>,
    lists: Vec<ListFrame>,
    lists_seen: usize,
    /// How many open list items are tasks.
    task_frames: usize,
    prose: Vec<ProseLine>,
    heading_stack: Vec<SectionIdx>,
    /// The heading whose title is being read.
    open_heading: Option<SectionIdx>,
    /// The section a hint comment would belong to (nothing but hints since its heading).
    after_heading: Option<SectionIdx>,
    doc_hints: Hints,
    /// Hint comments outside list items after the first heading: document
    /// hints when they turn out to stand in the preamble (before the first
    /// wave heading), else section hints or misplaced. Decided once the wave
    /// level is known.
    deferred: Vec<Deferred>,
    /// Hint comments outside list items (with the rest of their line when
    /// they stand alone on it): left out of the preamble.
    hint_comments: Vec<Range<usize>>,
    /// `(task, item)`: the list items of the tasks nested in a task, left
    /// out of its details. Kept beside the tasks rather than in them: most
    /// tasks have none, and 100,000 empty vectors cost 2.4 MB at the peak.
    child_items: Vec<(TaskIdx, Range<usize>)>,
    /// `(task, comment)`: the hint comments of a task, left out of its text
    /// and details, in document order.
    task_comments: Vec<(TaskIdx, Range<usize>)>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Errors beyond [`MAX_DIAGNOSTICS`], counted, with where the first was.
    errors_dropped: (usize, usize),
    /// Warnings beyond [`MAX_DIAGNOSTICS`], counted.
    warnings_dropped: usize,
}

/// Lines of prose longer than this (in bytes) are not read for dependencies.
const MAX_PROSE_LINE: usize = 2000;

/// At most this many errors (and as many warnings) are kept: a generated
/// file with a mistake on every line stays fast and its report readable.
const MAX_DIAGNOSTICS: usize = 200;

/// Source lines longer than this (in bytes) are cut after the column; a
/// column beyond it shows no source line (a 10 MB line is not copied into
/// every diagnostic).
const MAX_SOURCE_LINE: usize = 100_000;

pub(crate) fn parse(text: &str, options: &ParseOptions) -> Result<Document, Diagnostics> {
    let (doc, errors) = parse_keep_going(text, options);
    if errors.is_empty() {
        Ok(doc)
    } else {
        let mut all = errors;
        all.extend(doc.warnings);
        Err(Diagnostics(all))
    }
}

/// The document even when the file has errors (what is in error is left
/// out: a bad hint is ignored, a duplicate id renamed), and those errors.
pub(crate) fn parse_keep_going(text: &str, options: &ParseOptions) -> (Document, Vec<Diagnostic>) {
    let src = Source::new(text);
    let mut sc = Scanner {
        src: &src,
        path: options.path.clone(),
        tasks: Vec::new(),
        sections: Vec::new(),
        items: Vec::new(),
        lists: Vec::new(),
        lists_seen: 0,
        task_frames: 0,
        prose: Vec::new(),
        heading_stack: Vec::new(),
        open_heading: None,
        after_heading: None,
        doc_hints: Hints::default(),
        deferred: Vec::new(),
        hint_comments: Vec::new(),
        child_items: Vec::new(),
        task_comments: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        errors_dropped: (0, 0),
        warnings_dropped: 0,
    };
    sc.pass();
    sc.assemble(options)
}

impl Scanner<'_, '_> {
    fn body(&self) -> &str {
        &self.src.body
    }

    fn diag_at(&self, body_offset: usize, d: Diagnostic) -> Diagnostic {
        let pos = self.src.pos(self.src.orig(body_offset));
        let mut d = d;
        d.line = pos.line;
        d.col = pos.col;
        d.with_source_line(shown_line(self.src.line_text(pos.line), pos.col))
            .with_path(self.path.clone())
    }

    fn error(&mut self, at: usize, message: impl Into<String>, help: Option<String>) {
        if self.errors.len() >= MAX_DIAGNOSTICS {
            if self.errors_dropped.0 == 0 {
                self.errors_dropped.1 = at;
            }
            self.errors_dropped.0 += 1;
            return;
        }
        let mut d = Diagnostic::error(1, 1, message);
        d.help = help;
        let d = self.diag_at(at, d);
        self.errors.push(d);
    }

    fn warning(&mut self, at: usize, message: impl Into<String>, help: Option<String>) {
        if self.warnings.len() >= MAX_DIAGNOSTICS {
            self.warnings_dropped += 1;
            return;
        }
        let mut d = Diagnostic::warning(1, 1, message);
        d.help = help;
        let d = self.diag_at(at, d);
        self.warnings.push(d);
    }

    /// The single pass over the events.
    fn pass(&mut self) {
        let opts = Options::ENABLE_TASKLISTS
            | Options::ENABLE_TABLES
            | Options::ENABLE_STRIKETHROUGH
            | Options::ENABLE_FOOTNOTES;
        // The source outlives the scanner's borrow of it; parse the body by
        // reference so events can be handled while `self` is mutated.
        let src = self.src;
        let parser = Parser::new_ext(&src.body, opts).into_offset_iter();
        for (event, range) in parser {
            match event {
                Event::Start(tag) => self.start(tag, range),
                Event::End(tag) => self.end(tag, range),
                Event::TaskListMarker(checked) => self.task_marker(checked, range),
                Event::Text(t) => {
                    if let Some(s) = self.open_heading {
                        self.sections[s].title.push_str(&t);
                    }
                    self.inline(range);
                }
                Event::Code(t) => {
                    if let Some(s) = self.open_heading {
                        self.sections[s].title.push_str(&t);
                    }
                    self.inline(range);
                }
                Event::SoftBreak | Event::HardBreak => {
                    if let Some(s) = self.open_heading {
                        self.sections[s].title.push(' ');
                    }
                    self.inline(range);
                }
                Event::InlineHtml(_) => {
                    self.inline(range.clone());
                    self.comments_in(range);
                }
                Event::InlineMath(_) | Event::DisplayMath(_) | Event::FootnoteReference(_) => {
                    self.inline(range)
                }
                Event::Rule => self.block_starts(false),
                // Html events are read with their whole block at Start(HtmlBlock).
                Event::Html(_) => {}
            }
        }
    }

    fn start(&mut self, tag: Tag<'_>, range: Range<usize>) {
        let block = matches!(
            tag,
            Tag::Paragraph
                | Tag::Heading { .. }
                | Tag::BlockQuote(_)
                | Tag::CodeBlock(_)
                | Tag::HtmlBlock
                | Tag::List(_)
                | Tag::Item
                | Tag::FootnoteDefinition(_)
                | Tag::DefinitionList
                | Tag::DefinitionListTitle
                | Tag::DefinitionListDefinition
                | Tag::Table(_)
                | Tag::MetadataBlock(_)
        );
        if !block {
            // Emphasis, strong, links…: part of the paragraph's text.
            self.inline(range);
            return;
        }
        match tag {
            Tag::Paragraph => {
                if let Some(f) = self.items.last_mut() {
                    match f.para {
                        Para::Pending => f.para = Para::Open,
                        Para::Open => f.para = Para::Done,
                        Para::Done => {}
                    }
                }
                self.top_block_starts(false);
                if self.items.is_empty() {
                    self.top_paragraph(range);
                }
            }
            Tag::List(start) => {
                self.block_starts(false);
                self.lists_seen += 1;
                self.lists.push(ListFrame {
                    id: self.lists_seen,
                    ordered: start.is_some(),
                    items: 0,
                });
            }
            Tag::Item => {
                self.block_starts(false);
                let list_pos = self.lists.last_mut().and_then(|l| {
                    l.items += 1;
                    l.ordered.then_some((l.id, l.items))
                });
                // Prose outside tasks: the item's first line, when it is a
                // short one (a 400 KB line of `- - - …` is no dependency line,
                // and scanning it for every item would be quadratic).
                if self.task_frames == 0 {
                    let end = range.end.min(range.start + MAX_PROSE_LINE);
                    let whole = range.end - range.start <= MAX_PROSE_LINE;
                    if let Some(nl) = self.body().as_bytes()[range.start..end]
                        .iter()
                        .position(|&b| b == b'\n')
                        .or(whole.then_some(end - range.start))
                    {
                        self.prose.push(ProseLine {
                            range: range.start..range.start + nl,
                            section: self.heading_stack.last().copied(),
                            list_pos,
                        });
                    }
                }
                self.items.push(ItemFrame {
                    range,
                    task: None,
                    para: Para::Pending,
                    seen_inline: false,
                    list_pos,
                });
            }
            Tag::Heading { level, .. } => {
                self.block_starts(false);
                let level = level as u8;
                while let Some(&top) = self.heading_stack.last() {
                    if self.sections[top].level >= level {
                        self.heading_stack.pop();
                    } else {
                        break;
                    }
                }
                let idx = self.sections.len();
                self.sections.push(RawSection {
                    level,
                    title: String::new(),
                    start: range.start,
                    parent: self.heading_stack.last().copied(),
                    hints: Hints::default(),
                    bold: false,
                });
                self.heading_stack.push(idx);
                self.open_heading = Some(idx);
            }
            Tag::HtmlBlock => {
                self.block_starts(true);
                self.comments_in(range);
            }
            _ => self.block_starts(false),
        }
    }

    /// A paragraph outside any list: a phase written in bold
    /// (`**Phase 1: Setup**`) becomes a section one level below the heading
    /// above it; any other paragraph is prose, line by line.
    fn top_paragraph(&mut self, range: Range<usize>) {
        let text = &self.src.body[range.clone()];
        if let Some(title) = prose::bold_phase(text) {
            // One level below the nearest `#` heading: bold phases in a row
            // are siblings.
            let level = self
                .heading_stack
                .iter()
                .rev()
                .find(|&&s| !self.sections[s].bold)
                .map_or(1, |&s| self.sections[s].level + 1);
            if level <= 6 {
                while let Some(&top) = self.heading_stack.last() {
                    if self.sections[top].level >= level {
                        self.heading_stack.pop();
                    } else {
                        break;
                    }
                }
                let idx = self.sections.len();
                self.sections.push(RawSection {
                    level,
                    title,
                    start: range.start,
                    parent: self.heading_stack.last().copied(),
                    hints: Hints::default(),
                    bold: true,
                });
                self.heading_stack.push(idx);
                self.after_heading = Some(idx);
                return;
            }
        }
        let mut at = range.start;
        for line in text.split_inclusive('\n') {
            let end = at + line.trim_end().len();
            if end > at {
                self.prose.push(ProseLine {
                    range: at..end,
                    section: self.heading_stack.last().copied(),
                    list_pos: None,
                });
            }
            at += line.len();
        }
    }

    /// A block (other than a paragraph) starts: the innermost item's first
    /// paragraph is over, and a section's "directly under the heading" zone
    /// ends unless the block is an HTML block (a hint comment).
    fn block_starts(&mut self, html: bool) {
        if let Some(f) = self.items.last_mut()
            && (f.para != Para::Pending || !html)
        {
            f.para = Para::Done;
        }
        self.top_block_starts(html);
    }

    fn top_block_starts(&mut self, html: bool) {
        if self.items.is_empty() && !html {
            self.after_heading = None;
        }
    }

    fn end(&mut self, tag: TagEnd, range: Range<usize>) {
        match tag {
            TagEnd::List(_) => {
                self.lists.pop();
            }
            TagEnd::Item => {
                let Some(frame) = self.items.pop() else {
                    return;
                };
                if frame.task.is_some() {
                    self.task_frames -= 1;
                }
                if let Some(t) = frame.task {
                    self.tasks[t].item = range.clone();
                    let ancestor = self.items.iter().rev().find_map(|f| f.task);
                    if let Some(a) = ancestor {
                        self.child_items.push((a, range));
                    }
                }
            }
            TagEnd::Paragraph => {
                if let Some(f) = self.items.last_mut()
                    && f.para == Para::Open
                {
                    f.para = Para::Done;
                }
            }
            TagEnd::Heading(_) => {
                if let Some(s) = self.open_heading.take() {
                    let title = self.sections[s].title.trim();
                    // `## [ ] Phase 1`: the box is the author's progress mark,
                    // not part of the title.
                    let title = ["[ ] ", "[x] ", "[X] "]
                        .iter()
                        .find_map(|b| title.strip_prefix(b))
                        .unwrap_or(title)
                        .trim()
                        .to_string();
                    self.sections[s].title = title;
                    self.after_heading = Some(s);
                }
            }
            TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Link
            | TagEnd::Image
            | TagEnd::Superscript
            | TagEnd::Subscript => self.inline(range),
            _ => {}
        }
    }

    /// Inline content: extends the innermost item's first paragraph, and
    /// recognises kiro's `[ ]*` optional tasks at its first character.
    fn inline(&mut self, range: Range<usize>) {
        let Some(depth) = self.items.len().checked_sub(1) else {
            return;
        };
        let frame = &self.items[depth];
        if frame.para == Para::Done {
            return;
        }
        // In a loose item the paragraph has started already (`Open`) when
        // its first text arrives.
        if !frame.seen_inline && frame.task.is_none() {
            let at = range.start;
            let b = self.body().as_bytes();
            if b.get(at) == Some(&b'[')
                && matches!(b.get(at + 1), Some(b' ' | b'x' | b'X'))
                && b.get(at + 2) == Some(&b']')
                && b.get(at + 3) == Some(&b'*')
                && matches!(b.get(at + 4), None | Some(b' ' | b'\t' | b'\n' | b'\r'))
            {
                let checked = b[at + 1] != b' ';
                self.new_task(depth, at..at + 3, checked, true);
            }
        }
        let frame = &mut self.items[depth];
        frame.para = Para::Open;
        frame.seen_inline = true;
        if let Some(t) = frame.task {
            let task = &mut self.tasks[t];
            if range.end > task.text_end && range.start >= task.text_start {
                task.text_end = range.end;
            }
        }
    }

    fn task_marker(&mut self, checked: bool, range: Range<usize>) {
        let Some(depth) = self.items.len().checked_sub(1) else {
            return;
        };
        if self.items[depth].task.is_some() {
            return;
        }
        let item = self.items[depth].range.clone();
        let Some(at) = locate_marker(self.body(), &range, &item) else {
            let at = range.start;
            self.warning(
                at,
                "a checkbox whose `[ ]` could not be located in the source; it is not treated as a task",
                Some("write the box as `- [ ] text` on the item's first line".into()),
            );
            return;
        };
        self.new_task(depth, at..at + 3, checked, false);
    }

    fn new_task(&mut self, depth: usize, marker: Range<usize>, checked: bool, optional: bool) {
        let idx = self.tasks.len();
        // The item is a task, not prose.
        if self
            .prose
            .last()
            .is_some_and(|p| p.range.start == self.items[depth].range.start)
        {
            self.prose.pop();
        }
        let nest_parent = self.items[..depth].iter().rev().find_map(|f| f.task);
        let text_start = marker.end + usize::from(optional);
        // The nearest numbered item holding the task, below its parent task.
        let mut list_step = None;
        for (i, f) in self.items[..=depth].iter().enumerate().rev() {
            if i < depth && f.task.is_some() {
                break;
            }
            if f.list_pos.is_some() {
                list_step = f.list_pos;
                break;
            }
        }
        self.tasks.push(RawTask {
            item: self.items[depth].range.clone(),
            marker,
            checked,
            optional_syntax: optional,
            text_start,
            text_end: text_start,
            nest_parent,
            section: self.heading_stack.last().copied(),
            hints: None,
            list_step,
        });
        self.items[depth].task = Some(idx);
        self.task_frames += 1;
    }

    /// Reads every `<!-- … -->` comment starting inside `range`.
    fn comments_in(&mut self, range: Range<usize>) {
        let mut at = range.start;
        while at < range.end {
            let Some(open) = self.body()[at..range.end].find("<!--") else {
                break;
            };
            let open = at + open;
            let inner_start = open + 4;
            let Some(close) = self.body()[inner_start.min(range.end)..range.end].find("-->") else {
                break;
            };
            let close = inner_start + close;
            self.comment(open..close + 3, inner_start..close);
            at = close + 3;
        }
    }

    /// One comment: a hint (applied where it stands) or left alone.
    fn comment(&mut self, whole: Range<usize>, inner: Range<usize>) {
        let Some(entries) = hints::parse_comment(&self.src.body[inner.clone()], inner.start) else {
            return;
        };
        let task = self.items.iter().rev().find_map(|f| f.task);
        let problems = if let Some(t) = task {
            self.task_comments.push((t, whole.clone()));
            let hints = self.tasks[t].hints.get_or_insert_with(Box::default);
            hints::apply(&entries, Level::Task, hints)
        } else if !self.items.is_empty() {
            return self.misplaced(whole.start, "inside a list item that is not a task");
        } else {
            // With the rest of its line when that is blank. Only the blank
            // run is looked at: a line of 100,000 comments stays linear.
            let rest = &self.src.body.as_bytes()[whole.end..];
            let blank = rest
                .iter()
                .take_while(|&&b| matches!(b, b' ' | b'\t' | b'\r'))
                .count();
            let end = match rest.get(blank) {
                None => whole.end + blank,
                Some(b'\n') => whole.end + blank + 1,
                Some(_) => whole.end,
            };
            self.hint_comments.push(whole.start..end);
            if self.sections.is_empty() {
                hints::apply(&entries, Level::Document, &mut self.doc_hints)
            } else {
                self.deferred.push(Deferred {
                    entries,
                    at: whole.start,
                    section: self.after_heading,
                });
                return;
            }
        };
        self.problems(problems);
    }

    /// Applies the deferred hint comments once the first wave heading is known.
    fn apply_deferred(&mut self, first_wave_start: usize) {
        for d in std::mem::take(&mut self.deferred) {
            let problems = if d.at < first_wave_start {
                hints::apply(&d.entries, Level::Document, &mut self.doc_hints)
            } else if let Some(s) = d.section {
                hints::apply(&d.entries, Level::Section, &mut self.sections[s].hints)
            } else {
                self.misplaced(d.at, "not directly under a heading");
                continue;
            };
            self.problems(problems);
        }
    }

    fn misplaced(&mut self, at: usize, why: &str) {
        self.error(
            at,
            format!("this hint applies to nothing: it stands {why}"),
            Some(
                "put it directly under a heading (section), indented inside a task's list item \
                 (task), or before the first heading (document)"
                    .into(),
            ),
        );
    }

    fn problems(&mut self, problems: Vec<Problem>) {
        for p in problems {
            self.error(p.at, p.message, p.help);
        }
    }

    /// Builds the document from what the pass collected.
    /// The document (hints in error left out) and the errors found.
    fn assemble(mut self, options: &ParseOptions) -> (Document, Vec<Diagnostic>) {
        let src = self.src;
        let body: &str = &src.body;

        // The tasks, built straight from what the pass collected: texts,
        // prefixes, details, dependency text. Ids, parents by number, waves
        // and groups are filled in below. The pass's records are used up from
        // the end and their buffer given back as it goes, so the two never
        // take their full memory side by side (100,000 tasks).
        let mut raw_tasks = std::mem::take(&mut self.tasks);
        let n = raw_tasks.len();
        let mut tasks: Vec<Task> = Vec::with_capacity(n);
        // The id-shaped prefix of each task (spec-kit id, kiro number).
        let mut prefix_ids: Vec<(Option<String>, Option<String>)> = Vec::with_capacity(n);
        // Each task's list item (body offsets).
        let mut items: Vec<Range<usize>> = Vec::with_capacity(n);
        let mut signals = Signals {
            tasks: n,
            ..Signals::default()
        };
        // What every task without hints shares.
        let no_hints = Arc::new(Hints::default());
        // Grouped by task, in their order within each; the tasks are taken
        // from the end, so each task's entries are then at the end.
        let mut child_items = std::mem::take(&mut self.child_items);
        child_items.sort_by_key(|(t, _)| *t);
        let mut task_comments = std::mem::take(&mut self.task_comments);
        task_comments.sort_by_key(|(t, _)| *t);
        let take_last = |v: &mut Vec<(TaskIdx, Range<usize>)>, i: TaskIdx| -> Vec<Range<usize>> {
            let from = v.iter().rposition(|(t, _)| *t != i).map_or(0, |p| p + 1);
            v.drain(from..).map(|(_, r)| r).collect()
        };
        while let Some(mut t) = raw_tasks.pop() {
            let i = raw_tasks.len();
            let mut children = take_last(&mut child_items, i);
            let mut comments = take_last(&mut task_comments, i);
            let text_range = t.text_start..t.text_end.max(t.text_start);
            let full = paragraph_text(body, text_range, &comments);
            let prefix = dialect::read_prefix(&full);
            let text = full[prefix.rest..].trim().to_string();
            let det_start = t.text_end.max(t.text_start).min(t.item.end);
            let det = if children.is_empty() && comments.is_empty() {
                dedent(&body[det_start..t.item.end])
            } else {
                let mut excluded: Vec<Range<usize>> = std::mem::take(&mut children);
                excluded.append(&mut comments);
                excluded.sort_by_key(|r| r.start);
                dedent(&cut(body, det_start..t.item.end, &excluded))
            };
            let mut deps = Vec::new();
            dialect::depends_on(&full, &mut deps);
            if dialect::mentions_depend(&det) {
                for line in det.lines() {
                    dialect::depends_on(line, &mut deps);
                }
            }
            signals.speckit_ids += usize::from(prefix.speckit_id.is_some());
            signals.speckit_markers += usize::from(prefix.parallel && !prefix.kiro_parallel);
            signals.numbered += usize::from(prefix.number.is_some());
            signals.kiro_parallel += usize::from(prefix.kiro_parallel);
            let (optional, skip) = match &t.hints {
                Some(h) => (h.optional, h.skip),
                None => (None, None),
            };
            let hints = match t.hints.take() {
                Some(h) => Arc::new(*h),
                None => Arc::clone(&no_hints),
            };
            let mut task = Task::new(
                i,
                src.pos(src.orig(t.item.start)),
                src.orig_range(&t.marker),
                hints,
            );
            // The id is filled in below.
            task.text = text;
            task.details = det;
            task.checked = t.checked;
            task.optional = optional.unwrap_or(t.optional_syntax || prefix.optional);
            task.skip = skip.unwrap_or(false);
            // By nesting; kiro numbers may add parents below.
            task.parent = t.nest_parent;
            task.section = t.section;
            task.parallel_marker = prefix.parallel;
            task.set_depends_on(deps);
            task.set_story(prefix.story);
            task.set_list_step(t.list_step);
            tasks.push(task);
            prefix_ids.push((prefix.speckit_id, prefix.number));
            items.push(t.item);
            if i.is_multiple_of(4096) {
                raw_tasks.shrink_to_fit();
            }
        }
        tasks.reverse();
        prefix_ids.reverse();
        items.reverse();

        // Which headings have tasks beneath them.
        let mut has_tasks = vec![false; self.sections.len()];
        let mut direct_tasks = vec![false; self.sections.len()];
        for t in &tasks {
            if let Some(s) = t.section {
                direct_tasks[s] = true;
            }
            let mut cur = t.section;
            while let Some(s) = cur {
                if has_tasks[s] {
                    break;
                }
                has_tasks[s] = true;
                cur = self.sections[s].parent;
            }
        }

        // The document title: the only top-level heading with tasks, when
        // every task stands under it. It is in no id, so ids stay the same
        // when waves are added; and when no task sits directly under it, it
        // is no wave either (`# Billing` over a lone `## Wave 1`).
        let lone_title: Option<SectionIdx> = {
            let mut roots = (0..self.sections.len())
                .filter(|&i| self.sections[i].parent.is_none() && has_tasks[i]);
            match (roots.next(), roots.next()) {
                (Some(r), None) if tasks.iter().all(|t| t.section.is_some()) => Some(r),
                _ => None,
            }
        };
        let skipped_title = lone_title.filter(|&t| !direct_tasks[t]);

        // Dialect.
        let signals = Signals {
            phase_headings: self
                .sections
                .iter()
                .filter(|s| dialect::is_phase_heading(&s.title))
                .count(),
            // memchr's SIMD search: `str::matches` costs 3 instructions a byte.
            requirements_lines: memchr::memmem::find_iter(body.as_bytes(), "_Requirements:")
                .count(),
            // `## 1. Foundation`: cc-sdd's and OpenSpec's groups are level-2 headings.
            numbered_groups: self
                .sections
                .iter()
                .enumerate()
                .filter(|(i, s)| {
                    direct_tasks[*i] && s.level <= 2 && dialect::is_numbered_heading(&s.title)
                })
                .count(),
            task_headings: direct_tasks.iter().filter(|d| **d).count(),
            ..signals
        };
        let (dialect, dialect_reason) = match options.dialect {
            Some(d) => (d, "set by --dialect".to_string()),
            None => dialect::detect(&signals),
        };

        // Parents: by nesting, and in kiro files also by number, but only a
        // numbered task without work of its own: `- [ ] 2. Data models`
        // followed by `- [ ] 2.1 …` at its indentation heads 2.1, while
        // `- [ ] 2. Implement AuthService` with bullets saying how is a task,
        // and `2.1` simply comes after it.
        if dialect == Dialect::Kiro {
            let mut parents: Vec<Option<TaskIdx>> = tasks.iter().map(|t| t.parent).collect();
            let own_work: Vec<bool> = tasks.iter().map(|t| has_own_work(&t.details)).collect();
            let mut by_number: FxHashMap<&str, TaskIdx> = map_with_capacity(n);
            for (i, (_, number)) in prefix_ids.iter().enumerate() {
                let Some(num) = number.as_deref() else {
                    continue;
                };
                if let Some((head, _)) = num.rsplit_once('.')
                    && let Some(&c) = by_number.get(head)
                    && parents[i] == tasks[c].parent
                    && parents[i].is_none_or(|p| p != c)
                    && !own_work[c]
                {
                    parents[i] = Some(c);
                }
                by_number.insert(num, i);
            }
            drop(by_number);
            for (t, p) in tasks.iter_mut().zip(parents) {
                t.parent = p;
            }
        }

        // Wave level.
        // A `wave-level:` hint may stand anywhere before the first task.
        let first_task = items.first().map_or(body.len(), |r| r.start);
        let preamble_wave_level =
            self.deferred
                .iter()
                .filter(|d| d.at < first_task)
                .find_map(|d| {
                    let mut scratch = Hints::default();
                    hints::apply(&d.entries, Level::Document, &mut scratch);
                    scratch.wave_level
                });
        let requested = options
            .wave_level
            .or(self.doc_hints.wave_level)
            .or(preamble_wave_level);
        let mut counts = [0usize; 7];
        let mut any_at = [false; 7];
        for (i, s) in self.sections.iter().enumerate() {
            let l = usize::from(s.level.min(6));
            any_at[l] = true;
            if has_tasks[i] {
                counts[l] += 1;
            }
        }
        let wave_level: u8 = match requested {
            Some(l) if (1..=6).contains(&l) && any_at[usize::from(l)] => l,
            Some(l) => {
                self.errors.push(
                    Diagnostic::error(
                        1,
                        1,
                        format!(
                            "wave level {l} was asked for, but the file has no level-{l} headings"
                        ),
                    )
                    .with_help(
                        match (1..=6u8)
                            .filter(|l| any_at[usize::from(*l)])
                            .map(|l| l.to_string())
                            .collect::<Vec<_>>()
                        {
                            levels if levels.is_empty() => {
                                "the file has no headings; leave the wave level out".to_string()
                            }
                            levels => format!("use a level the file has: {}", levels.join(", ")),
                        },
                    )
                    .with_source_line(src.line_text(1))
                    .with_path(self.path.clone()),
                );
                0
            }
            None => {
                // Below a skipped title: its own level has only it. A title
                // with open tasks of its own is still the title when waves
                // stand below it: those tasks run before the first wave.
                let from = match lone_title {
                    Some(t) => {
                        let below = self.sections[t].level.min(6) + 1;
                        if skipped_title.is_some()
                            || (below..=6u8).any(|l| counts[usize::from(l)] >= 1)
                        {
                            below
                        } else {
                            1
                        }
                    }
                    None => 1,
                };
                (from..=6u8)
                    .find(|l| counts[usize::from(*l)] >= 2)
                    .or_else(|| (from..=6u8).find(|l| counts[usize::from(*l)] >= 1))
                    .unwrap_or(0)
            }
        };

        // Hints in the preamble belong to the document.
        let first_wave_start = if wave_level == 0 {
            first_task
        } else {
            (0..self.sections.len())
                .find(|&i| self.sections[i].level == wave_level && has_tasks[i])
                .map_or(body.len(), |i| self.sections[i].start)
        };
        self.apply_deferred(first_wave_start);

        // Waves and groups.
        let mut waves: Vec<Wave> = Vec::new();
        let mut groups: Vec<Group> = Vec::new();
        // For each section: the wave heading and the group heading above it.
        let mut wave_section_of: Vec<Option<SectionIdx>> = vec![None; self.sections.len()];
        let mut group_section_of: Vec<Option<SectionIdx>> = vec![None; self.sections.len()];
        if wave_level > 0 {
            for i in 0..self.sections.len() {
                let s = &self.sections[i];
                if s.level == wave_level {
                    wave_section_of[i] = Some(i);
                } else if s.level > wave_level
                    && let Some(p) = s.parent
                {
                    wave_section_of[i] = wave_section_of[p];
                    group_section_of[i] = if s.level == wave_level + 1 {
                        Some(i)
                    } else {
                        group_section_of[p]
                    };
                }
            }
        } else {
            waves.push(Wave {
                index: 0,
                section: None,
                title: "(document)".to_string(),
                groups: Vec::new(),
            });
        }
        let default_parallel = match dialect {
            Dialect::Waves => Parallelism::Unbounded,
            _ => Parallelism::Sequential,
        };
        let mut early_items: Vec<Range<usize>> = Vec::new();
        let mut group_key: FxHashMap<(WaveIdx, Option<SectionIdx>), GroupIdx> =
            FxHashMap::default();
        if wave_level == 0 {
            // One wave, one group.
            let g = self.new_group(&mut groups, &mut waves, 0, None, default_parallel);
            for (i, t) in tasks.iter_mut().enumerate() {
                t.wave = Some(0);
                t.group = Some(g);
                groups[g].tasks.push(i);
            }
        } else {
            for i in 0..n {
                let Some(s) = tasks[i].section else {
                    continue;
                };
                // Open tasks under the title, before the first wave heading
                // (an author's "Critical: fix README.md" at the top): a wave
                // of their own that runs first.
                let early = wave_section_of[s].is_none()
                    && self.sections[s].level < wave_level
                    && items[i].start < first_wave_start;
                let Some(ws) = wave_section_of[s].or(early.then_some(s)) else {
                    continue;
                };
                if early {
                    early_items.push(items[i].clone());
                }
                // Waves are made as their first task is met: a heading at the
                // wave level without tasks (a legend, notes) is no wave.
                let w = match waves.last() {
                    Some(last) if last.section == Some(ws) => last.index,
                    _ => {
                        waves.push(Wave {
                            index: waves.len(),
                            section: Some(ws),
                            title: self.sections[ws].title.clone(),
                            groups: Vec::new(),
                        });
                        waves.len() - 1
                    }
                };
                let gs = if early { None } else { group_section_of[s] };
                let g = match group_key.get(&(w, gs)) {
                    Some(&g) => g,
                    None => {
                        let g = self.new_group(&mut groups, &mut waves, w, gs, default_parallel);
                        group_key.insert((w, gs), g);
                        g
                    }
                };
                tasks[i].wave = Some(w);
                tasks[i].group = Some(g);
                groups[g].tasks.push(i);
            }
        }

        // Ids.
        // The slug path of each section, computed once per heading rather
        // than once per task under it: the whole heading path but the
        // document title, not the path from the wave heading, so ids do not
        // depend on the detected (or asked for) wave level. Each title is
        // normalised first: a heading an agent decorates with `✅ COMPLETE`
        // keeps its tasks' ids. Parents come before their children.
        let mut section_path: Vec<String> = Vec::with_capacity(self.sections.len());
        for (i, sec) in self.sections.iter().enumerate() {
            let mut path = match sec.parent {
                Some(p) if Some(i) != lone_title => section_path[p].clone(),
                _ => String::new(),
            };
            if Some(i) != lone_title {
                let slug = ids::slug(&ids::module_name(&sec.title), 24);
                if !slug.is_empty() {
                    if !path.is_empty() {
                        path.push('/');
                    }
                    path.push_str(&slug);
                }
            }
            section_path.push(path);
        }
        let candidates: Vec<Candidate> = (0..n)
            .map(|i| {
                let t = &tasks[i];
                let hint = t.hints.id.clone();
                let (speckit, number) = std::mem::take(&mut prefix_ids[i]);
                // Only a task without a hint, spec-kit id or number is named
                // by its slug.
                let slug = if hint.is_some() || speckit.is_some() || number.is_some() {
                    String::new()
                } else {
                    let prefix = t.section.map_or("", |s| section_path[s].as_str());
                    let mut slug = String::with_capacity(prefix.len() + 41);
                    slug.push_str(prefix);
                    if !prefix.is_empty() {
                        slug.push('/');
                    }
                    // The first line only (the slug stops at a line end):
                    // editing a continuation line keeps the id.
                    let at = slug.len();
                    ids::push_slug(&mut slug, &t.text, 40);
                    if slug.len() == at {
                        slug.push_str("task");
                    }
                    slug
                };
                Candidate {
                    hint,
                    speckit,
                    number,
                    slug,
                }
            })
            .collect();
        let assigned = ids::assign(candidates);
        for &(first, again) in &assigned.duplicate_hints {
            let first_line = src.line_of(src.orig(items[first].start));
            let id = tasks[again].hints.id.clone().unwrap_or_default();
            let at = items[again].start;
            self.error(
                at,
                format!("duplicate task id `{id}` (also on line {first_line})"),
                Some("give each task its own `id:`".into()),
            );
        }
        for &(first, again) in &assigned.duplicate_derived {
            let first_line = src.line_of(src.orig(items[first].start));
            let at = items[again].start;
            let id = assigned.ids[again].0.clone();
            self.warning(
                at,
                format!("this task's id is also used on line {first_line}; it is `{id}` here"),
                Some("renumber the task, or give it an `id:` hint".into()),
            );
        }

        // Empty tasks are not warned about here: `plan::check_document`
        // reports each open one once, with its id (`mdbatch check`).

        // The ids.
        for (t, (id, id_source)) in tasks.iter_mut().zip(assigned.ids) {
            t.id = id;
            t.id_source = id_source;
        }
        for i in 0..n {
            if let Some(p) = tasks[i].parent {
                tasks[p].push_child(i);
            }
        }

        let sections: Vec<Section> = self
            .sections
            .iter()
            .enumerate()
            .map(|(i, s)| Section {
                index: i,
                level: s.level,
                title: s.title.clone(),
                pos: src.pos(src.orig(s.start)),
                parent: s.parent,
                hints: s.hints.clone(),
                not_work: prose::not_work_title(&s.title),
                bold_paragraph: s.bold,
            })
            .collect();
        let prose_deps = self.prose_deps(&sections);

        // The preamble: before the first wave heading (or the first task).
        let pre_end = if wave_level > 0 {
            first_wave_start.min(body.len())
        } else {
            items
                .first()
                .map_or(body.len(), |r| src.body_line_start(r.start))
        };
        let pre_start = src.front_matter_end.min(pre_end);
        // Hints are for mdbatch, not for the subagents the preamble is given to.
        // Tasks that run before the first wave are work, not context.
        self.hint_comments.extend(early_items);
        self.hint_comments.sort_by_key(|r| r.start);
        let preamble = cut(body, pre_start..pre_end, &self.hint_comments)
            .trim()
            .replace('\r', "");

        if self.warnings_dropped > 0 {
            let n = self.warnings_dropped;
            self.warnings.push(
                Diagnostic::warning(1, 1, format!("{n} more warnings not shown"))
                    .with_source_line(shown_line(src.line_text(1), 1))
                    .with_path(self.path.clone()),
            );
        }
        if self.errors_dropped.0 > 0 {
            let (n, at) = self.errors_dropped;
            let d = self.diag_at(
                at,
                Diagnostic::error(1, 1, format!("{n} more errors from here on, not shown"))
                    .with_help("fix the errors above and check again"),
            );
            self.errors.push(d);
        }
        let doc = Document {
            path: options.path.clone(),
            bom: src.bom > 0,
            crlf: src.crlf,
            front_matter: src.front_matter.clone(),
            preamble,
            sections,
            tasks,
            waves,
            groups,
            wave_level,
            dialect,
            dialect_reason,
            hints: self.doc_hints,
            warnings: self.warnings,
            prose_deps,
            id_index: Default::default(),
        };
        (doc, self.errors)
    }

    /// Dependencies written in prose outside the tasks (see [`prose`]).
    fn prose_deps(&self, sections: &[Section]) -> Vec<ProseDep> {
        let src = self.src;
        let in_order_section = |mut s: Option<SectionIdx>| {
            let mut guard = 0;
            while let Some(i) = s {
                let Some(sec) = sections.get(i) else {
                    return false;
                };
                if prose::order_title(&sec.title) {
                    return true;
                }
                s = sec.parent;
                guard += 1;
                if guard > 64 {
                    return false;
                }
            }
            false
        };
        let mut out = Vec::new();
        // The previous numbered item of an order list: (list, its references).
        let mut prev_item: Option<(usize, Vec<String>)> = None;
        for p in &self.prose {
            let text = &src.body[p.range.clone()];
            if text.len() > 2000 {
                continue;
            }
            let line = src.line_of(src.orig(p.range.start));
            let source = text.trim().to_string();
            let dep = |waiter: ProseWaiter, on: Vec<String>| ProseDep {
                waiter,
                on,
                line,
                source: source.clone(),
            };
            if let Some(on) = prose::dependencies_line(text) {
                // `**Dependencies:** None` is kept too: the author said what
                // the section waits for (nothing).
                if let Some(s) = p.section {
                    out.push(dep(ProseWaiter::Section(s), on));
                }
                continue;
            }
            let named = prose::waiter_line(text);
            if !named.is_empty() {
                for (waiter, on) in named {
                    out.push(dep(ProseWaiter::Named(waiter), on));
                }
                continue;
            }
            if !in_order_section(p.section) {
                continue;
            }
            if let Some(steps) = prose::arrow_chain(text) {
                for w in steps.windows(2) {
                    for waiter in &w[1] {
                        out.push(dep(ProseWaiter::Named(waiter.clone()), w[0].clone()));
                    }
                }
                if let (Some((list, _)), Some(last)) = (p.list_pos, steps.last()) {
                    // The next numbered item waits for this line's last step.
                    if let (Some((plist, prev)), Some(first)) = (&prev_item, steps.first())
                        && *plist == list
                    {
                        for waiter in first {
                            out.push(dep(ProseWaiter::Named(waiter.clone()), prev.clone()));
                        }
                    }
                    prev_item = Some((list, last.clone()));
                }
                continue;
            }
            if let Some((list, _)) = p.list_pos {
                let refs = prose::refs_in(prose::strip_bullet(text), false);
                if refs.is_empty() {
                    // A step that names nothing we know: what follows cannot
                    // be tied to what came before it.
                    prev_item = None;
                    continue;
                }
                if let Some((plist, prev)) = &prev_item
                    && *plist == list
                {
                    for waiter in &refs {
                        out.push(dep(ProseWaiter::Named(waiter.clone()), prev.clone()));
                    }
                }
                prev_item = Some((list, refs));
            }
        }
        out
    }

    /// A new group in wave `w` for group heading `section` (`None`: the lead group).
    fn new_group(
        &self,
        groups: &mut Vec<Group>,
        waves: &mut [Wave],
        w: WaveIdx,
        section: Option<SectionIdx>,
        default_parallel: Parallelism,
    ) -> GroupIdx {
        let wave_section = waves[w].section;
        let own = section.map(|s| &self.sections[s].hints);
        let wave_hints = wave_section.map(|s| &self.sections[s].hints);
        let hinted = own
            .and_then(|h| h.parallel)
            .or_else(|| wave_hints.and_then(|h| h.parallel))
            .or(self.doc_hints.parallel);
        let title = match section {
            Some(s) => self.sections[s].title.clone(),
            None => waves[w].title.clone(),
        };
        // A BMAD story's "Tasks / Subtasks": its dev agent works them in
        // order, each on what the one before built.
        let default_parallel = match default_parallel {
            Parallelism::Unbounded if prose::in_order_tasks_title(&title) => {
                Parallelism::Sequential
            }
            other => other,
        };
        let module = match section {
            Some(s) => Some(
                self.sections[s]
                    .hints
                    .module
                    .clone()
                    .unwrap_or_else(|| ids::module_name(&self.sections[s].title)),
            ),
            None => wave_hints.and_then(|h| h.module.clone()),
        };
        let g = groups.len();
        groups.push(Group {
            index: g,
            wave: w,
            section,
            title,
            module,
            tasks: Vec::new(),
            parallel: hinted.unwrap_or(default_parallel),
            parallel_from_hint: hinted.is_some(),
            after: own.map(|h| h.after.clone()).unwrap_or_default(),
        });
        waves[w].groups.push(g);
        g
    }
}

/// The source line kept in a diagnostic: whole unless huge.
fn shown_line(line: &str, col: usize) -> String {
    if line.len() <= MAX_SOURCE_LINE {
        return line.to_string();
    }
    if col > MAX_SOURCE_LINE / 2 {
        return String::new();
    }
    line.chars().take(col + 80).collect()
}

/// Where the 3-byte `[?]` marker is: the event's range when it holds one,
/// else the first `[?]` on the item's first line.
fn locate_marker(body: &str, event: &Range<usize>, item: &Range<usize>) -> Option<usize> {
    let is_marker = |at: usize| {
        let b = body.as_bytes();
        b.get(at) == Some(&b'[')
            && matches!(b.get(at + 1), Some(b' ' | b'x' | b'X'))
            && b.get(at + 2) == Some(&b']')
    };
    if is_marker(event.start) {
        return Some(event.start);
    }
    let line_end = body[item.start..item.end.min(body.len())]
        .find('\n')
        .map_or(item.end, |e| item.start + e);
    (item.start..line_end.saturating_sub(2)).find(|&at| is_marker(at))
}

/// `body[range]` without the `excluded` ranges (sorted by start).
fn cut(body: &str, range: Range<usize>, excluded: &[Range<usize>]) -> String {
    let mut out = String::new();
    let mut at = range.start;
    for ex in excluded {
        if ex.end <= at || ex.start >= range.end {
            continue;
        }
        // Drop the indentation before an excluded block too, so the line it
        // stood on does not glue onto the next one. Only a line start at or
        // after `at` matters, so the search for it stops there: 100,000
        // comments on one line stay linear.
        let from = at.saturating_sub(1).min(ex.start);
        let line_start = match body[from..ex.start].rfind('\n') {
            Some(p) => from + p + 1,
            None if from == 0 => 0,
            None => from,
        };
        let start = if line_start >= at && body[line_start..ex.start].trim().is_empty() {
            line_start
        } else {
            ex.start
        };
        if start > at {
            out.push_str(&body[at..start]);
        }
        at = at.max(ex.end);
    }
    if at < range.end {
        out.push_str(&body[at..range.end]);
    }
    out
}

/// A task's first paragraph as [`clean_text`] gives it, from `body[range]`
/// without the `comments` (sorted by start). A one-line paragraph without
/// comments, the common case, is trimmed without building the cut first.
fn paragraph_text<'b>(
    body: &'b str,
    range: Range<usize>,
    comments: &[Range<usize>],
) -> std::borrow::Cow<'b, str> {
    let raw = &body[range.clone()];
    if memchr::memchr(b'\n', raw.as_bytes()).is_none()
        && comments
            .iter()
            .all(|c| c.end <= range.start || c.start >= range.end)
    {
        return std::borrow::Cow::Borrowed(raw.trim());
    }
    std::borrow::Cow::Owned(clean_text(&cut(body, range, comments)))
}

/// A paragraph's source text: each line trimmed (continuation lines lose
/// their indentation and blockquote `>`), joined with `\n`.
fn clean_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for (i, line) in raw.lines().enumerate() {
        let mut l = line.trim();
        if i > 0 {
            while let Some(r) = l.strip_prefix('>') {
                l = r.trim_start();
            }
        }
        if l.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(l);
    }
    out
}

/// Whether a task's details describe work of its own: a line that is not
/// kiro metadata (`_Requirements: 1.1_`, `_Depends: 2.1_`, `_Boundary: …_`).
fn has_own_work(details: &str) -> bool {
    details.lines().any(|l| {
        let l = prose::strip_bullet(l).trim();
        if l.is_empty() || (l.starts_with('_') && l.ends_with('_')) {
            return false;
        }
        let lower = l.trim_start_matches(['_', '*']).to_lowercase();
        ![
            "requirements:",
            "requirement:",
            "depends",
            "dependencies:",
            "boundary:",
            "leverage:",
            "references:",
        ]
        .iter()
        .any(|m| lower.starts_with(m))
    })
}

/// Removes the common indentation, CRs, blank lines at both ends and runs of
/// blank lines.
fn dedent(raw: &str) -> String {
    if raw.trim().is_empty() {
        return String::new();
    }
    let lines: Vec<&str> = raw.lines().map(|l| l.trim_end_matches('\r')).collect();
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    let mut blank_run = false;
    for l in lines {
        if l.trim().is_empty() {
            blank_run = !out.is_empty();
            continue;
        }
        if blank_run {
            out.push('\n');
            blank_run = false;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        let cut = l.len() - l.trim_start_matches([' ', '\t']).len();
        out.push_str(l[cut.min(indent)..].trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Document {
        match parse(text, &ParseOptions::default()) {
            Ok(d) => d,
            Err(e) => panic!("parse failed:\n{e}"),
        }
    }

    fn errors(text: &str) -> Vec<Diagnostic> {
        match parse(text, &ParseOptions::default()) {
            Ok(d) => panic!("expected errors, got {} tasks", d.tasks.len()),
            Err(e) => e.0.into_iter().filter(|d| d.is_error()).collect(),
        }
    }

    #[test]
    fn tight_list_tasks_have_text_marker_and_state() {
        let text = "# W1\n- [ ] one\n- [x] two\n# W2\n- [X] three\n";
        let d = doc(text);
        assert_eq!(d.tasks.len(), 3);
        assert_eq!(d.tasks[0].text, "one");
        assert!(!d.tasks[0].checked);
        assert!(d.tasks[1].checked && d.tasks[2].checked);
        for t in &d.tasks {
            assert_eq!(
                &text[t.marker.clone()],
                if t.checked {
                    &text[t.marker.clone()]
                } else {
                    "[ ]"
                }
            );
            assert_eq!(text.as_bytes()[t.marker.start], b'[');
        }
        assert_eq!(d.tasks[0].pos.line, 2);
    }

    #[test]
    fn loose_list_marker_is_located_in_the_source() {
        let text = "* [ ] loose\n\n  para two\n\n* [x] next\n";
        let d = doc(text);
        assert_eq!(d.tasks.len(), 2);
        assert_eq!(&text[d.tasks[0].marker.clone()], "[ ]");
        assert_eq!(&text[d.tasks[1].marker.clone()], "[x]");
        assert_eq!(d.tasks[0].text, "loose");
        assert_eq!(d.tasks[0].details, "para two");
    }

    #[test]
    fn ordered_and_blockquoted_tasks_are_found() {
        let text = "1. [ ] first\n2. [x] second\n\n> - [ ] quoted\n";
        let d = doc(text);
        let texts: Vec<_> = d.tasks.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["first", "second", "quoted"]);
        for t in &d.tasks {
            assert!(matches!(&text[t.marker.clone()], "[ ]" | "[x]"));
        }
    }

    #[test]
    fn checkboxes_in_code_html_and_comments_are_not_tasks() {
        let text = "# T\n```\n- [ ] fenced\n```\n\n    - [ ] indented\n\n<div>\n- [ ] html\n</div>\n\n<!-- - [ ] comment -->\n- [ ] real\n";
        let d = doc(text);
        let texts: Vec<_> = d.tasks.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["real"]);
    }

    #[test]
    fn kiro_optional_tasks_are_found_from_the_source() {
        let text = "- [ ] 1. Parent\n- [ ]* 1.2 Write property test\n- [x]* 1.3 Done one\n";
        let d = doc(text);
        assert_eq!(d.tasks.len(), 3);
        let t = &d.tasks[1];
        assert!(t.optional);
        assert!(!t.checked);
        assert_eq!(&text[t.marker.clone()], "[ ]");
        assert_eq!(t.id, "1.2");
        assert_eq!(t.text, "Write property test");
        assert!(d.tasks[2].optional && d.tasks[2].checked);
        assert!(!d.tasks[0].optional);
    }

    #[test]
    fn details_exclude_child_tasks_and_are_dedented() {
        let text =
            "- [ ] parent\n  - note a\n    more\n  - [ ] child\n    - child detail\n  - note b\n";
        let d = doc(text);
        assert_eq!(d.tasks[0].details, "- note a\n  more\n- note b");
        assert_eq!(d.tasks[1].details, "- child detail");
        assert_eq!(d.tasks[1].parent, Some(0));
        assert_eq!(d.tasks[0].children(), [1]);
    }

    #[test]
    fn text_keeps_inline_markdown_and_drops_trailing_hints() {
        let d = doc("- [ ] Add **login** to `api.rs` <!-- id: login -->\n");
        assert_eq!(d.tasks[0].text, "Add **login** to `api.rs`");
        assert_eq!(d.tasks[0].id, "login");
        assert_eq!(d.tasks[0].id_source, IdSource::Hint);
    }

    #[test]
    fn multi_line_text_is_joined_by_lines() {
        let d = doc("- [ ] first line\n  second line\n");
        assert_eq!(d.tasks[0].text, "first line\nsecond line");
    }

    #[test]
    fn wave_level_is_the_shallowest_with_two_task_headings() {
        let d = doc("# Title\n\nintro\n\n## A\n- [ ] a\n## B\n### G\n- [ ] b\n");
        assert_eq!(d.wave_level, 2);
        let titles: Vec<_> = d.waves.iter().map(|w| w.title.as_str()).collect();
        assert_eq!(titles, ["A", "B"]);
        assert_eq!(d.preamble, "# Title\n\nintro");
        let g = &d.groups[d.tasks[1].group.unwrap()];
        assert_eq!(g.title, "G");
        assert_eq!(g.module.as_deref(), Some("g"));
        let lead = &d.groups[d.tasks[0].group.unwrap()];
        assert_eq!(lead.section, None);
        assert_eq!(lead.module, None);
        assert_eq!(lead.title, "A");
    }

    #[test]
    fn a_file_without_headings_is_one_wave_with_one_group() {
        let d = doc("Intro.\n\n- [ ] a\n- [ ] b\n");
        assert_eq!(d.wave_level, 0);
        assert_eq!(d.waves.len(), 1);
        assert_eq!(d.waves[0].title, "(document)");
        assert_eq!(d.groups.len(), 1);
        assert_eq!(d.groups[0].tasks, [0, 1]);
        assert_eq!(d.preamble, "Intro.");
    }

    #[test]
    fn open_tasks_under_the_title_run_first_in_a_wave_of_their_own() {
        let d = doc("# T\n\nIntro.\n\n- [ ] early\n## A\n- [ ] a\n## B\n- [ ] b\n");
        assert_eq!(d.wave_level, 2);
        assert_eq!(d.tasks[0].wave, Some(0));
        assert_eq!(d.waves[0].title, "T");
        assert_eq!(d.tasks[1].wave, Some(1));
        assert_eq!(d.tasks[2].wave, Some(2));
        // The preamble keeps the title and intro, not the task.
        assert_eq!(d.preamble, "# T\n\nIntro.");
        // Before any heading, a checkbox still belongs to no wave.
        let d = doc("- [ ] stray\n## A\n- [ ] a\n## B\n- [ ] b\n");
        assert_eq!(d.tasks[0].wave, None);
    }

    #[test]
    fn the_wave_level_option_and_hint_override_detection() {
        let text = "# A\n## a1\n- [ ] x\n# B\n## b1\n- [ ] y\n";
        assert_eq!(doc(text).wave_level, 1);
        let mut o = ParseOptions {
            wave_level: Some(2),
            ..ParseOptions::default()
        };
        assert_eq!(parse(text, &o).unwrap().wave_level, 2);
        let hinted = format!("<!-- wave-level: 2 -->\n{text}");
        assert_eq!(doc(&hinted).wave_level, 2);
        o.wave_level = Some(4);
        let e = parse(text, &o).unwrap_err();
        assert!(e.0[0].message.contains("no level-4 headings"), "{e}");
    }

    #[test]
    fn repeated_headings_are_distinct_sections() {
        let d = doc("## Phase 1\n- [ ] a\n## Phase 1\n- [ ] b\n");
        assert_eq!(d.waves.len(), 2);
        assert_ne!(d.tasks[0].wave, d.tasks[1].wave);
        assert_ne!(d.tasks[0].id, d.tasks[1].id);
    }

    #[test]
    fn section_and_document_and_task_hints_land_where_they_stand() {
        let text = "<!-- jobs: 2 -->\n# T\n## A\n<!-- parallel: false; module: api -->\n- [ ] a\n  <!-- id: aa; retries: 3 -->\n- [ ] b <!-- timeout: 5m -->\n## B\n- [ ] c\n";
        let d = doc(text);
        assert_eq!(d.hints.jobs, Some(2));
        let a = d.task_by_id("aa").unwrap();
        assert_eq!(a.hints.retries, Some(3));
        assert_eq!(
            d.tasks[1].hints.timeout,
            Some(std::time::Duration::from_secs(300))
        );
        let g = &d.groups[a.group.unwrap()];
        assert_eq!(g.parallel, Parallelism::Sequential);
        assert!(g.parallel_from_hint);
        assert_eq!(g.module.as_deref(), Some("api"));
        let gc = &d.groups[d.tasks[2].group.unwrap()];
        assert_eq!(gc.parallel, Parallelism::Unbounded);
        assert!(!gc.parallel_from_hint);
    }

    #[test]
    fn a_hint_after_other_content_is_an_error() {
        let e = errors("# A\n\ntext\n\n<!-- parallel: false -->\n- [ ] a\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].message.contains("applies to nothing"), "{}", e[0]);
        assert_eq!((e[0].line, e[0].col), (5, 1));
    }

    #[test]
    fn an_unknown_hint_key_is_reported_at_the_key() {
        let e = errors("# A\n<!-- paralel: false -->\n- [ ] a\n");
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].line, e[0].col), (2, 6));
        assert_eq!(e[0].source_line, "<!-- paralel: false -->");
        assert_eq!(e[0].help.as_deref(), Some("did you mean `parallel`?"));
    }

    #[test]
    fn multi_line_hint_comments_are_read_whole() {
        let d = doc("## A\n<!--\n  parallel: 2\n  after: Setup\n-->\n- [ ] a\n## B\n- [ ] b\n");
        assert_eq!(d.groups[0].parallel, Parallelism::Max(2));
        assert_eq!(d.sections[0].hints.parallel, Some(Parallelism::Max(2)));
        assert_eq!(d.sections[0].hints.after, ["Setup"]);
    }

    #[test]
    fn all_errors_are_collected() {
        let e = errors(
            "<!-- jobs: x -->\n# A\n<!-- paralel: 1 -->\n- [ ] a\n  <!-- retries: many -->\n",
        );
        assert_eq!(e.len(), 3);
    }

    #[test]
    fn duplicate_hint_ids_are_errors_naming_both_lines() {
        let e = errors("- [ ] a <!-- id: x -->\n- [ ] b <!-- id: x -->\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 2);
        assert!(e[0].message.contains("also on line 1"), "{}", e[0]);
    }

    #[test]
    fn an_empty_task_is_a_task_left_to_the_lint() {
        let d = doc("- [ ] \n- [ ] x\n");
        assert_eq!(d.tasks.len(), 2);
        assert_eq!(d.tasks[0].text, "");
        // `plan::check_document` reports it; warning here too doubled it.
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    }

    #[test]
    fn speckit_prefix_fills_id_markers_story_and_dependencies() {
        let d = doc(
            "## Phase 1: Setup\n- [ ] T001 [P] [US1] Create model (depends on T003-T004)\n- [ ] T002 Wire\n## Phase 2: More\n- [ ] T003 x\n- [ ] T004 y\n",
        );
        assert_eq!(d.dialect, Dialect::SpecKit);
        let t = &d.tasks[0];
        assert_eq!(t.id, "T001");
        assert_eq!(t.id_source, IdSource::SpecKit);
        assert!(t.parallel_marker);
        assert_eq!(t.story(), Some("US1"));
        assert_eq!(t.depends_on(), ["T003", "T004"]);
        assert_eq!(t.text, "[P] [US1] Create model (depends on T003-T004)");
        assert_eq!(d.groups[0].parallel, Parallelism::Sequential);
    }

    #[test]
    fn kiro_numbers_make_parents_and_depends_lines_make_edges() {
        let text = "# Plan\n- [ ] 1. Parent\n- [ ] 1.1 Child one\n  - _Requirements: 1.1_\n- [ ] 1.2 (P) Child two\n  - _Depends: 1.1_\n- [ ] 2. Next\n";
        let d = doc(text);
        assert_eq!(d.dialect, Dialect::Kiro);
        assert!(
            d.dialect_reason.contains("numbered"),
            "{}",
            d.dialect_reason
        );
        assert_eq!(d.tasks[0].children(), [1, 2]);
        assert_eq!(d.tasks[2].parent, Some(0));
        assert!(d.tasks[2].parallel_marker);
        assert_eq!(d.tasks[2].depends_on(), ["1.1"]);
        assert_eq!(d.tasks[3].parent, None);
    }

    #[test]
    fn slug_ids_use_the_section_path_from_the_wave_down() {
        let d = doc(
            "# Title\n## Backend\n### API\n- [ ] Add login\n- [ ] Add login\n## Frontend\n- [ ] Page\n",
        );
        assert_eq!(d.tasks[0].id, "backend/api/add-login");
        assert_eq!(d.tasks[1].id, "backend/api/add-login-2");
        assert_eq!(d.tasks[2].id, "frontend/page");
    }

    #[test]
    fn dialect_option_overrides_detection() {
        let o = ParseOptions {
            dialect: Some(Dialect::Waves),
            ..ParseOptions::default()
        };
        let d = parse("- [ ] T001 a\n- [ ] T002 b\n", &o).unwrap();
        assert_eq!(d.dialect, Dialect::Waves);
        assert_eq!(d.dialect_reason, "set by --dialect");
    }

    #[test]
    fn dedent_collapses_blank_runs() {
        assert_eq!(dedent("\n\n    a\n\n\n      b\n  \n"), "a\n\n  b");
    }
}
