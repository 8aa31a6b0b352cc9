//! The lints of `mdbatch check`: what LLM-written task files get wrong.
//!
//! Every lint is a warning (the plan is still made) with a `help` line that
//! says what to write instead. Each runs in time linear in the file: paths are
//! bucketed by name, and only tasks that name the same path are compared.

use std::collections::HashMap;

use super::model::{EdgeReason, NodeIdx, Plan};
use crate::doc::{Document, Parallelism, SectionIdx, TaskIdx};
use crate::error::Diagnostic;

/// Every warning `mdbatch check` reports beyond parse and plan errors:
/// [`check_document`]'s, plus tasks that may run side by side but both edit
/// the same file (a file a task only reads — `see data-model.md`, a
/// `Details:` line, a `(Lines 10-25)` range — is no conflict), and groups
/// marked parallel whose tasks wait for each other.
pub fn check(doc: &Document, plan: &Plan) -> Vec<Diagnostic> {
    let mut out = check_document(doc);
    out.extend(same_file_side_by_side(doc, plan));
    out.extend(parallel_group_with_deps(doc, plan));
    out.sort_by_key(|d| (d.line, d.col));
    out
}

/// The lints that need no plan (so `check` can still report them when the
/// plan has errors): empty tasks, checkboxes outside any wave (not run),
/// and a file without a single checkbox.
pub fn check_document(doc: &Document) -> Vec<Diagnostic> {
    let mut out = empty_tasks(doc);
    out.extend(not_work_items(doc));
    out.sort_by_key(|d| (d.line, d.col));
    out
}

/// Fills in the source line of each diagnostic that has none, from the text
/// of the file it was found in (BOM and line ends dropped).
pub fn attach_source_lines(diags: &mut [Diagnostic], text: &str) {
    if diags.iter().all(|d| !d.source_line.is_empty()) {
        return;
    }
    let lines: Vec<&str> = text.split('\n').collect();
    for d in diags.iter_mut().filter(|d| d.source_line.is_empty()) {
        if let Some(line) = d.line.checked_sub(1).and_then(|i| lines.get(i)) {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let line = if d.line == 1 {
                line.strip_prefix('\u{feff}').unwrap_or(line)
            } else {
                line
            };
            d.source_line = line.to_string();
        }
    }
}

fn warn(doc: &Document, line: usize, col: usize, message: String, help: &str) -> Diagnostic {
    Diagnostic::warning(line, col, message)
        .with_help(help)
        .with_path(doc.path.clone())
}

/// Whether a task is still to be worked on (unchecked, not skipped).
fn open(doc: &Document, t: TaskIdx) -> bool {
    let task = &doc.tasks[t];
    !task.checked
        && !task.skip
        && task.hints.skip != Some(true)
        && !section_skipped(doc, task.section)
}

fn section_skipped(doc: &Document, mut s: Option<SectionIdx>) -> bool {
    let mut guard = 0;
    while let Some(i) = s {
        let Some(sec) = doc.sections.get(i) else {
            return false;
        };
        if sec.hints.skip == Some(true) {
            return true;
        }
        s = sec.parent;
        guard += 1;
        if guard > 64 {
            return false;
        }
    }
    false
}

