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

use std::collections::{HashMap, HashSet};

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
pub(crate) fn assign(candidates: &[Candidate]) -> Assigned {
    let mut out = Assigned::default();
    let mut taken: HashMap<String, usize> = HashMap::new();
    // Hint ids first: they are what the user wrote and must not be renamed.
    for (i, c) in candidates.iter().enumerate() {
        if let Some(id) = &c.hint {
            if let Some(&first) = taken.get(id) {
                out.duplicate_hints.push((first, i));
            } else {
                taken.insert(id.clone(), i);
            }
        }
    }
    let mut used: HashSet<String> = taken.keys().cloned().collect();
    // The next suffix to try per base: 10,000 tasks with the same text stay linear.
    let mut next_suffix: HashMap<String, usize> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        if let Some(id) = &c.hint {
            out.ids.push((id.clone(), IdSource::Hint));
            continue;
        }
        let (base, source) = if let Some(id) = &c.speckit {
            (id.clone(), IdSource::SpecKit)
        } else if let Some(n) = &c.number {
            (n.clone(), IdSource::Number)
        } else {
            (c.slug.clone(), IdSource::Slug)
        };
        let mut id = base.clone();
        if used.contains(&id) {
            if source != IdSource::Slug
                && let Some(&first) = taken.get(&base)
            {
                out.duplicate_derived.push((first, i));
            }
            let n = next_suffix.entry(base.clone()).or_insert(2);
            loop {
                id = format!("{base}-{n}");
                *n += 1;
                if !used.contains(&id) {
                    break;
                }
            }
        }
        used.insert(id.clone());
        taken.entry(base).or_insert(i);
        out.ids.push((id, source));
    }
    out
}

/// A lowercase ASCII slug of `text`: words joined by `-`, at most `max` bytes,
/// cut at a word boundary. Markdown punctuation disappears.
pub(crate) fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut pending_dash = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                if out.len() + 1 >= max {
                    break;
                }
                out.push('-');
            }
            pending_dash = false;
            if out.len() >= max {
                // Cut at the last word boundary.
                if let Some(dash) = out.rfind('-') {
                    out.truncate(dash);
                }
                break;
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_alphanumeric() {
            // Non-ASCII letters (accents, CJK) would make ids hard to type;
            // keep a word boundary instead.
            pending_dash = true;
        } else {
            pending_dash = true;
        }
    }
    out
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
        let a = assign(&[
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
        let a = assign(&[
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
        let a = assign(&c);
        assert_eq!(a.ids[19_999].0, "todo-20000");
        let mut ids: Vec<_> = a.ids.iter().map(|(i, _)| i.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 20_000);
    }

    #[test]
    fn a_suffixed_id_never_collides_with_a_written_one() {
        let a = assign(&[
            cand(None, None, None, "x-2"),
            cand(None, None, None, "x"),
            cand(None, None, None, "x"),
        ]);
        let ids: Vec<_> = a.ids.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(ids, ["x-2", "x", "x-3"]);
    }

    #[test]
    fn a_hint_id_wins_over_an_earlier_derived_id() {
        let a = assign(&[
            cand(None, Some("T001"), None, "x"),
            cand(Some("T001"), None, None, "y"),
        ]);
        assert_eq!(a.ids[0].0, "T001-2");
        assert_eq!(a.ids[1].0, "T001");
    }

    #[test]
    fn duplicate_hint_ids_are_reported_and_duplicate_numbers_noted() {
        let a = assign(&[
            cand(Some("a"), None, None, "x"),
            cand(Some("a"), None, None, "y"),
        ]);
        assert_eq!(a.duplicate_hints, [(0, 1)]);
        let a = assign(&[
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
