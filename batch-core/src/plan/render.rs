//! Text, JSON, dot and mermaid renderings of a plan.
//!
//! # The JSON schema (version 1)
//!
//! `plan --format json` (and the C interface's plan call) print one object:
//! the same envelope as the run events (`v` is the schema version, `type`
//! says what `data` holds). Consumers must ignore fields and types they do not
//! know; the version is bumped when a meaning changes.
//!
//! ```json
//! {
//!   "v": 1,
//!   "type": "plan",
//!   "data": {
//!     "file": "tasks.md",
//!     "dialect": "spec-kit",
//!     "dialect_reason": "detected: 4 tasks with T001-style ids",
//!     "cross_wave": false,
//!     "summary": { "tasks": 3, "waves": 2, "excluded": 1 },
//!     "waves": [
//!       { "index": 0, "title": "Phase 1: Setup", "line": 3,
//!         "groups": [
//!           { "index": 0, "title": "Phase 1: Setup", "module": null,
//!             "parallel": { "mode": "sequential" }, "limit": null,
//!             "tasks": ["T002"] } ] },
//!       { "index": 1, "title": "Phase 2: Core", "line": 8,
//!         "groups": [
//!           { "index": 1, "title": "Phase 2: Core", "module": null,
//!             "parallel": { "mode": "sequential" }, "limit": null,
//!             "tasks": ["T003", "T004"] } ] }
//!     ],
//!     "tasks": [
//!       { "id": "T002", "order": 0, "text": "Configure linting", "wave": 0,
//!         "group": 0, "line": 6, "chain": 3, "deps": [], "barriers": [],
//!         "resources": [] },
//!       { "id": "T003", "order": 1, "text": "Create the model", "wave": 1,
//!         "group": 1, "line": 10, "chain": 2, "deps": [], "barriers": [0],
//!         "resources": ["db"] },
//!       { "id": "T004", "order": 2, "text": "Add the service", "wave": 1,
//!         "group": 1, "line": 11, "chain": 1,
//!         "deps": [ { "on": "T003", "reason": "order" } ], "barriers": [],
//!         "resources": [] }
//!     ],
//!     "barriers": [
//!       { "index": 0, "label": "wave 1", "reason": "wave", "members": ["T002"] }
//!     ],
//!     "excluded": [ { "id": "T001", "reason": "done", "line": 5 } ],
//!     "prose": []
//!   }
//! }
//! ```
//!
//! Fields of `data`:
//! - `file`: the task file as given, or `null`.
//! - `dialect` (`waves`, `spec-kit`, `kiro`) and `dialect_reason`: how the
//!   file is read, and why.
//! - `cross_wave`: whether modules / user stories wait only for their own earlier work.
//! - `summary`: counts of tasks to run, waves that have some, excluded tasks.
//! - `waves[]`: every wave of the document with its `groups[]`; a group lists
//!   the ids of its tasks to run (`tasks`), its `parallel` setting
//!   (`{"mode": "unbounded" | "sequential"}` or `{"mode": "max", "max": N}`)
//!   and the concurrency `limit` the executor applies (`null` = none).
//! - `tasks[]`: the tasks to run in a topological order (`order`), each with
//!   `deps` (ids it waits for and why: `wave`, `module`, `order`, `after`,
//!   `depends_on`), `barriers` (indexes into `barriers[]`), `chain` (length of
//!   the longest chain of work from it, itself included) and `resources`.
//! - `barriers[]`: join points: a task that lists a barrier waits for every
//!   one of its `members`.
//! - `excluded[]`: tasks not run and why (`done`, `parent`, `optional`,
//!   `skip`, `not work`, `outside any wave`, `not selected by --only`).
//! - `prose[]`: dependencies read from prose outside the tasks, each with
//!   the `line` and `source` text it was read from, the `waiter`, what it
//!   waits `on`, whether the plan `followed` it and a `note` when not.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Serialize;

use super::model::{EdgeReason, Plan};
use crate::doc::{Dialect, Document, IdSource, Parallelism};
use crate::events::SCHEMA_VERSION;

/// An output format of `mdbatch plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanFormat {
    /// Waves > groups > tasks, for people.
    Text,
    /// The versioned JSON schema.
    Json,
    /// Graphviz.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// Renders `plan` of `doc` in `format`.