/// The text left once spec-kit / kiro markers are taken away.
fn bare_text(text: &str) -> String {
    let mut s = text.to_string();
    for m in ["[P]", "(P)", "[p]", "(p)"] {
        s = s.replace(m, "");
    }
    s.split_whitespace()
        .filter(|w| {
            let w = w.trim_matches(|c| c == '[' || c == ']');
            !(w.len() >= 3 && w.starts_with("US") && w[2..].bytes().all(|b| b.is_ascii_digit()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn empty_tasks(doc: &Document) -> Vec<Diagnostic> {
    doc.tasks
        .iter()
        .filter(|t| {
            open(doc, t.index)
                && bare_text(&t.text)
                    .trim_matches(['*', '_', '`', '~', ' '])
                    .is_empty()
        })
        .map(|t| {
            warn(
                doc,
                t.pos.line,
                t.pos.col,
                format!("task `{}` is empty", t.id),
                "write what the subagent should do after the box, or delete the line",
            )
        })
        .collect()
}

/// Checkboxes that are not run although they may look like work: outside
/// any wave. (Checks under "Success criteria" and the like are not run
/// either, but `plan` lists them with the reason; nothing to warn about.)
fn not_work_items(doc: &Document) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if doc.tasks.is_empty() {
        out.push(warn(
            doc,
            1,
            1,
            "the file has no checkboxes, so there is nothing to run".to_string(),
            "write each task as a list item with a box: `- [ ] Add the login page`",
        ));
        return out;
    }
    // Outside any wave: grouped by section (None: the preamble).
    let mut outside: Vec<(Option<SectionIdx>, Vec<TaskIdx>)> = Vec::new();
    for t in doc
        .tasks
        .iter()
        .filter(|t| !t.is_parent() && open(doc, t.index))
    {
        if t.wave.is_none() {
            match outside.iter_mut().find(|(s, _)| *s == t.section) {
                Some((_, v)) => v.push(t.index),
                None => outside.push((t.section, vec![t.index])),
            }
        }
    }
    for (section, tasks) in outside {
        let first = &doc.tasks[tasks[0]];
        let what = if tasks.len() == 1 {
            "a checkbox outside any wave is not run".to_string()
        } else {
            format!("{} checkboxes outside any wave are not run", tasks.len())
        };
        let (them, they, are) = if tasks.len() == 1 {
            ("it", "it", "is")
        } else {
            ("them", "they", "are")
        };
        let (message, help) = match section.and_then(|s| doc.sections.get(s)) {
            Some(sec) => (
                format!("{what} (under `{}`)", sec.title),
                format!(
                    "move {them} under a wave heading to run {them}; if {they} {are} not work, put `<!-- skip: true -->` under the heading and this warning goes away"
                ),
            ),
            None => (
                format!("{what} (before the first wave heading)"),
                format!(
                    "move {them} under a wave heading to run {them}; if {they} {are} not work, put an indented `<!-- skip: true -->` inside each item and this warning goes away"
                ),
            ),
        };
        out.push(warn(doc, first.pos.line, first.pos.col, message, &help));
    }
    out
}

/// File paths a task would edit: the paths [`paths_in`] finds, less those
/// it only reads (`see data-model.md`, `details.md (Lines 10-25)`, a
/// `Details:` / `Research:` line).
pub(crate) fn edited_paths_in(text: &str, out: &mut Vec<String>) {
    let mut found = Vec::new();
    for line in text.lines() {
        found.clear();
        paths_in(line, &mut found);
        let label = strip_bullet(line)
            .trim_start_matches(['*', '_'])
            .to_lowercase();
        let reference_line = [
            "details:",
            "detail:",
            "research:",
            "reference:",
            "references:",
            "context:",
            "see:",
            "see ",
            "spec:",
            "specs:",
            "docs:",
            "documentation:",
            "read:",
            "source:",
            "sources:",
            "requirements:",
            "design:",
            "plan:",
        ]
        .iter()
        .any(|l| label.starts_with(l));
        for p in found.drain(..) {
            if reference_line || only_read(line, &p) {
                continue;
            }
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
}

/// A list item's text without its bullet.
fn strip_bullet(line: &str) -> &str {
    let t = line.trim();
    for b in ["- ", "* ", "+ "] {
        if let Some(r) = t.strip_prefix(b) {
            return r.trim_start();
        }
    }
    t
}

/// Whether `line` names `path` only to read it.
fn only_read(line: &str, path: &str) -> bool {
    let Some(at) = line.find(path) else {
        return false;
    };
    let start = line[..at]
        .char_indices()
        .rev()
        .nth(31)
        .map_or(0, |(i, _)| i);
    let before = line[start..at].to_lowercase();
    let after = line[at + path.len()..]
        .trim_start_matches(['`', ')', '*', '_', '"'])
        .trim_start()
        .to_lowercase();
    let line_range = after.starts_with("(lines")
        || after.starts_with("(line")
        || after.starts_with("lines ")
        || after.starts_with("line ")
        || after.starts_with("#l")
        || (after.starts_with(':') && after[1..].starts_with(|c: char| c.is_ascii_digit()));
    let b = before.trim_end_matches(['`', '(', '[', '"', ' ', '*', '_']);
    let reading_word = READING_WORDS.iter().any(|w| ends_with_reading_word(b, w));
    line_range || reading_word
}

/// Whether `b` ends with `w`, `w the` or `w:`, as all of `b` or after a
/// space or `(`: written without building the three phrases (this runs for
/// every path of every task).
fn ends_with_reading_word(b: &str, w: &str) -> bool {
    ["", " the", ":"].iter().any(|tail| {
        b.strip_suffix(tail)
            .and_then(|rest| rest.strip_suffix(w))
            .is_some_and(|pre| pre.is_empty() || pre.ends_with([' ', '(']))
    })
}

/// Words that say a path that follows is only read.
const READING_WORDS: &[&str] = &[
    "see",
    "read",
    "reading",
    "refer to",
    "referring to",
    "reference",
    "references",
    "per",
    "according to",
    "based on",
    "described in",
    "defined in",
    "specified in",
    "documented in",
    "outlined in",
    "listed in",
    "following",
    "follow",
    "consult",
    "review",
    "as in",
    "in line with",
    "cf.",
];

/// File paths a piece of task text names: backticked spans and path-like
/// words (`src/lib.rs`, `package.json`), placeholders and URLs left out.
pub(crate) fn paths_in(text: &str, out: &mut Vec<String>) {
    for (i, segment) in text.split('`').enumerate() {
        let code = i % 2 == 1;
        for tok in segment.split(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    ',' | ';' | '(' | ')' | '"' | '\'' | '|' | '*' | '«' | '»'
                )
        }) {
            let tok = tok
                .trim_start_matches([':', '!', '?', '[', ']', '{', '}'])
                .trim_end_matches(['.', ':', '!', '?', '[', ']', '{', '}']);
            let tok = tok.strip_prefix("./").unwrap_or(tok);
            if looks_like_path(tok, code) && !out.iter().any(|p| p == tok) {
                out.push(tok.to_string());
            }
        }
    }
}

fn looks_like_path(tok: &str, code: bool) -> bool {
    if tok.len() < 3
        || tok.contains("://")
        || tok.starts_with("www.")
        || tok.contains([
            '@', '[', ']', '{', '}', '<', '>', '$', '=', '#', '\\', '%', '+',
        ])
    {
        return false;
    }
    let name = tok.rsplit('/').next().unwrap_or(tok);
    let has_slash = tok.contains('/');
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    let ext_ok = !ext.is_empty()
        && ext.len() <= 10
        && ext.starts_with(|c: char| c.is_ascii_alphabetic())
        && ext.chars().all(|c| c.is_ascii_alphanumeric());
    if !ext_ok {
        return false;
    }
    if stem.is_empty() {
        // A dotfile such as `.env` or `.gitignore`.
        return code || has_slash;
    }
    if has_slash || code {
        return true;
    }
    let tld = [
        "com", "org", "net", "io", "ai", "dev", "gov", "edu", "co", "us", "uk",
    ];
    !(stem.chars().count() < 2
        || tld.contains(&ext)
        || ext.chars().all(|c| c.is_ascii_uppercase())
        || (ext == "js" && stem.starts_with(|c: char| c.is_ascii_uppercase()))
        || stem.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// Whether `later` waits for `earlier` (plan order), searching at most
/// `budget` nodes; `None` when the budget ran out.
fn waits_for_bounded(plan: &Plan, later: NodeIdx, earlier: NodeIdx, budget: usize) -> Option<bool> {
    if later <= earlier {
        return Some(false);
    }
    let mut seen: HashMap<NodeIdx, ()> = HashMap::new();
    let mut seen_barrier = vec![false; plan.barriers.len()];
    let mut stack = vec![later];
    let mut steps = 0usize;
    while let Some(v) = stack.pop() {
        steps += 1;
        if steps > budget {
            return None;
        }
        let n = &plan.nodes[v];
        let mut next: Vec<NodeIdx> = n.deps.iter().map(|e| e.on).collect();
        for &b in &n.barriers {
            if let Some(seen) = seen_barrier.get_mut(b).filter(|s| !**s) {
                *seen = true;
                next.extend_from_slice(&plan.barriers[b].members);
            }
        }
        for w in next {
            if w == earlier {
                return Some(true);
            }
            if w > earlier && seen.insert(w, ()).is_none() {
                stack.push(w);
            }
        }
    }
    Some(false)
}

fn same_file_side_by_side(doc: &Document, plan: &Plan) -> Vec<Diagnostic> {
    // (scope, path) -> nodes in plan order. Strict waves order every pair of
    // waves, so only a wave's own tasks can meet; cross-wave, any can.
    let mut buckets: HashMap<(usize, String), Vec<NodeIdx>> = HashMap::new();
    let mut paths = Vec::new();
    for n in &plan.nodes {
        let task = &doc.tasks[n.task];
        paths.clear();
        edited_paths_in(&task.text, &mut paths);
        edited_paths_in(&task.details, &mut paths);
        let scope = if plan.cross_wave { 0 } else { n.wave };
        for p in paths.drain(..) {
            buckets.entry((scope, p)).or_default().push(n.index);
        }
    }
    // (earlier, later) -> the paths both name.
    let mut pairs: HashMap<(NodeIdx, NodeIdx), Vec<String>> = HashMap::new();
    for ((_, path), nodes) in buckets {
        for w in nodes.windows(2) {
            let (a, b) = (w[0], w[1]);
            if waits_for_bounded(plan, b, a, 20_000) == Some(false) {
                pairs.entry((a, b)).or_default().push(path.clone());
            }
        }
    }
    let mut pairs: Vec<_> = pairs.into_iter().collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|((a, b), mut paths)| {
            paths.sort();
            let (ta, tb) = (&doc.tasks[plan.nodes[a].task], &doc.tasks[plan.nodes[b].task]);
            let named: Vec<String> = paths.iter().map(|p| format!("`{p}`")).collect();
            warn(
                doc,
                tb.pos.line,
                tb.pos.col,
                format!(
                    "`{}` and `{}` (line {}) may run side by side and both edit {}",
                    tb.id,
                    ta.id,
                    ta.pos.line,
                    named.join(", ")
                ),
                &format!(
                    "two agents editing one file at once overwrite each other's work; make one wait for the other (`<!-- after: {} -->` inside `{}`), or put them in a `parallel: false` group",
                    ta.id, tb.id
                ),
            )
        })
        .collect()
}

fn parallel_group_with_deps(doc: &Document, plan: &Plan) -> Vec<Diagnostic> {
    let mut found: HashMap<usize, Vec<(NodeIdx, NodeIdx)>> = HashMap::new();
    for n in &plan.nodes {
        let Some(group) = doc.groups.get(n.group) else {
            continue;
        };
        if !group.parallel_from_hint || group.parallel == Parallelism::Sequential {
            continue;
        }
        let explicit = |r: &EdgeReason| matches!(r, EdgeReason::After | EdgeReason::DependsOn);
        let mut on: Vec<NodeIdx> = n
            .deps
            .iter()
            .filter(|e| explicit(&e.reason))
            .map(|e| e.on)
            .collect();
        for &b in &n.barriers {
            if let Some(b) = plan.barriers.get(b).filter(|b| explicit(&b.reason)) {
                on.extend_from_slice(&b.members);
            }
        }
        for o in on {
            if plan.nodes[o].group == n.group {
                found.entry(n.group).or_default().push((n.index, o));
            }
        }
    }
    let mut groups: Vec<_> = found.into_iter().collect();
    groups.sort();
    groups
        .into_iter()
        .map(|(g, pairs)| {
            let group = &doc.groups[g];
            let (line, col) = match group.section.and_then(|s| doc.sections.get(s)) {
                Some(s) => (s.pos.line, s.pos.col),
                None => {
                    let t = &doc.tasks[plan.nodes[pairs[0].0].task];
                    (t.pos.line, t.pos.col)
                }
            };
            let shown: Vec<String> = pairs
                .iter()
                .take(3)
                .map(|&(x, y)| format!("`{}` waits for `{}`", plan.nodes[x].id(doc), plan.nodes[y].id(doc)))
                .collect();
            let more = if pairs.len() > 3 {
                format!(" (and {} more)", pairs.len() - 3)
            } else {
                String::new()
            };
            let hint = match group.parallel {
                Parallelism::Max(n) => format!("parallel: {n}"),
                _ => "parallel: true".to_string(),
            };
            warn(
                doc,
                line,
                col,
                format!(
                    "group `{}` is marked `{hint}` but {}{more}",
                    group.title,
                    shown.join(", ")
                ),
                "the dependencies win, so these tasks run one after another; drop the dependency if they are independent, or the `parallel` hint if they are not",
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn reading_words_are_found_as_the_phrases_were() {
        // The check before it stopped building `w the`, `w:`, ` w`, `(w`.
        let phrases = |b: &str, w: &str| {
            [w.to_string(), format!("{w} the"), format!("{w}:")]
                .iter()
                .any(|x| b == x || b.ends_with(&format!(" {x}")) || b.ends_with(&format!("({x}")))
        };
        let befores = [
            "", "x", " ", "(", "please ", "a(", "notsee", "xsee the", "the",
        ];
        let afters = ["", " the", ":", " the:", "s", " them", "the"];
        for w in READING_WORDS {
            for before in befores {
                for after in afters {
                    let b = format!("{before}{w}{after}");
                    assert_eq!(ends_with_reading_word(&b, w), phrases(&b, w), "{b:?}");
                }
            }
            assert_eq!(ends_with_reading_word("other", w), phrases("other", w));
        }
    }
    use crate::doc::Dialect;
    use crate::plan::PlanOptions;
    use crate::plan::testdoc::DocBuilder;

    fn lints(b: &DocBuilder) -> Vec<Diagnostic> {
        let doc = b.build();
        let plan = Plan::build(&doc, &PlanOptions::default()).expect("plans");
        check(&doc, &plan)
    }

    fn messages(d: &[Diagnostic]) -> Vec<&str> {
        d.iter().map(|d| d.message.as_str()).collect()
    }

    #[test]
    fn paths_are_found_in_backticks_and_as_path_like_words() {
        let mut p = Vec::new();
        paths_in(
            "Create `src/models/user.py` and ./docs/api.md, update package.json; \
             see https://example.com/a.html, Node.js, e.g. v1.2, Python 3.11+, \
             `tests/test_[name].py`, README.md and `.env`.",
            &mut p,
        );
        assert_eq!(
            p,
            [
                "src/models/user.py",
                "docs/api.md",
                "package.json",
                "README.md",
                ".env"
            ]
        );
    }

    #[test]
    fn tasks_side_by_side_naming_the_same_file_are_warned_about() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("One");
        b.task("a", "Add login to `src/auth.rs`");
        b.task("b", "Add logout to src/auth.rs");
        b.task("c", "Touch src/other.rs");
        let d = lints(&b);
        assert_eq!(
            messages(&d),
            ["`b` and `a` (line 3) may run side by side and both edit `src/auth.rs`"]
        );
        assert_eq!(d[0].line, 4);
        assert!(
            d[0].help
                .as_deref()
                .unwrap_or("")
                .contains("<!-- after: a -->")
        );
    }

    #[test]
    fn ordered_tasks_naming_the_same_file_are_fine() {
        let mut b = DocBuilder::new(Dialect::SpecKit);
        b.wave("Phase 1");
        b.task("T001", "Create src/auth.rs");
        b.task("T002", "Extend src/auth.rs");
        b.wave("Phase 2");
        b.task("T003", "Finish src/auth.rs");
        assert!(lints(&b).is_empty());
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("One");
        b.task("a", "Create src/auth.rs");
        let t = b.task("b", "Extend src/auth.rs");
        b.edit(t, |t| Arc::make_mut(&mut t.hints).after = vec!["a".into()]);
        assert!(lints(&b).is_empty());
    }

    #[test]
    fn a_parallel_group_whose_tasks_depend_on_each_other_is_warned_about() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("One");
        let g = b.group("Models");
        b.task("m1", "one");
        let t = b.task("m2", "two");
        b.edit(t, |t| t.set_depends_on(vec!["m1".into()]));
        b.edit_group(g, |g| {
            g.parallel = Parallelism::Unbounded;
            g.parallel_from_hint = true;
        });
        let d = lints(&b);
        assert_eq!(
            messages(&d),
            ["group `Models` is marked `parallel: true` but `m2` waits for `m1`"]
        );
        assert_eq!(d[0].line, 3, "at the group heading");
    }

    #[test]
    fn empty_tasks_are_warned_about() {
        let mut b = DocBuilder::new(Dialect::SpecKit);
        b.wave("Phase 1");
        b.task("T001", "[P] [US1]");
        b.task("T002", "real work");
        let d = lints(&b);
        assert_eq!(messages(&d), ["task `T001` is empty"]);
    }

    #[test]
    fn stray_checkboxes_are_reported_once_per_section_in_a_sentence() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.heading(1, "Notes");
        b.task("n1", "remember this");
        b.task("n2", "and this");
        b.wave("Build");
        b.task("w", "work");
        let d = lints(&b);
        assert_eq!(
            messages(&d),
            ["2 checkboxes outside any wave are not run (under `Notes`)"]
        );
        assert_eq!(
            d[0].help.as_deref(),
            Some(
                "move them under a wave heading to run them; if they are not work, put `<!-- skip: true -->` under the heading and this warning goes away"
            )
        );
    }

    #[test]
    fn a_file_without_checkboxes_says_there_is_nothing_to_run() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.heading(1, "Notes");
        let d = lints(&b);
        assert_eq!(
            messages(&d),
            ["the file has no checkboxes, so there is nothing to run"]
        );
    }

    #[test]
    fn a_file_only_read_is_no_conflict() {
        let mut b = DocBuilder::new(Dialect::Waves);
        b.wave("One");
        let t = b.task("a", "Add login");
        b.edit(t, |t| {
            t.details = "- Details: .copilot-tracking/details/plan-details.md (Lines 10-25)".into()
        });
        b.task("b", "Add logout, see plan-details.md");
        b.task("c", "Write `src/x.rs` per data-model.md");
        b.task("d", "Extend `src/x.rs` as described in data-model.md");
        let d = lints(&b);
        assert_eq!(
            messages(&d),
            ["`d` and `c` (line 5) may run side by side and both edit `src/x.rs`"]
        );
    }

    #[test]
    fn source_lines_are_attached_from_the_text() {
        let mut d = vec![
            Diagnostic::warning(2, 3, "x"),
            Diagnostic::warning(1, 1, "y"),
        ];
        attach_source_lines(&mut d, "\u{feff}# Title\r\n- [ ] task\r\n");
        assert_eq!(d[0].source_line, "- [ ] task");
        assert_eq!(d[1].source_line, "# Title");
    }
}
