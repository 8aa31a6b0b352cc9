//! Task ids and group module names.
//!
//! A task's id is, in order of preference: its `id:` hint; its spec-kit id
//! (`T001`); its kiro number (`1.2`); else a slug of its section path and
//! its text, such as `wave-1/backend/add-login-endpoint`. The path leaves out
//! the document title (the one top-level heading over every task) and does not
//! depend on the wave level, so adding a wave or a title renames nothing.
//! Derived ids that collide get `-2`, `-3`, … in document order, so an id
//! only changes when a task with the same text is inserted before it under
//! the same headings. Two `id:` hints naming the same id are an error.

use std::borrow::Cow;

use std::collections::hash_map::Entry;

use super::fxhash::{FxHashMap, map_with_capacity};

use super::model::IdSource;

/// What each task offers as an id.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) hint: Option<String>,
    pub(crate) speckit: Option<String>,
    pub(crate) number: Option<String>,
    pub(crate) slug: String,
}

/// The outcome of id assignment.
#[derive(Debug, Default)]
pub(crate) struct Assigned {
    pub(crate) ids: Vec<(String, IdSource)>,
    /// `(first, again)`: two `id:` hints with the same id (an error).
    pub(crate) duplicate_hints: Vec<(usize, usize)>,
    /// `(first, again)`: a spec-kit id or number used twice (a warning; the
    /// second was renamed).
    pub(crate) duplicate_derived: Vec<(usize, usize)>,
}

/// Assigns every task an id, unique in the document.
///
/// Takes the candidates by value: the chosen string of each (its hint, its
/// spec-kit id, its number or its slug) becomes its id without a copy. A
/// candidate with a hint, a spec-kit id or a number may leave `slug` empty.
pub(crate) fn assign(candidates: Vec<Candidate>) -> Assigned {
    let n = candidates.len();
    let mut ids: Vec<(String, IdSource)> = Vec::with_capacity(n);
    for c in candidates {
        ids.push(if let Some(id) = c.hint {
            (id, IdSource::Hint)
        } else if let Some(id) = c.speckit {
            (id, IdSource::SpecKit)
        } else if let Some(id) = c.number {
            (id, IdSource::Number)
        } else {
            (c.slug, IdSource::Slug)
        });
    }
    let mut duplicate_hints = Vec::new();
    let mut duplicate_derived = Vec::new();
    // Ids that had to take a suffix: (task, id).
    let mut renamed: Vec<(usize, String)> = Vec::new();
    {
        // Every id given out, each with the first task whose own (hint or
        // derived) id it is, if any: a renamed id is given out but is no
        // task's own. One lookup per task. The map borrows the strings in
        // `ids`; suffixed ids are owned.
        let mut given: FxHashMap<Cow<'_, str>, Option<usize>> = map_with_capacity(n);
        // Hint ids first: they are what the user wrote and must not be renamed.
        for (i, (id, source)) in ids.iter().enumerate() {
            if *source == IdSource::Hint {
                match given.entry(Cow::Borrowed(id.as_str())) {
                    Entry::Occupied(e) => duplicate_hints.push((e.get().unwrap_or(i), i)),
                    Entry::Vacant(e) => {
                        e.insert(Some(i));
                    }
                }
            }
        }
        // The next suffix to try per base: 10,000 tasks with the same text stay linear.
        let mut next_suffix: FxHashMap<&str, usize> = FxHashMap::default();
        for (i, (base, source)) in ids.iter().enumerate() {
            if *source == IdSource::Hint {
                continue;
            }
            match given.entry(Cow::Borrowed(base.as_str())) {
                Entry::Vacant(e) => {
                    e.insert(Some(i));
                }
                Entry::Occupied(mut e) => {
                    match *e.get() {
                        Some(first) if *source != IdSource::Slug => {
                            duplicate_derived.push((first, i));
                        }
                        Some(_) => {}
                        None => *e.get_mut() = Some(i),
                    }
                    let n = next_suffix.entry(base.as_str()).or_insert(2);
                    let id = loop {
                        let id = format!("{base}-{n}");
                        *n += 1;
                        if !given.contains_key(id.as_str()) {
                            break id;
                        }
                    };
                    given.insert(Cow::Owned(id.clone()), None);
                    renamed.push((i, id));
                }
            }
        }
    }
    for (i, id) in renamed {
        ids[i].0 = id;
    }
    Assigned {
        ids,
        duplicate_hints,
        duplicate_derived,
    }
}

/// A lowercase ASCII slug of the first line of `text`: words joined by
/// `-`, at most `max` bytes (at most [`MAX_SLUG`]), cut at a word boundary.
/// Markdown punctuation disappears.
pub(crate) fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    push_slug(&mut out, text, max);
    out
}

/// The longest slug [`slug`] makes.
pub(crate) const MAX_SLUG: usize = 64;