pub fn render(doc: &Document, plan: &Plan, format: PlanFormat) -> String {
    match format {
        PlanFormat::Text => {
            let mut out = String::with_capacity(512 + plan.nodes.len() * 96);
            text(doc, plan, &mut out, &mut |_| {});
            out
        }
        PlanFormat::Json => json(doc, plan),
        PlanFormat::Dot => dot(doc, plan),
        PlanFormat::Mermaid => mermaid(doc, plan),
    }
}

/// Renders like [`render`], handing the text to `write` as it is made, in
/// pieces of whole lines (about 64 KiB each; JSON, dot and mermaid in one
/// piece) instead of building it whole: a 100,000-task plan is 7 MB of
/// text. Stops at the first error `write` returns, and returns it.
pub fn render_to(
    doc: &Document,
    plan: &Plan,
    format: PlanFormat,
    write: &mut dyn FnMut(&str) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if format != PlanFormat::Text {
        return write(&render(doc, plan, format));
    }
    const PIECE: usize = 64 * 1024;
    let mut failed: Option<std::io::Error> = None;
    let mut out = String::with_capacity(PIECE + 4096);
    let mut flush = |out: &mut String| {
        if out.len() >= PIECE {
            if failed.is_none()
                && let Err(e) = write(out)
            {
                failed = Some(e);
            }
            out.clear();
        }
    };
    text(doc, plan, &mut out, &mut flush);
    match failed {
        Some(e) => Err(e),
        None if out.is_empty() => Ok(()),
        None => write(&out),
    }
}

/// Nodes of each group, in plan order.
fn nodes_by_group(doc: &Document, plan: &Plan) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); doc.groups.len()];
    for n in &plan.nodes {
        if let Some(v) = out.get_mut(n.group) {
            v.push(n.index);
        }
    }
    out
}

/// One line of text, at most `max` characters.
fn short(s: &str, max: usize) -> Cow<'_, str> {
    // Most task texts are already one short ASCII line with single spaces.
    if s.len() <= max && is_one_clean_line(s) {
        return Cow::Borrowed(s);
    }
    // The words joined by one space, built only as far as the cut.
    let mut out = String::with_capacity(s.len().min(max.saturating_mul(4)));
    let mut chars = 0;
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
            chars += 1;
        }
        out.push_str(word);
        chars += word.chars().count();
        if chars > max {
            break;
        }
    }
    if chars <= max {
        return Cow::Owned(out);
    }
    let cut = out
        .char_indices()
        .nth(max.saturating_sub(1))
        .map_or(out.len(), |(i, _)| i);
    out.truncate(cut);
    out.truncate(out.trim_end().len());
    out.push('…');
    Cow::Owned(out)
}

/// Whether `s` is ASCII words separated by single spaces, without
/// leading or trailing whitespace: what [`short`] would make of it.
fn is_one_clean_line(s: &str) -> bool {
    let b = s.as_bytes();
    if b.first() == Some(&b' ') || b.last() == Some(&b' ') {
        return false;
    }
    // Other whitespace (tabs, line ends; anything non-ASCII may be Unicode
    // whitespace) and double spaces go the long way. Folded over plain
    // slices without early exits, so the compiler checks many bytes per
    // instruction.
    let odd = b.iter().fold(false, |odd, &c| {
        odd | (c >= 0x80) | (c.wrapping_sub(0x09) <= 4)
    });
    let tail = b.get(1..).unwrap_or_default();
    let double = b
        .iter()
        .zip(tail)
        .fold(false, |d, (&x, &y)| d | ((x == b' ') & (y == b' ')));
    !odd && !double
}

