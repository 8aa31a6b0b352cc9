//! Hints: `<!-- key: value; key: value -->` comments.
//!
//! # Where a hint may stand
//!
//! | placement | example | applies to |
//! | --- | --- | --- |
//! | before the first heading, or anywhere in the preamble outside a list (e.g. under the title) | `<!-- jobs: 2; cross-wave: true -->` | the whole document ([`Document::hints`](super::Document::hints)) |
//! | directly under a heading from the first wave on (only other hint comments between) | `## Backend` then `<!-- parallel: false -->` | that section ([`Section::hints`](super::Section::hints)): a wave's or group's `parallel`, `module`, `after` |
//! | indented inside a task's list item, on its own line | `- [ ] build` then `  <!-- id: build; resource: cargo -->` | that task ([`Task::hints`](super::Task::hints)) |
//! | inline after the task text | `- [ ] build <!-- id: build -->` | that task (the comment is not part of [`Task::text`](super::Task::text)) |
//!
//! The preamble is everything before the first wave heading, so a hint under
//! the title (`# Plan` then `<!-- jobs: 2 -->`) is a document hint; a
//! `wave-level:` hint counts anywhere before the first task. A hint inside a
//! nested non-task bullet of a task belongs to that task. A hint-shaped
//! comment anywhere else (between paragraphs of a wave, unindented after a
//! list item — which ends the list in CommonMark — or in a list item that is
//! not a task) applies to nothing and is an error, as is a key at a level where it means nothing (`id` outside a task,
//! `jobs`, `cross-wave` and `wave-level` outside the document's hints,
//! `module` and `parallel` on a task).
//!
//! # What looks like a hint
//!
//! A comment is read as a hint when every `;`- or line-separated part has
//! the shape `key: value` and at least one key is a known key or close to one
//! (a typo such as `paralel`), or there are several parts with lowercase
//! keys. Such a comment with an unknown key or a bad value is an error naming
//! the key and the nearest known key. Any other comment (`<!-- Note: … -->`,
//! `<!-- markdownlint-disable -->`, prose) is left alone.
//!
//! A `;` that is not followed by `key:` stays in the value, so
//! `verify: cargo fmt --check; cargo test` keeps both commands.

use std::time::Duration;

use super::model::{Hints, Parallelism};

/// Every key, in the order shown to users (aliases last).
pub(crate) const KNOWN_KEYS: &[&str] = &[
    "parallel",
    "module",
    "id",
    "after",
    "resource",
    "verify",
    "optional",
    "skip",
    "retries",
    "timeout",
    "cross-wave",
    "jobs",
    "wave-level",
    "launcher-arg",
    "parallelizable",
];

/// Where a hint comment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Document,
    Section,
    Task,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Document => "document",
            Level::Section => "section",
            Level::Task => "task",
        }
    }
}

/// One `key: value` of a hint comment, with body offsets for diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_at: usize,
    pub(crate) value: String,
    /// Written `key=value` (a typo of `key: value`).
    pub(crate) equals: bool,
}

/// A problem in a hint, at a body offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) at: usize,
    pub(crate) message: String,
    pub(crate) help: Option<String>,
}

