//! Dialects: what spec-kit, kiro (cc-sdd, OpenSpec) and plain "waves" files
//! write at the start of a task, and which of them a file is.
//!
//! - spec-kit: `T012 [P] [US1] Create model` — an id, a parallel marker, a story.
//! - kiro: `1.2 (P) Create model`, optional tasks `[ ]* 1.3 …`, `_Requirements: 2.1_`.
//! - dependency text of both: `(depends on T012, T013)`, `T012-T015`,
//!   `_Depends: 1.2, 2.3_`.

use super::model::Dialect;

/// The id and markers at the start of a task's text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Prefix {
    /// `T012`.
    pub(crate) speckit_id: Option<String>,
    /// `1.2` (without a trailing dot).
    pub(crate) number: Option<String>,
    /// Byte index in the text where the text after the id starts.
    pub(crate) rest: usize,
    /// `[P]` or `(P)` among the leading markers.
    pub(crate) parallel: bool,
    /// `(P)` specifically (kiro's spelling).
    pub(crate) kiro_parallel: bool,
    /// A `[US1]` / `[AUTH-US1]` story tag.
    pub(crate) story: Option<String>,
    /// A kiro number written with a trailing star (`7.9* …`), the spelling
    /// cc-sdd uses for an optional task beside `[ ]* 7.9`.
    pub(crate) optional: bool,
}

/// Reads the id and leading markers of a task text.
pub(crate) fn read_prefix(text: &str) -> Prefix {
    // `**T015** [P] …` and `**1.2** …`: an agent's bold id is still the id.
    if let Some(inner) = text.strip_prefix("**")
        && let Some(close) = inner.find("**")
        && !inner[..close].contains(char::is_whitespace)
        && inner[close + 2..]
            .chars()
            .next()
            .is_none_or(|c| c.is_whitespace() || c == ':')
    {
        let id = &inner[..close];
        let mut p = read_prefix(id);
        if p.speckit_id.is_some() || p.number.is_some() {
            let after = 2 + close + 2;
            let after = text[after..].strip_prefix(':').map_or(after, |_| after + 1);
            let rest = &text[after..];
            let q = read_prefix(rest.trim_start());
            p.rest = after + (rest.len() - rest.trim_start().len());
            // Markers only: an id in the rest (`**T015** T016`) is text.
            if q.speckit_id.is_none() && q.number.is_none() {
                p.parallel = q.parallel;
                p.kiro_parallel = q.kiro_parallel;
                p.story = q.story;
            }
            return p;
        }
    }
    let mut p = Prefix::default();
    let (id_len, after) = if let Some(n) = speckit_id_len(text) {
        p.speckit_id = Some(text[..n].to_string());
        (n, text[n..].strip_prefix(':').map_or(n, |_| n + 1))
    } else if let Some((n, num_end)) = number_len(text) {
        p.number = Some(text[..num_end].to_string());
        p.optional = text[..n].ends_with('*');
        (n, n)
    } else if let Some(n) = placeholder_id_len(text) {
        // The spec-kit template's `TXXX`: not an id, but not text either.
        (n, n)
    } else {
        (0, 0)
    };
    if id_len > 0 {
        p.rest = after + (text[after..].len() - text[after..].trim_start().len());
    }
    // Leading markers after the id (or at the start).
    let mut at = if id_len > 0 { p.rest } else { 0 };
    loop {
        let rest = &text[at..];
        let trimmed = rest.trim_start();
        at += rest.len() - trimmed.len();
        if trimmed.starts_with("[P]") || trimmed.starts_with("(P)") {
            p.parallel = true;
            p.kiro_parallel |= trimmed.starts_with("(P)");
            at += 3;
        } else if let Some(tag) = story_tag(trimmed) {
            p.story = Some(tag.to_string());
            at += tag.len() + 2;
        } else {
            break;
        }
    }
    p
}