/// Appends `n` right-aligned in `width` columns (`{n:>width$}` without the
/// formatting machinery: once per line of a 100,000-line plan).
fn push_padded(out: &mut String, n: usize, width: usize) {
    const SPACES: &str = "                                ";
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut pad = width.saturating_sub(digits.len() - at);
    while pad > 0 {
        let k = pad.min(SPACES.len());
        out.push_str(&SPACES[..k]);
        pad -= k;
    }
    // Pushed as chars: no UTF-8 check of bytes known to be digits.
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// How a group orders its tasks, in words.
fn group_mode(doc: &Document, plan: &Plan, g: usize) -> String {
    let group = &doc.groups[g];
    let limit = plan.groups.get(g).and_then(|pg| pg.limit);
    if !group.parallel_from_hint && doc.dialect != Dialect::Waves {
        let marker = if doc.dialect == Dialect::SpecKit {
            "[P]"
        } else {
            "(P)"
        };
        return format!("one at a time; {marker} runs side by side");
    }
    let mut mode = match (group.parallel, limit) {
        (Parallelism::Sequential, _) => "one at a time".to_string(),
        (_, Some(n)) => format!("side by side, at most {n} at once"),
        _ => "side by side".to_string(),
    };
    if group.parallel != Parallelism::Sequential && !group.parallel_from_hint {
        let tasks = || group.tasks.iter().filter_map(|&t| doc.tasks.get(t));
        if tasks().any(|t| t.parent.is_some()) {
            mode.push_str("; a task's subtasks in order");
        }
        if tasks().any(|t| t.parent.is_none() && t.list_step().is_some()) {
            mode.push_str("; numbered items in order");
        }
    }
    mode
}

/// How a task is named in text output: its id, or `#N` (its order) when the
/// id is only a slug of its text, which the line already shows.
fn push_short_name(out: &mut String, doc: &Document, plan: &Plan, node: usize) {
    let n = &plan.nodes[node];
    match doc.tasks.get(n.task).map(|t| t.id_source) {
        Some(IdSource::Slug) => {
            out.push('#');
            push_padded(out, n.order + 1, 0);
        }
        _ => out.push_str(n.id(doc)),
    }
}

/// Appends "T003, T004" / "wave 1": what a node waits for, compactly (at
/// most five names; the fifth and later counted).
fn push_waits(out: &mut String, doc: &Document, plan: &Plan, node: usize) {
    let n = &plan.nodes[node];
    let barriers = || n.barriers.iter().filter_map(|&b| plan.barriers.get(b));
    let total = n.deps.len() + barriers().count();
    let shown = if total > 5 { 4 } else { total };
    let names = n
        .deps
        .iter()
        .map(|e| Err(e.on))
        .chain(barriers().map(|b| Ok(b.label.as_str())))
        .take(shown);
    for (i, name) in names.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match name {
            Err(on) => push_short_name(out, doc, plan, on),
            Ok(label) => out.push_str(label),
        }
    }
    if total > 5 {
        let _ = write!(out, ", … (+{})", total - 4);
    }
}