/// Each byte as it stands in a slug: ASCII letters lowercased, digits kept,
/// 1 for a line end (the slug ends), 0 for anything else (a word boundary). Every byte of a non-ASCII
/// character is >= 0x80, so accents and CJK end a word like any other symbol
/// (they would make ids hard to type).
static SLUG_BYTE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b.is_ascii_alphanumeric() {
            t[i] = b.to_ascii_lowercase();
        } else if b == b'\n' {
            t[i] = 1;
        }
        i += 1;
    }
    t
};

/// Appends [`slug`]`(text, max)` to `out` (the `max` counts only what is
/// appended). Only the first line of `text` counts.
pub(crate) fn push_slug(out: &mut String, text: &str, max: usize) {
    let max = max.min(MAX_SLUG);
    let mut buf = [0u8; MAX_SLUG];
    let mut len = 0;
    let mut pending_dash = false;
    for &b in text.as_bytes() {
        let c = SLUG_BYTE[usize::from(b)];
        if c <= 1 {
            if c == 1 {
                break;
            }
            pending_dash = true;
            continue;
        }
        if pending_dash && len > 0 {
            if len + 1 >= max {
                break;
            }
            buf[len] = b'-';
            len += 1;
        }
        pending_dash = false;
        if len >= max {
            // Cut at the last word boundary.
            if let Some(dash) = buf[..len].iter().rposition(|&c| c == b'-') {
                len = dash;
            }
            break;
        }
        buf[len] = c;
        len += 1;
    }
    out.push_str(std::str::from_utf8(&buf[..len]).expect("a slug is ASCII"));
}

/// The module name of a group heading: trimmed, case-folded, with status
/// decorations (`✅ COMPLETE`, `(DONE)`, emoji, `[x]`) and leading numbering
/// (`Phase 2:`, `1.`, `3)`) removed. Falls back to the case-folded title when
/// nothing would be left.
pub(crate) fn module_name(title: &str) -> String {
    let lower = title.trim().to_lowercase();
    // Symbols and emoji become spaces; letters, digits and a little
    // punctuation stay.
    let mut s: String = lower
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || " -_/.:()&+#'".contains(c) {
                c
            } else {
                ' '
            }
        })
        .collect();
    // Parenthesised status: (done), (complete), (wip), (in progress), (priority: p1).
    let mut from = 0;
    while let Some(open) = s[from..].find('(').map(|o| from + o) {
        let Some(close) = s[open..].find(')').map(|c| open + c) else {
            break;
        };
        let inner = s[open + 1..close].trim();
        let status = is_status(inner)
            || inner.starts_with("priority")
            || (inner.starts_with('p') && inner.len() <= 3);
        if status {
            s.replace_range(open..=close, " ");
            from = open + 1;
        } else {
            from = close + 1;
        }
    }
    // Trailing status words.
    loop {
        let t = s
            .trim_end()
            .trim_end_matches(['-', ':', '.', ' '])
            .to_string();
        let stripped = STATUS_WORDS.iter().find_map(|w| {
            t.strip_suffix(w)
                .filter(|r| r.is_empty() || r.ends_with([' ', '-', ':']))
        });
        match stripped {
            Some(r) => s = r.to_string(),
            None => {
                s = t;
                break;
            }
        }
    }
    // Leading numbering: `phase 2:`, `step 3 -`, `1.`, `2)`, `3.1`.
    let mut t = s.trim_start();
    for word in [
        "phase",
        "step",
        "stage",
        "wave",
        "part",
        "milestone",
        "group",
    ] {
        if let Some(r) = t.strip_prefix(word) {
            let r2 = r.trim_start();
            if r2.starts_with(|c: char| c.is_ascii_digit()) {
                t = r2;
            }
            break;
        }
    }
    let digits = t
        .bytes()
        .take_while(|c| c.is_ascii_digit() || *c == b'.')
        .count();
    if digits > 0 {
        let r = &t[digits..];
        if r.is_empty() || r.starts_with([' ', ':', ')', '-']) {
            t = r.trim_start_matches([' ', ':', ')', '-']);
        }
    }
    let out = t.split_whitespace().collect::<Vec<_>>().join(" ");
    let out = out.trim_matches(|c: char| " -:.".contains(c)).to_string();
    if out.is_empty() {
        lower.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        out
    }
}

const STATUS_WORDS: &[&str] = &[
    "complete",
    "completed",
    "done",
    "finished",
    "in progress",
    "in-progress",
    "wip",
    "mvp",
    "todo",
    "blocked",
    "[x]",
    "[ ]",
];