/// Reads the inside of a comment (`inner`, found at body offset `inner_at`).
/// Returns `None` when the comment does not look like a hint.
pub(crate) fn parse_comment(inner: &str, inner_at: usize) -> Option<Vec<Entry>> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut seg_start = 0;
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i <= bytes.len() {
        let at_sep = i == bytes.len() || bytes[i] == b';' || bytes[i] == b'\n';
        if !at_sep {
            i += 1;
            continue;
        }
        let seg = &inner[seg_start..i];
        let lead = seg.len() - seg.trim_start().len();
        let trimmed = seg.trim();
        if !trimmed.is_empty() {
            match split_key(trimmed) {
                Some((key, value)) => entries.push(Entry {
                    key: key.to_string(),
                    key_at: inner_at + seg_start + lead,
                    value: value.trim().to_string(),
                    equals: false,
                }),
                // `retries=2`: meant as a hint, written with the wrong sign.
                None if split_equals(trimmed).is_some_and(|(k, _)| {
                    canonical(k).is_some() || nearest_key(k).is_some_and(|(_, d)| d <= 1)
                }) =>
                {
                    let (key, value) = split_equals(trimmed).unwrap_or_default();
                    entries.push(Entry {
                        key: key.to_string(),
                        key_at: inner_at + seg_start + lead,
                        value: value.trim().to_string(),
                        equals: true,
                    });
                }
                None => {
                    let last = entries.last_mut()?;
                    // A `;` inside a value (`verify: a; b`) stays in it; a new
                    // line continues it with a space.
                    if seg_start > 0 && bytes[seg_start - 1] == b';' {
                        last.value.push_str("; ");
                    } else {
                        last.value.push(' ');
                    }
                    last.value.push_str(trimmed);
                }
            }
        }
        seg_start = i + 1;
        i += 1;
    }
    if entries.is_empty() {
        return None;
    }
    let any_known_or_close = entries
        .iter()
        .any(|e| canonical(&e.key).is_some() || nearest_key(&e.key).is_some_and(|(_, d)| d <= 2));
    let machine_like = entries.len() >= 2
        && entries.iter().all(|e| {
            e.key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_')
        });
    (any_known_or_close || machine_like).then_some(entries)
}

/// `key=value` with `key` an identifier.
fn split_equals(seg: &str) -> Option<(&str, &str)> {
    let eq = seg.find('=')?;
    let key = seg[..eq].trim_end();
    let mut chars = key.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    .then(|| (key, &seg[eq + 1..]))
}

/// `key: value` with `key` an identifier.
fn split_key(seg: &str) -> Option<(&str, &str)> {
    let colon = seg.find(':')?;
    let key = seg[..colon].trim_end();
    let mut chars = key.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic()
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    Some((key, &seg[colon + 1..]))
}

/// The canonical name of a known key (case-insensitive, `_` for `-`, aliases resolved).
pub(crate) fn canonical(key: &str) -> Option<&'static str> {
    let k = key.to_ascii_lowercase().replace('_', "-");
    match k.as_str() {
        "parallelizable" | "parallelisable" => Some("parallel"),
        _ => KNOWN_KEYS.iter().find(|known| **known == k).copied(),
    }
}

/// The known key nearest to `key` and its edit distance.
pub(crate) fn nearest_key(key: &str) -> Option<(&'static str, usize)> {
    let k = key.to_ascii_lowercase().replace('_', "-");
    match k.as_str() {
        "depends" | "depends-on" | "deps" | "needs" | "requires" | "blocked-by" => {
            return Some(("after", 0));
        }
        "parallelism" | "concurrency" => return Some(("parallel", 0)),
        "retry" => return Some(("retries", 0)),
        _ => {}
    }
    KNOWN_KEYS
        .iter()
        .map(|known| (*known, edit_distance(&k, known)))
        .min_by_key(|(_, d)| *d)
}