/// The text format, into `out`; `flush` is called after each task's line
/// and may take what `out` holds so far (it always holds whole lines).
fn text(doc: &Document, plan: &Plan, out: &mut String, flush: &mut dyn FnMut(&mut String)) {
    let file = doc
        .path
        .as_ref()
        .map_or_else(|| "<input>".to_string(), |p| p.display().to_string());
    let by_group = nodes_by_group(doc, plan);
    let waves_with_work = doc
        .waves
        .iter()
        .filter(|w| {
            w.groups
                .iter()
                .any(|&g| by_group.get(g).is_some_and(|v| !v.is_empty()))
        })
        .count();
    if doc.tasks.is_empty() {
        let _ = writeln!(
            out,
            "{file}: no checkboxes, so nothing to run (a task is a list item such as `- [ ] write the parser`)"
        );
        return;
    }
    let _ = writeln!(
        out,
        "{file}: {} to run in {}",
        plural(plan.nodes.len(), "task", "tasks"),
        plural(waves_with_work, "wave", "waves")
    );
    let _ = writeln!(
        out,
        "dialect: {} ({})",
        plan.dialect,
        short(&plan.dialect_reason, 100)
    );
    let _ = writeln!(
        out,
        "cross-wave: {}",
        if plan.cross_wave {
            "on (a module or user story waits only for its own earlier work)"
        } else {
            "off (each wave waits for the previous one)"
        }
    );
    let id_width = plan
        .nodes
        .iter()
        .filter(|n| doc.tasks.get(n.task).map(|t| t.id_source) != Some(IdSource::Slug))
        .map(|n| n.id(doc).chars().count())
        .max()
        .unwrap_or(0)
        .min(24);
    let num_width = plan.nodes.len().to_string().len();
    // Waves are numbered by the work they hold, as the summary counts them;
    // a wave with nothing left to run is named once, unnumbered.
    let mut number = 0;
    for wave in &doc.waves {
        let count: usize = wave
            .groups
            .iter()
            .map(|&g| by_group.get(g).map_or(0, Vec::len))
            .sum();
        if count == 0 {
            let _ = writeln!(
                out,
                "\n{}: nothing to run ({})",
                short(&wave.title, 70),
                why_nothing(doc, plan, wave.index)
            );
            continue;
        }
        number += 1;
        let _ = writeln!(out, "\nwave {number}: {}", short(&wave.title, 70));
        for &g in &wave.groups {
            let Some(nodes) = by_group.get(g).filter(|v| !v.is_empty()) else {
                continue;
            };
            let group = &doc.groups[g];
            let name = if group.section.is_none() {
                "lead group".to_string()
            } else {
                format!("group {}", short(&group.title, 60))
            };
            let module = match &group.module {
                Some(m) if plan.cross_wave && plan.dialect != Dialect::SpecKit => {
                    format!(" [module {m}]")
                }
                _ => String::new(),
            };
            let _ = writeln!(out, "  {name}{module}: {}", group_mode(doc, plan, g));
            for &i in nodes {
                let n = &plan.nodes[i];
                let task = &doc.tasks[n.task];
                let id = if task.id_source == IdSource::Slug {
                    ""
                } else {
                    n.id(doc)
                };
                // Written in place: one line per node, trailing blanks cut.
                let line_start = out.len();
                out.push_str("    ");
                push_padded(out, n.order + 1, num_width);
                out.push_str(". ");
                if id_width > 0 {
                    let _ = write!(out, "{id:<id_width$}  ");
                }
                out.push_str(&short(&task.text, 60));
                if !n.deps.is_empty() || !n.barriers.is_empty() {
                    let before = out.len();
                    out.push_str("  (waits for: ");
                    let names = out.len();
                    push_waits(out, doc, plan, i);
                    if out.len() == names {
                        out.truncate(before);
                    } else {
                        out.push(')');
                    }
                }
                let end = line_start + out[line_start..].trim_end().len();
                out.truncate(end);
                out.push('\n');
                flush(out);
            }
        }
    }
    if !plan.excluded.is_empty() {
        out.push_str("\nnot run:\n");
        let reasons = [
            ("done", "done"),
            ("parent", "parents (run as their children)"),
            ("optional", "optional (--include-optional runs them)"),
            ("skip", "skipped by a hint"),
            ("outside any wave", "outside any wave"),
            ("not selected by --only", "not selected by --only"),
        ];
        // Checks, not work: named by their heading, with the way to run them.
        let mut not_work: Vec<(usize, Vec<&str>)> = Vec::new();
        for e in plan.excluded.iter().filter(|e| e.reason == "not work") {
            let s = super::build::not_work_section(doc, e.task).unwrap_or(usize::MAX);
            match not_work.iter_mut().find(|(x, _)| *x == s) {
                Some((_, v)) => v.push(e.id.as_str()),
                None => not_work.push((s, vec![e.id.as_str()])),
            }
        }
        let mut listed = 0;
        for (reason, words) in reasons {
            let ids: Vec<&str> = plan
                .excluded
                .iter()
                .filter(|e| e.reason == reason)
                .map(|e| e.id.as_str())
                .collect();
            listed += ids.len();
            if ids.is_empty() {
                continue;
            }
            let shown: Vec<&str> = ids.iter().take(8).copied().collect();
            let more = if ids.len() > 8 { ", …" } else { "" };
            let _ = writeln!(out, "  {} {words}: {}{more}", ids.len(), shown.join(", "));
        }
        for (s, ids) in &not_work {
            listed += ids.len();
            let title = doc.sections.get(*s).map_or("", |s| s.title.as_str());
            let shown: Vec<&str> = ids.iter().take(8).copied().collect();
            let more = if ids.len() > 8 { ", …" } else { "" };
            let _ = writeln!(
                out,
                "  {} under `{}`: checks, not work (`<!-- skip: false -->` under the heading runs them): {}{more}",
                ids.len(),
                short(title, 50),
                shown.join(", ")
            );
        }
        if listed < plan.excluded.len() {
            let _ = writeln!(out, "  {} other", plan.excluded.len() - listed);
        }
    }
    prose_text(plan, out);
}