fn is_status(s: &str) -> bool {
    // `(optional - only if tests requested)` is spec-kit's template note.
    STATUS_WORDS.contains(&s) || s.starts_with("optional")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(
        hint: Option<&str>,
        speckit: Option<&str>,
        number: Option<&str>,
        slug: &str,
    ) -> Candidate {
        Candidate {
            hint: hint.map(str::to_string),
            speckit: speckit.map(str::to_string),
            number: number.map(str::to_string),
            slug: slug.to_string(),
        }
    }

    #[test]
    fn ids_prefer_hint_then_speckit_then_number_then_slug() {
        let a = assign(vec![
            cand(Some("mine"), Some("T001"), None, "x"),
            cand(None, Some("T002"), Some("1.1"), "y"),
            cand(None, None, Some("1.2"), "z"),
            cand(None, None, None, "setup/install"),
        ]);
        let ids: Vec<_> = a.ids.iter().map(|(i, s)| (i.as_str(), *s)).collect();
        assert_eq!(
            ids,
            [
                ("mine", IdSource::Hint),
                ("T002", IdSource::SpecKit),
                ("1.2", IdSource::Number),
                ("setup/install", IdSource::Slug)
            ]
        );
    }

    #[test]
    fn colliding_derived_ids_get_numbered_suffixes() {
        let a = assign(vec![
            cand(None, None, None, "a/x"),
            cand(None, None, None, "a/x"),
            cand(None, None, None, "a/x"),
        ]);
        let ids: Vec<_> = a.ids.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(ids, ["a/x", "a/x-2", "a/x-3"]);
        assert!(a.duplicate_derived.is_empty(), "slug collisions are normal");
    }

    #[test]
    fn many_identical_texts_get_ids_in_linear_time() {
        let c: Vec<_> = (0..20_000)
            .map(|_| cand(None, None, None, "todo"))
            .collect();
        let a = assign(c);
        assert_eq!(a.ids[19_999].0, "todo-20000");
        let mut ids: Vec<_> = a.ids.iter().map(|(i, _)| i.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 20_000);
    }

    #[test]
    fn a_suffixed_id_never_collides_with_a_written_one() {
        let a = assign(vec![
            cand(None, None, None, "x-2"),
            cand(None, None, None, "x"),
            cand(None, None, None, "x"),
        ]);
        let ids: Vec<_> = a.ids.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(ids, ["x-2", "x", "x-3"]);
    }

    #[test]
    fn a_hint_id_wins_over_an_earlier_derived_id() {
        let a = assign(vec![
            cand(None, Some("T001"), None, "x"),
            cand(Some("T001"), None, None, "y"),
        ]);
        assert_eq!(a.ids[0].0, "T001-2");
        assert_eq!(a.ids[1].0, "T001");
    }

    #[test]
    fn duplicate_hint_ids_are_reported_and_duplicate_numbers_noted() {
        let a = assign(vec![
            cand(Some("a"), None, None, "x"),
            cand(Some("a"), None, None, "y"),
        ]);
        assert_eq!(a.duplicate_hints, [(0, 1)]);
        let a = assign(vec![
            cand(None, Some("T005"), None, "x"),
            cand(None, Some("T005"), None, "y"),
        ]);
        assert_eq!(a.duplicate_derived, [(0, 1)]);
        assert_eq!(a.ids[1].0, "T005-2");
    }

    #[test]
    fn slugs_are_lowercase_ascii_words_cut_at_a_boundary() {
        assert_eq!(
            slug("Add **login** endpoint (`POST /login`)", 60),
            "add-login-endpoint-post-login"
        );
        assert_eq!(slug("alpha beta gamma", 12), "alpha-beta");
        assert_eq!(slug("Café ✅ done", 40), "caf-done");
        assert_eq!(slug("", 10), "");
        assert_eq!(slug("first line\r\nsecond", 40), "first-line");
        assert_eq!(slug("\nsecond", 40), "");
    }

    #[test]
    fn module_names_drop_status_and_numbering() {
        assert_eq!(module_name("  Backend ✅ COMPLETE "), "backend");
        assert_eq!(module_name("Phase 2: Foundational (DONE)"), "foundational");
        assert_eq!(
            module_name("1. Project Foundation and Setup"),
            "project foundation and setup"
        );
        assert_eq!(
            module_name("2) New module: `src/commands/show.ts`"),
            "new module: src/commands/show.ts"
        );
        assert_eq!(module_name("🚀 Frontend"), "frontend");
        assert_eq!(module_name("API (in progress)"), "api");
        assert_eq!(
            module_name("Tests for User Story 1 (OPTIONAL - only if tests requested) ⚠️"),
            "tests for user story 1"
        );
        assert_eq!(
            module_name("Setup (Project Init) (done)"),
            "setup (project init)"
        );
        assert_eq!(module_name("✅"), "✅");
        assert_eq!(
            module_name("Tests for User Story 1"),
            "tests for user story 1"
        );
    }
}