/// Levenshtein distance over characters (keys are short).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Applies the entries of one comment at `level` to `hints`; returns every problem.
pub(crate) fn apply(entries: &[Entry], level: Level, hints: &mut Hints) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut seen: Vec<&'static str> = Vec::new();
    for e in entries {
        if e.equals {
            let key = canonical(&e.key)
                .or_else(|| nearest_key(&e.key).map(|(k, _)| k))
                .unwrap_or("key");
            problems.push(Problem {
                at: e.key_at,
                message: format!(
                    "hint `{}={}` is written with `=`; mdbatch reads `key: value`",
                    e.key, e.value
                ),
                help: Some(format!("write `{key}: {}`", e.value)),
            });
            continue;
        }
        if let Some(key) = canonical(&e.key) {
            // `after` and `resource` are lists: a second one adds to the first.
            if seen.contains(&key) && !matches!(key, "after" | "resource" | "launcher-arg") {
                problems.push(Problem {
                    at: e.key_at,
                    message: format!("hint `{key}` is given twice in one comment"),
                    help: Some(format!(
                        "keep one `{key}:`; the second would silently replace the first"
                    )),
                });
                continue;
            }
            seen.push(key);
        }
        let Some(key) = canonical(&e.key) else {
            let help = match nearest_key(&e.key) {
                Some((near, d)) if d <= 3 => format!("did you mean `{near}`?"),
                _ => format!("known keys: {}", KNOWN_KEYS.join(", ")),
            };
            problems.push(Problem {
                at: e.key_at,
                message: format!("unknown hint key `{}`", e.key),
                help: Some(help),
            });
            continue;
        };
        if let Some(problem) = misplaced(key, level) {
            problems.push(Problem {
                at: e.key_at,
                message: format!("hint `{}` cannot stand in a {} hint", e.key, level.name()),
                help: Some(problem.to_string()),
            });
            continue;
        }
        if let Err(help) = set(key, &e.value, hints) {
            problems.push(Problem {
                at: e.key_at,
                message: format!("bad value `{}` for hint `{}`", e.value, e.key),
                help: Some(help),
            });
        }
    }
    problems
}

/// Why `key` means nothing at `level`, if it does not.
fn misplaced(key: &str, level: Level) -> Option<&'static str> {
    match (key, level) {
        ("cross-wave" | "jobs" | "wave-level", Level::Section | Level::Task) => {
            Some("it applies to the whole document: put it in a comment before the first heading")
        }
        ("id", Level::Document | Level::Section) => {
            Some("`id` names one task: put it inside the task's list item, indented")
        }
        ("module", Level::Task | Level::Document) => {
            Some("`module` names a group: put it directly under the group's heading")
        }
        ("parallel", Level::Task) => {
            Some("`parallel` applies to a group: put it directly under the group's heading")
        }
        _ => None,
    }
}

fn set(key: &str, value: &str, hints: &mut Hints) -> Result<(), String> {
    let v = value.trim();
    match key {
        "parallel" => hints.parallel = Some(parse_parallel(v)?),
        "module" => hints.module = Some(non_empty(v, "a module name, e.g. `module: backend`")?),
        "id" => {
            if v.is_empty() || v.contains(|c: char| c.is_whitespace() || c == ',') {
                return Err("write one id without spaces or commas, e.g. `id: build-api`".into());
            }
            hints.id = Some(v.to_string());
        }
        "after" => hints
            .after
            .extend(list(v, "task ids or section names, comma-separated")?),
        "resource" => hints.resource.extend(list(
            v,
            "resource names, comma-separated, e.g. `resource: db`",
        )?),
        "verify" => hints.verify = Some(non_empty(v, "a command, e.g. `verify: cargo test`")?),
        "launcher-arg" => hints.launcher_args.push(non_empty(
            v,
            "one argument for the cluster launcher, e.g. `launcher-arg: --time=30`",
        )?),
        "optional" => hints.optional = Some(parse_bool(v)?),
        "skip" => hints.skip = Some(parse_bool(v)?),
        "retries" => hints.retries = Some(parse_u32(v, 0)?),
        "timeout" => hints.timeout = Some(parse_timeout(v)?),
        "cross-wave" => hints.cross_wave = Some(parse_bool(v)?),
        "jobs" => hints.jobs = Some(parse_u32(v, 1)?),
        "wave-level" => {
            let n = parse_u32(v, 1)?;
            if n > 6 {
                return Err("a heading level is 1 to 6".into());
            }
            hints.wave_level = Some(n as u8);
        }
        _ => return Err(format!("known keys: {}", KNOWN_KEYS.join(", "))),
    }
    Ok(())
}