/// Why a wave has nothing to run: "3 done", "4 checks, not work".
fn why_nothing(doc: &Document, plan: &Plan, w: usize) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for e in &plan.excluded {
        if doc.tasks.get(e.task).and_then(|t| t.wave) != Some(w) || e.reason == "parent" {
            continue;
        }
        match counts.iter_mut().find(|(r, _)| *r == e.reason) {
            Some((_, n)) => *n += 1,
            None => counts.push((e.reason.as_str(), 1)),
        }
    }
    if counts.is_empty() {
        return "no tasks".to_string();
    }
    counts
        .iter()
        .map(|(r, n)| match *r {
            "not work" => format!("{}, not work", plural(*n, "check", "checks")),
            "done" => format!("{n} done"),
            other => format!("{n} {other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The dependencies read from prose: where, and what became of each.
fn prose_text(plan: &Plan, out: &mut String) {
    if plan.prose.is_empty() {
        return;
    }
    out.push_str("\ndependencies read from the text:\n");
    for p in plan.prose.iter().take(50) {
        let what = format!("{} waits for {}", p.waiter, p.on.join(", "));
        match &p.note {
            Some(note) => {
                let _ = writeln!(out, "  line {}: {what}: {note}", p.line);
            }
            None => {
                let _ = writeln!(out, "  line {}: {what}", p.line);
            }
        }
        let _ = writeln!(out, "    from: {}", short(&p.source, 90));
    }
    if plan.prose.len() > 50 {
        let _ = writeln!(out, "  … and {} more", plan.prose.len() - 50);
    }
}

#[derive(Serialize)]
struct JsonDoc<'a> {
    v: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    data: JsonPlan<'a>,
}

#[derive(Serialize)]
struct JsonPlan<'a> {
    file: Option<String>,
    dialect: Dialect,
    dialect_reason: &'a str,
    cross_wave: bool,
    summary: JsonSummary,
    waves: Vec<JsonWave<'a>>,
    tasks: Vec<JsonTask<'a>>,
    barriers: Vec<JsonBarrier<'a>>,
    excluded: Vec<JsonExcluded<'a>>,
    prose: &'a [super::model::ProseUse],
}

#[derive(Serialize)]
struct JsonSummary {
    tasks: usize,
    waves: usize,
    excluded: usize,
}

#[derive(Serialize)]
struct JsonWave<'a> {
    index: usize,
    title: &'a str,
    line: Option<usize>,
    groups: Vec<JsonGroup<'a>>,
}

#[derive(Serialize)]
struct JsonGroup<'a> {
    index: usize,
    title: &'a str,
    module: Option<&'a str>,
    parallel: Parallelism,
    limit: Option<u32>,
    tasks: Vec<&'a str>,
}

#[derive(Serialize)]
struct JsonTask<'a> {
    id: &'a str,
    order: usize,
    text: &'a str,
    wave: usize,
    group: usize,
    line: usize,
    chain: usize,
    deps: Vec<JsonEdge<'a>>,
    barriers: &'a [usize],
    resources: &'a [String],
}

#[derive(Serialize)]
struct JsonEdge<'a> {
    on: &'a str,
    reason: &'a EdgeReason,
}

#[derive(Serialize)]
struct JsonBarrier<'a> {
    index: usize,
    label: &'a str,
    reason: &'a EdgeReason,
    members: Vec<&'a str>,
}

#[derive(Serialize)]
struct JsonExcluded<'a> {
    id: &'a str,
    reason: &'a str,
    line: usize,
}