/// `T` + digits followed by a space, `:` or the end.
fn speckit_id_len(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    if b.first() != Some(&b'T') {
        return None;
    }
    let digits = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let end = 1 + digits;
    match b.get(end) {
        None | Some(b' ' | b'\t' | b':' | b'\n' | b'\r') => Some(end),
        _ => None,
    }
}

/// `TXXX` (spec-kit's placeholder id) followed by a space.
fn placeholder_id_len(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let xs = b.iter().skip(1).take_while(|c| **c == b'X').count();
    (b.first() == Some(&b'T') && xs >= 2 && matches!(b.get(1 + xs), Some(b' ' | b'\t')))
        .then_some(1 + xs)
}

/// A kiro number `1.`, `1.2`, `1.2.` followed by a space or the end. Returns
/// (length including a trailing dot, length of the number itself).
fn number_len(text: &str) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut parts = 0;
    let mut dots = 0;
    loop {
        let d = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if d == 0 || d > 6 {
            return None;
        }
        i += d;
        parts += 1;
        if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
            dots += 1;
            continue;
        }
        break;
    }
    let num_end = i;
    if b.get(i) == Some(&b'.') {
        i += 1;
        dots += 1;
    }
    // `7.9*`: cc-sdd's optional task.
    if dots > 0 && b.get(i) == Some(&b'*') {
        i += 1;
    }
    if dots == 0 || parts > 6 {
        return None;
    }
    match b.get(i) {
        None | Some(b' ' | b'\t' | b'\n' | b'\r') => Some((i, num_end)),
        _ => None,
    }
}