fn parse_timeout(v: &str) -> Result<Duration, String> {
    let d = crate::util::parse_duration(v).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("a timeout must be longer than zero, e.g. `90s` or `30m`".into());
    }
    Ok(d)
}

fn parse_parallel(v: &str) -> Result<Parallelism, String> {
    if let Ok(b) = parse_bool(v) {
        return Ok(if b {
            Parallelism::Unbounded
        } else {
            Parallelism::Sequential
        });
    }
    match v.parse::<u32>() {
        Ok(0) | Err(_) => {
            Err("write `true`, `false` or the most tasks at once (a number from 1)".into())
        }
        Ok(n) => Ok(Parallelism::Max(n)),
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Ok(true),
        "false" | "no" | "off" => Ok(false),
        _ => Err("write `true` or `false`".into()),
    }
}

fn parse_u32(v: &str, min: u32) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("write a whole number from {min}")),
    }
}

fn non_empty(v: &str, what: &str) -> Result<String, String> {
    if v.is_empty() {
        Err(format!("write {what}"))
    } else {
        Ok(v.to_string())
    }
}

fn list(v: &str, what: &str) -> Result<Vec<String>, String> {
    let items: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if items.is_empty() {
        Err(format!("write {what}"))
    } else {
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Option<Vec<Entry>> {
        parse_comment(s, 0)
    }

    fn hints_of(s: &str, level: Level) -> (Hints, Vec<Problem>) {
        let mut h = Hints::default();
        let entries = parse(s).expect("a hint");
        let p = apply(&entries, level, &mut h);
        (h, p)
    }

    #[test]
    fn key_value_pairs_split_on_semicolons_and_lines() {
        let e = parse(" parallel: false; module: api\n retries: 2 ").unwrap();
        let keys: Vec<_> = e
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            keys,
            [("parallel", "false"), ("module", "api"), ("retries", "2")]
        );
        assert_eq!(e[1].key_at, 18);
    }

    #[test]
    fn a_semicolon_not_followed_by_a_key_stays_in_the_value() {
        let (h, p) = hints_of(
            " verify: cargo fmt --check; cargo test; timeout: 5m ",
            Level::Task,
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(h.verify.as_deref(), Some("cargo fmt --check; cargo test"));
        assert_eq!(h.timeout, Some(Duration::from_secs(300)));
    }

    #[test]
    fn prose_comments_are_not_hints() {
        assert!(parse(" Note: 10.2 and 10.3 below are potential follow-up work ").is_none());
        assert!(parse(" markdownlint-disable-file ").is_none());
        assert!(parse("\n  =====\n  IMPORTANT: sample tasks\n").is_none());
        assert!(parse(" - [ ] 10.2 Update ff skill ").is_none());
        assert!(parse(" TODO: later ").is_none());
    }

    #[test]
    fn a_typo_of_a_known_key_is_a_hint_with_a_suggestion() {
        let (_, p) = hints_of(" paralel: false ", Level::Section);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].message, "unknown hint key `paralel`");
        assert_eq!(p[0].help.as_deref(), Some("did you mean `parallel`?"));
        assert_eq!(p[0].at, 1);
    }

    #[test]
    fn several_lowercase_pairs_with_an_unknown_key_are_an_error() {
        let (_, p) = hints_of(" colour: red; flavour: mint ", Level::Section);
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn a_hint_written_with_equals_is_an_error_with_the_fix() {
        let entries = parse("retries=2").expect("read as a hint");
        let (h, p) = hints_of("retries=2", Level::Task);
        assert_eq!(entries.len(), 1);
        assert_eq!(h.retries, None);
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("`retries=2`"), "{}", p[0].message);
        assert_eq!(p[0].help.as_deref(), Some("write `retries: 2`"));
        // Prose with an equals sign is still prose.
        assert!(parse("x = y + 1").is_none());
        assert!(parse("TODO=later").is_none());
    }

    #[test]
    fn a_key_given_twice_is_an_error_but_lists_add_up() {
        let (h, p) = hints_of("id: x; id: y", Level::Task);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].message.contains("`id` is given twice"),
            "{}",
            p[0].message
        );
        assert_eq!(h.id.as_deref(), Some("x"));
        let (h, p) = hints_of("after: a; after: b", Level::Task);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(h.after, ["a", "b"]);
    }

    #[test]
    fn parallelizable_is_an_alias_of_parallel() {
        let (h, p) = hints_of(" parallelizable: true ", Level::Section);
        assert!(p.is_empty());
        assert_eq!(h.parallel, Some(Parallelism::Unbounded));
        let (h, _) = hints_of(" parallel: 3 ", Level::Section);
        assert_eq!(h.parallel, Some(Parallelism::Max(3)));
        let (h, _) = hints_of(" Parallel: no ", Level::Document);
        assert_eq!(h.parallel, Some(Parallelism::Sequential));
    }

    #[test]
    fn bad_values_name_the_key_and_what_to_write() {
        for (text, key) in [
            (" parallel: maybe ", "parallel"),
            (" parallel: 0 ", "parallel"),
            (" retries: -1 ", "retries"),
            (" timeout: soon ", "timeout"),
            (" timeout: 0s ", "timeout"),
            (" skip: perhaps ", "skip"),
            (" id: two words ", "id"),
            (" after: , ", "after"),
        ] {
            let (_, p) = hints_of(text, Level::Task.max_for(key));
            assert_eq!(p.len(), 1, "{text}");
            assert!(
                p[0].message.contains(&format!("hint `{key}`")),
                "{:?}",
                p[0]
            );
            assert!(p[0].help.is_some());
        }
        let (_, p) = hints_of(" wave-level: 9 ", Level::Document);
        assert_eq!(p.len(), 1);
    }

    impl Level {
        /// A level where `key` is allowed (for value tests).
        fn max_for(self, key: &str) -> Level {
            match key {
                "parallel" | "module" => Level::Section,
                _ => self,
            }
        }
    }

    #[test]
    fn every_key_parses_at_its_level() {
        let (h, p) = hints_of(
            " cross-wave: true; jobs: 3; wave-level: 2; parallel: false; after: Setup, T001; \
             resource: db, build; verify: make check; optional: yes; skip: no; retries: 4; timeout: 90s ",
            Level::Document,
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(h.cross_wave, Some(true));
        assert_eq!(h.jobs, Some(3));
        assert_eq!(h.wave_level, Some(2));
        assert_eq!(h.after, ["Setup", "T001"]);
        assert_eq!(h.resource, ["db", "build"]);
        assert_eq!(h.optional, Some(true));
        assert_eq!(h.skip, Some(false));
        assert_eq!(h.retries, Some(4));
        assert_eq!(h.timeout, Some(Duration::from_secs(90)));
        let (h, p) = hints_of(" id: api-1; module: x ", Level::Task);
        assert_eq!(h.id.as_deref(), Some("api-1"));
        assert_eq!(p.len(), 1, "module is not a task hint");
    }

    #[test]
    fn document_only_keys_elsewhere_are_errors() {
        for level in [Level::Section, Level::Task] {
            let (h, p) = hints_of(" jobs: 2 ", level);
            assert_eq!(h.jobs, None);
            assert_eq!(p.len(), 1);
            assert!(
                p[0].help
                    .as_deref()
                    .unwrap()
                    .contains("before the first heading")
            );
        }
        let (_, p) = hints_of(" id: x ", Level::Section);
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn nearest_key_uses_edit_distance_and_common_synonyms() {
        assert_eq!(nearest_key("timout"), Some(("timeout", 1)));
        assert_eq!(nearest_key("depends").map(|n| n.0), Some("after"));
        assert_eq!(nearest_key("crosswave").map(|n| n.0), Some("cross-wave"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