fn json(doc: &Document, plan: &Plan) -> String {
    let by_group = nodes_by_group(doc, plan);
    let waves: Vec<JsonWave<'_>> = doc
        .waves
        .iter()
        .map(|w| JsonWave {
            index: w.index,
            title: &w.title,
            line: w
                .section
                .and_then(|s| doc.sections.get(s))
                .map(|s| s.pos.line),
            groups: w
                .groups
                .iter()
                .filter_map(|&g| doc.groups.get(g))
                .map(|g| JsonGroup {
                    index: g.index,
                    title: &g.title,
                    module: g.module.as_deref(),
                    parallel: g.parallel,
                    limit: plan.groups.get(g.index).and_then(|pg| pg.limit),
                    tasks: by_group[g.index]
                        .iter()
                        .map(|&i| plan.nodes[i].id(doc))
                        .collect(),
                })
                .collect(),
        })
        .collect();
    let waves_with_work = waves
        .iter()
        .filter(|w| w.groups.iter().any(|g| !g.tasks.is_empty()))
        .count();
    let data = JsonPlan {
        file: doc.path.as_ref().map(|p| p.display().to_string()),
        dialect: plan.dialect,
        dialect_reason: &plan.dialect_reason,
        cross_wave: plan.cross_wave,
        summary: JsonSummary {
            tasks: plan.nodes.len(),
            waves: waves_with_work,
            excluded: plan.excluded.len(),
        },
        waves,
        tasks: plan
            .nodes
            .iter()
            .map(|n| JsonTask {
                id: n.id(doc),
                order: n.order,
                text: &doc.tasks[n.task].text,
                wave: n.wave,
                group: n.group,
                line: doc.tasks[n.task].pos.line,
                chain: n.chain,
                deps: n
                    .deps
                    .iter()
                    .map(|e| JsonEdge {
                        on: plan.nodes[e.on].id(doc),
                        reason: &e.reason,
                    })
                    .collect(),
                barriers: &n.barriers,
                resources: &n.resources,
            })
            .collect(),
        barriers: plan
            .barriers
            .iter()
            .map(|b| JsonBarrier {
                index: b.index,
                label: &b.label,
                reason: &b.reason,
                members: b.members.iter().map(|&m| plan.nodes[m].id(doc)).collect(),
            })
            .collect(),
        excluded: plan
            .excluded
            .iter()
            .map(|e| JsonExcluded {
                id: &e.id,
                reason: &e.reason,
                line: doc.tasks.get(e.task).map_or(0, |t| t.pos.line),
            })
            .collect(),
        prose: &plan.prose,
    };
    let mut s = serde_json::to_string_pretty(&JsonDoc {
        v: SCHEMA_VERSION,
        kind: "plan",
        data,
    })
    .expect("plan JSON is plain data");
    s.push('\n');
    s
}