/// `[US1]`, `[AUTH-US1]`: returns the text inside the brackets.
fn story_tag(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let close = inner.find(']')?;
    let tag = &inner[..close];
    let us = tag.rfind("US")?;
    let prefix_ok = us == 0 || tag[..us].ends_with('-');
    let digits = &tag[us + 2..];
    (prefix_ok
        && !digits.is_empty()
        && digits.bytes().all(|c| c.is_ascii_digit())
        && tag[..us]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-'))
    .then_some(tag)
}

/// Dependency references in one text: `depends on T012, T013`,
/// `Depends: 1.2-1.4`, `_Depends on: 2.3_`. Only id-shaped words are taken
/// (`T012`, `1.2`, ranges of them), so prose such as "depends on the
/// database" adds nothing.
pub(crate) fn depends_on(text: &str, out: &mut Vec<String>) {
    if !mentions_depend(text) {
        return;
    }
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("depend") {
        let start = from + i;
        from = start + 6;
        let tail = &lower[from..];
        // `depends on`, `depends:`, `depends on:`, `dependencies:`, `depend on`
        let skip = ["s on:", "s on", "s:", "encies:", "ency:", " on:", " on"]
            .iter()
            .find(|w| tail.starts_with(*w))
            .map(|w| w.len());
        let Some(skip) = skip else { continue };
        let list_start = from + skip;
        let list_end = text[list_start..]
            .find([')', '\n', ']', '|'])
            .map_or(text.len(), |e| list_start + e);
        // `Task 11`: a task named by its heading (or its number).
        let mut task_word = false;
        for word in text[list_start..list_end].split([',', ';', ' ', '\t', '_', '*', '`']) {
            let word = word.trim_end_matches('.').trim();
            if word.eq_ignore_ascii_case("and") || word.is_empty() {
                continue;
            }
            if word.eq_ignore_ascii_case("task") || word.eq_ignore_ascii_case("tasks") {
                task_word = true;
                continue;
            }
            if task_word && is_number(word) {
                push_unique(out, format!("Task {word}"));
                continue;
            }
            task_word = false;
            expand(word, out);
        }
        from = list_end.max(from);
    }
}

/// Whether `text` has `depend` in it, in any case: what [`depends_on`]
/// looks for first, checked without lowercasing a copy of the text.
///
/// A Horspool search (the window's last byte says how far to jump), so
/// most task texts are skipped six bytes at a time.
pub(crate) fn mentions_depend(text: &str) -> bool {
    const WORD: &[u8; 6] = b"depend";
    let b = text.as_bytes();
    let mut end = WORD.len() - 1;
    while end < b.len() {
        // `| 0x20` lowercases ASCII letters and maps no other byte to one.
        let shift = match b[end] | 0x20 {
            b'd' => {
                if b[end + 1 - WORD.len()..=end].eq_ignore_ascii_case(WORD) {
                    return true;
                }
                5
            }
            b'n' => 1,
            b'e' => 2,
            b'p' => 3,
            _ => 6,
        };
        end += shift;
    }
    false
}

/// Expands one id or range word; ignores words that are not id-shaped.
fn expand(word: &str, out: &mut Vec<String>) {
    let is_id = |w: &str| speckit_id_len(w) == Some(w.len()) || is_number(w);
    if is_id(word) {
        push_unique(out, word.to_string());
        return;
    }
    let Some((a, b)) = word.split_once(['-', '–']) else {
        return;
    };
    if !(is_id(a) && is_id(b)) {
        return;
    }
    match range(a, b) {
        Some(items) => items.into_iter().for_each(|i| push_unique(out, i)),
        None => {
            push_unique(out, a.to_string());
            push_unique(out, b.to_string());
        }
    }
}

fn is_number(w: &str) -> bool {
    !w.is_empty()
        && w.split('.')
            .all(|p| !p.is_empty() && p.len() <= 6 && p.bytes().all(|c| c.is_ascii_digit()))
}

/// `T012`..`T015` or `1.2`..`1.4` (same prefix, last part counts up).
fn range(a: &str, b: &str) -> Option<Vec<String>> {
    let (pa, na, width) = split_last_number(a)?;
    let (pb, nb, _) = split_last_number(b)?;
    if pa != pb || nb < na || nb - na > 1000 {
        return None;
    }
    Some((na..=nb).map(|n| format!("{pa}{n:0width$}")).collect())
}

/// `T012` → ("T", 12, 3); `1.4` → ("1.", 4, 1).
fn split_last_number(s: &str) -> Option<(&str, u64, usize)> {
    let digits = s.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let (prefix, num) = s.split_at(s.len() - digits);
    let width = if num.starts_with('0') { num.len() } else { 1 };
    Some((prefix, num.parse().ok()?, width))
}

fn push_unique(out: &mut Vec<String>, id: String) {
    if !out.contains(&id) {
        out.push(id);
    }
}

/// What a file shows of each dialect.
#[derive(Debug, Clone, Default)]
pub(crate) struct Signals {
    pub(crate) tasks: usize,
    pub(crate) speckit_ids: usize,
    pub(crate) speckit_markers: usize,
    pub(crate) phase_headings: usize,
    pub(crate) numbered: usize,
    pub(crate) kiro_parallel: usize,
    pub(crate) requirements_lines: usize,
    pub(crate) numbered_groups: usize,
    pub(crate) task_headings: usize,
}

/// Picks the dialect and says why.
pub(crate) fn detect(s: &Signals) -> (Dialect, String) {
    if s.speckit_ids > 0 && s.speckit_ids * 2 >= s.tasks {
        let mut why = format!(
            "detected: {} of {} tasks have T001-style ids",
            s.speckit_ids, s.tasks
        );
        if s.speckit_markers > 0 {
            why.push_str(&format!(", {} [P] markers", s.speckit_markers));
        }
        if s.phase_headings > 0 {
            why.push_str(&format!(", {} \"Phase N:\" headings", s.phase_headings));
        }
        return (Dialect::SpecKit, why);
    }
    if s.numbered > 0 && s.numbered * 2 >= s.tasks {
        let mut why = format!(
            "detected: {} of {} tasks are numbered (1., 1.1)",
            s.numbered, s.tasks
        );
        if s.requirements_lines > 0 {
            why.push_str(&format!(", {} _Requirements:_ lines", s.requirements_lines));
        }
        if s.kiro_parallel > 0 {
            why.push_str(&format!(", {} (P) markers", s.kiro_parallel));
        }
        return (Dialect::Kiro, why);
    }
    if s.requirements_lines > 0 {
        return (
            Dialect::Kiro,
            format!("detected: {} _Requirements:_ lines", s.requirements_lines),
        );
    }
    if s.task_headings >= 2 && s.numbered_groups * 2 > s.task_headings && s.speckit_markers == 0 {
        return (
            Dialect::Kiro,
            format!(
                "detected: {} of {} headings above tasks are numbered (## 1.)",
                s.numbered_groups, s.task_headings
            ),
        );
    }
    (
        Dialect::Waves,
        "default: no T001 ids, numbered tasks or _Requirements:_ lines".to_string(),
    )
}

/// Whether a heading title looks like `Phase 2: …` / `Phase 3.1: …`.
pub(crate) fn is_phase_heading(title: &str) -> bool {
    let lower = title.trim_start().to_ascii_lowercase();
    lower
        .strip_prefix("phase")
        .map(str::trim_start)
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
}

/// Whether a heading title starts with a group number: `1.`, `1)`, `2. Foo`.
pub(crate) fn is_numbered_heading(title: &str) -> bool {
    let t = title.trim_start();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && matches!(t.as_bytes().get(digits), Some(b'.' | b')'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speckit_prefix_gives_id_markers_and_story() {
        let t = "T012 [P] [US1] Create User model in src/models/user.py";
        let p = read_prefix(t);
        assert_eq!(p.speckit_id.as_deref(), Some("T012"));
        assert!(p.parallel);
        assert_eq!(p.story.as_deref(), Some("US1"));
        assert_eq!(
            &t[p.rest..],
            "[P] [US1] Create User model in src/models/user.py"
        );
        assert_eq!(read_prefix("T001: Setup").rest, 6);
        assert_eq!(
            read_prefix("T003 [AUTH-US1] x").story.as_deref(),
            Some("AUTH-US1")
        );
        let p = read_prefix("TXXX [P] Document it");
        assert_eq!((p.speckit_id.as_deref(), p.parallel), (None, true));
        assert_eq!(&"TXXX [P] Document it"[p.rest..], "[P] Document it");
        assert_eq!(read_prefix("T12abc").speckit_id, None);
    }

    #[test]
    fn a_bold_id_is_still_the_id() {
        let t = "**T015** [P] [US1] Create the login form";
        let p = read_prefix(t);
        assert_eq!(p.speckit_id.as_deref(), Some("T015"));
        assert!(p.parallel);
        assert_eq!(p.story.as_deref(), Some("US1"));
        assert_eq!(&t[p.rest..], "[P] [US1] Create the login form");
        let t = "**T016**: Wire the route";
        let p = read_prefix(t);
        assert_eq!(p.speckit_id.as_deref(), Some("T016"));
        assert_eq!(&t[p.rest..], "Wire the route");
        let t = "**2.1** (P) Add tests";
        let p = read_prefix(t);
        assert_eq!(p.number.as_deref(), Some("2.1"));
        assert!(p.kiro_parallel);
        assert_eq!(&t[p.rest..], "(P) Add tests");
        assert_eq!(read_prefix("**Critical** fix it").speckit_id, None);
        assert_eq!(read_prefix("**Critical** fix it").rest, 0);
    }

    #[test]
    fn a_starred_kiro_number_is_an_optional_task() {
        let p = read_prefix("7.9* (P) Performance tests");
        assert_eq!(p.number.as_deref(), Some("7.9"));
        assert!(p.optional && p.parallel);
        assert_eq!(
            &"7.9* (P) Performance tests"[p.rest..],
            "(P) Performance tests"
        );
        assert!(!read_prefix("7.9 Performance tests").optional);
        assert!(read_prefix("7* not a number").number.is_none());
    }

    #[test]
    fn kiro_prefix_gives_number_and_parallel_marker() {
        let p = read_prefix("1.1 (P) Create apiClient service");
        assert_eq!(p.number.as_deref(), Some("1.1"));
        assert!(p.parallel && p.kiro_parallel);
        let p = read_prefix("2. Set up context");
        assert_eq!(p.number.as_deref(), Some("2"));
        assert_eq!(&"2. Set up context"[p.rest..], "Set up context");
        assert_eq!(read_prefix("1.2.3. deep").number.as_deref(), Some("1.2.3"));
        assert_eq!(read_prefix("3 retries").number, None);
        assert_eq!(read_prefix("1.5x faster").number, None);
        assert_eq!(read_prefix("Write docs").number, None);
    }

    #[test]
    fn mentions_depend_finds_the_word_in_any_case_anywhere() {
        for yes in [
            "depend",
            "Depends on T001",
            "x _DEPENDS: 1.2_",
            "(dEpEnDs on 3)",
            "ddepend",
            "edepend",
            "ndepend",
        ] {
            assert!(mentions_depend(yes), "{yes}");
        }
        for no in [
            "",
            "depen",
            "epend",
            "de-pend",
            "independ",
            "dpend",
            "the dependant",
        ] {
            assert_eq!(
                mentions_depend(no),
                no.to_ascii_lowercase().contains("depend"),
                "{no}"
            );
        }
    }

    #[test]
    fn depends_on_reads_ids_lists_and_ranges() {
        let mut out = Vec::new();
        depends_on("Implement service (depends on T012, T013)", &mut out);
        assert_eq!(out, ["T012", "T013"]);
        out.clear();
        depends_on("Wire it up (depends on T008-T010 and T015)", &mut out);
        assert_eq!(out, ["T008", "T009", "T010", "T015"]);
        out.clear();
        depends_on("_Depends: 1.2, 2.3_", &mut out);
        assert_eq!(out, ["1.2", "2.3"]);
        out.clear();
        depends_on("- Depends on: 1.2-1.4", &mut out);
        assert_eq!(out, ["1.2", "1.3", "1.4"]);
        out.clear();
        depends_on("This depends on the database being up", &mut out);
        assert!(out.is_empty());
        out.clear();
        depends_on("Dependencies: T001, T001", &mut out);
        assert_eq!(out, ["T001"]);
        out.clear();
        depends_on("**Dependencies:** Task 11, Task 12", &mut out);
        assert_eq!(out, ["Task 11", "Task 12"]);
    }

    #[test]
    fn unexpandable_ranges_keep_both_ends() {
        let mut out = Vec::new();
        depends_on("depends on 1.4-2.1", &mut out);
        assert_eq!(out, ["1.4", "2.1"]);
    }

    #[test]
    fn detection_prefers_speckit_ids_then_numbers() {
        let s = Signals {
            tasks: 10,
            speckit_ids: 9,
            speckit_markers: 3,
            ..Signals::default()
        };
        let (d, why) = detect(&s);
        assert_eq!(d, Dialect::SpecKit);
        assert!(why.contains("9 of 10 tasks have T001-style ids"), "{why}");
        let s = Signals {
            tasks: 10,
            numbered: 8,
            requirements_lines: 4,
            ..Signals::default()
        };
        assert_eq!(detect(&s).0, Dialect::Kiro);
        let s = Signals {
            tasks: 10,
            numbered: 1,
            ..Signals::default()
        };
        assert_eq!(detect(&s).0, Dialect::Waves);
        let s = Signals {
            tasks: 10,
            task_headings: 4,
            numbered_groups: 4,
            ..Signals::default()
        };
        assert_eq!(detect(&s).0, Dialect::Kiro);
    }

    #[test]
    fn phase_and_numbered_headings_are_recognised() {
        assert!(is_phase_heading("Phase 3.1: Setup"));
        assert!(is_phase_heading("Phase 2: Foundational"));
        assert!(!is_phase_heading("Phases of the moon"));
        assert!(is_numbered_heading("1. Project Foundation"));
        assert!(is_numbered_heading("2) New module"));
        assert!(!is_numbered_heading("2024 roadmap"));
    }
}