/// Escapes a graphviz double-quoted string.
fn dot_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn dot(doc: &Document, plan: &Plan) -> String {
    let by_group = nodes_by_group(doc, plan);
    let mut out = String::from(
        "digraph plan {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n",
    );
    for wave in &doc.waves {
        let groups: Vec<usize> = wave
            .groups
            .iter()
            .copied()
            .filter(|&g| by_group.get(g).is_some_and(|v| !v.is_empty()))
            .collect();
        if groups.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  subgraph cluster_w{} {{", wave.index);
        let _ = writeln!(
            out,
            "    label={};",
            dot_str(&format!(
                "wave {}: {}",
                wave.index + 1,
                short(&wave.title, 60)
            ))
        );
        for g in groups {
            let group = &doc.groups[g];
            let _ = writeln!(out, "    subgraph cluster_g{g} {{");
            let _ = writeln!(out, "      label={};", dot_str(&short(&group.title, 60)));
            for &i in &by_group[g] {
                let n = &plan.nodes[i];
                let label = format!("{}: {}", n.id(doc), short(&doc.tasks[n.task].text, 40));
                let _ = writeln!(out, "      n{i} [label={}];", dot_str(&label));
            }
            out.push_str("    }\n");
        }
        out.push_str("  }\n");
    }
    for b in &plan.barriers {
        let _ = writeln!(
            out,
            "  b{} [shape=diamond, style=dashed, label={}];",
            b.index,
            dot_str(&b.label)
        );
        for &m in &b.members {
            let _ = writeln!(out, "  n{m} -> b{} [style=dashed];", b.index);
        }
    }
    for n in &plan.nodes {
        for e in &n.deps {
            let _ = writeln!(out, "  n{} -> n{};", e.on, n.index);
        }
        for &b in &n.barriers {
            let _ = writeln!(out, "  b{b} -> n{} [style=dashed];", n.index);
        }
    }
    out.push_str("}\n");
    out
}

/// Escapes a mermaid quoted label.
fn mermaid_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn mermaid(doc: &Document, plan: &Plan) -> String {
    let by_group = nodes_by_group(doc, plan);
    let mut out = String::from("flowchart TD\n");
    for wave in &doc.waves {
        let groups: Vec<usize> = wave
            .groups
            .iter()
            .copied()
            .filter(|&g| by_group.get(g).is_some_and(|v| !v.is_empty()))
            .collect();
        if groups.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "  subgraph w{}[{}]",
            wave.index,
            mermaid_str(&format!(
                "wave {}: {}",
                wave.index + 1,
                short(&wave.title, 60)
            ))
        );
        for g in groups {
            let _ = writeln!(
                out,
                "    subgraph g{g}[{}]",
                mermaid_str(&short(&doc.groups[g].title, 60))
            );
            for &i in &by_group[g] {
                let n = &plan.nodes[i];
                let label = format!("{}: {}", n.id(doc), short(&doc.tasks[n.task].text, 40));
                let _ = writeln!(out, "      n{i}[{}]", mermaid_str(&label));
            }
            out.push_str("    end\n");
        }
        out.push_str("  end\n");
    }
    for b in &plan.barriers {
        let _ = writeln!(out, "  b{}{{{{{}}}}}", b.index, mermaid_str(&b.label));
        for &m in &b.members {
            let _ = writeln!(out, "  n{m} -.-> b{}", b.index);
        }
    }
    for n in &plan.nodes {
        for e in &n.deps {
            let _ = writeln!(out, "  n{} --> n{}", e.on, n.index);
        }
        for &b in &n.barriers {
            let _ = writeln!(out, "  b{b} -.-> n{}", n.index);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::plan::PlanOptions;
    use crate::plan::testdoc::DocBuilder;

    fn sample() -> (Document, Plan) {
        let mut b = DocBuilder::new(Dialect::SpecKit);
        b.wave("Phase 1: Setup");
        let done = b.task("T001", "Create project structure");
        b.task("T002", "Configure \"linting\"");
        b.wave("Phase 2: Core");
        let t3 = b.task("T003", "Create the model in `src/model.rs`");
        b.task("T004", "Add the service");
        b.edit(done, |t| t.checked = true);
        b.edit(t3, |t| {
            Arc::make_mut(&mut t.hints).resource = vec!["db".into()]
        });
        let doc = b.build();
        let plan = Plan::build(&doc, &PlanOptions::default()).expect("plans");
        (doc, plan)
    }

    #[test]
    fn rendered_in_pieces_it_is_the_whole_render_and_a_write_error_stops_it() {
        let mut md = String::from("# Big\n\n## Wave 1\n\n");
        for i in 0..3000 {
            md.push_str(&format!(
                "- [ ] Implement item {i} of the module in `src/m/{i}.rs`\n"
            ));
        }
        let doc = Document::parse(&md, &crate::doc::ParseOptions::default()).expect("parses");
        let plan = Plan::build(&doc, &PlanOptions::default()).expect("plans");
        for format in [PlanFormat::Text, PlanFormat::Json, PlanFormat::Dot] {
            let whole = render(&doc, &plan, format);
            let mut pieces = Vec::new();
            render_to(&doc, &plan, format, &mut |p| {
                pieces.push(p.to_string());
                Ok(())
            })
            .expect("no write fails");
            assert_eq!(pieces.concat(), whole);
            if format == PlanFormat::Text {
                assert!(pieces.len() > 1, "{} bytes in one piece", whole.len());
                assert!(pieces.iter().all(|p| p.ends_with('\n')), "whole lines");
            }
        }
        let mut calls = 0;
        let e = render_to(&doc, &plan, PlanFormat::Text, &mut |_| {
            calls += 1;
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        })
        .expect_err("the write error comes back");
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
        assert_eq!(calls, 1, "nothing written after the first error");
    }

    #[test]
    fn padded_numbers_match_the_formatter() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, usize::MAX] {
            for width in [0, 1, 2, 5, 19, 20, 21, 24, 31, 32, 33, 70] {
                let mut out = String::new();
                push_padded(&mut out, n, width);
                assert_eq!(out, format!("{n:>width$}"));
            }
        }
    }

    #[test]
    fn a_clean_line_is_what_short_keeps_as_it_is() {
        for s in [
            "a b",
            "a  b",
            " a",
            "a ",
            "a\tb",
            "a\nb",
            "caf\u{e9}",
            "",
            "x",
            "a b c d",
            "a\u{b}b",
            "a\rb",
            "a\u{c}b",
        ] {
            let words = s.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(is_one_clean_line(s), s.is_ascii() && words == s, "{s:?}");
        }
    }

    #[test]
    fn text_shows_dialect_waves_groups_order_and_what_each_task_waits_for() {
        let (doc, plan) = sample();
        let t = render(&doc, &plan, PlanFormat::Text);
        assert!(
            t.starts_with(
                "tasks.md: 3 tasks to run in 2 waves\ndialect: spec-kit (test)\ncross-wave: off"
            ),
            "{t}"
        );
        assert!(t.contains("wave 1: Phase 1: Setup\n  lead group: one at a time; [P] runs side by side\n    1. T002  Configure \"linting\"\n"), "{t}");
        assert!(
            t.contains("    2. T003  Create the model in `src/model.rs`  (waits for: wave 1)\n"),
            "{t}"
        );
        assert!(
            t.contains("    3. T004  Add the service  (waits for: T003)\n"),
            "{t}"
        );
        assert!(t.contains("not run:\n  1 done: T001\n"), "{t}");
    }

    #[test]
    fn json_is_versioned_and_names_tasks_by_id() {
        let (doc, plan) = sample();
        let v: serde_json::Value =
            serde_json::from_str(&render(&doc, &plan, PlanFormat::Json)).expect("valid JSON");
        assert_eq!(v["v"], 1);
        assert_eq!(v["type"], "plan");
        let d = &v["data"];
        assert_eq!(d["dialect"], "spec-kit");
        assert_eq!(d["summary"]["tasks"], 3);
        assert_eq!(d["tasks"][2]["id"], "T004");
        assert_eq!(d["tasks"][2]["deps"][0]["on"], "T003");
        assert_eq!(d["tasks"][2]["deps"][0]["reason"], "order");
        assert_eq!(d["tasks"][1]["resources"][0], "db");
        assert_eq!(d["barriers"][0]["members"][0], "T002");
        assert_eq!(d["barriers"][0]["label"], "wave 1");
        assert_eq!(d["waves"][1]["groups"][0]["tasks"][1], "T004");
        assert_eq!(d["waves"][0]["groups"][0]["parallel"]["mode"], "sequential");
        assert_eq!(d["excluded"][0]["reason"], "done");
    }

    #[test]
    fn dot_and_mermaid_draw_every_node_and_edge_with_escaped_labels() {
        let (doc, plan) = sample();
        let d = render(&doc, &plan, PlanFormat::Dot);
        assert!(d.starts_with("digraph plan {"));
        assert!(
            d.contains(r#"n0 [label="T002: Configure \"linting\""];"#),
            "{d}"
        );
        assert!(d.contains("n1 -> n2;"));
        assert!(d.contains("n0 -> b0 [style=dashed];"));
        assert!(d.contains("b0 -> n1 [style=dashed];"));
        let m = render(&doc, &plan, PlanFormat::Mermaid);
        assert!(m.starts_with("flowchart TD\n"));
        assert!(
            m.contains("n0[\"T002: Configure #quot;linting#quot;\"]"),
            "{m}"
        );
        assert!(m.contains("  n1 --> n2\n"));
        assert!(m.contains("  b0{{\"wave 1\"}}\n"), "{m}");
    }

    #[test]
    fn long_task_text_is_cut_to_one_short_line() {
        assert_eq!(short("a\n  b", 10), "a b");
        let long = "word ".repeat(40);
        let s = short(&long, 20);
        assert_eq!(s.chars().count(), 20);
        assert!(s.ends_with('…'));
    }
}
