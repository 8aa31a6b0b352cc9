//! What authors write in prose around their tasks, read as plan structure:
//! headings that are not work ("Success criteria", `验证清单`), phases
//! written as bold paragraphs (`**Phase 1: Setup**`), and dependencies
//! (`**Dependencies:** Task 11, Task 12`, an "Implementation order" list,
//! spec-kit's "User Story 6 … can start after US1, US4, US5").
//!
//! Everything here reads one line of text and is pure; `scan` decides which
//! lines to give it (paragraphs and list items outside any task) and turns
//! what it finds into [`ProseDep`](super::ProseDep)s. The readers are
//! deliberately narrow: a reference is only taken when it has the shape of
//! one (`T012`, `Task 11`, `Phase 2`, `US3`, `User Story 3`, `2.1`), and a
//! line only counts when a dependency word introduces it, so ordinary prose
//! adds nothing.

/// Words of headings whose checkboxes are checks, not work items. Matched
/// case-insensitively anywhere in the title. A bare "checklist" is not among
/// them: "Implementation Checklist" is a real task list.
const NOT_WORK: &[&str] = &[
    "success criteria",
    "acceptance criteria",
    "definition of done",
    "exit criteria",
    "done criteria",
    "completion criteria",
    "review criteria",
    "completion checklist",
    "final checklist",
    "quality gates",
    "quality gate",
    "verification checklist",
    "validation checklist",
    "review checklist",
    "qa checklist",
    "testing checklist",
    "test checklist",
    "sign-off",
    "signoff",
    "verification steps",
    "validation criteria",
    // Chinese
    "验证清单",
    "验收标准",
    "验收清单",
    "验收条件",
    "成功标准",
    "完成标准",
    "完成定义",
    "检查清单",
    "驗證清單",
    "驗收標準",
    "成功標準",
    // Japanese
    "検証",
    "受け入れ基準",
    "受入基準",
    "受け入れ条件",
    "完了条件",
    "完了基準",
    "成功基準",
    "確認項目",
    // Korean
    "검증",
    "인수 기준",
    "완료 조건",
    "성공 기준",
    // Spanish, French, German, Portuguese
    "criterios de aceptación",
    "criterios de éxito",
    "critères d'acceptation",
    "critères de succès",
    "akzeptanzkriterien",
    "erfolgskriterien",
    "critérios de aceitação",
];

/// Whether a heading's title names checks rather than work.
pub(crate) fn not_work_title(title: &str) -> bool {
    let t = title.to_lowercase();
    NOT_WORK.iter().any(|w| t.contains(w))
}

/// Whether a heading's title announces an order of work.
pub(crate) fn order_title(title: &str) -> bool {
    let t = title.to_lowercase();
    [
        "implementation order",
        "execution order",
        "order of implementation",
        "order of execution",
        "build order",
        "suggested order",
        "recommended order",
        "task order",
        "dependency order",
        "implementation sequence",
        "execution sequence",
        "实施顺序",
        "执行顺序",
        "实现顺序",
        "実装順序",
        "実行順序",
        "実装順",
    ]
    .iter()
    .any(|w| t.contains(w))
}

/// Whether a heading holds one story's tasks that its author works in order
/// (BMAD's "Tasks / Subtasks").
pub(crate) fn in_order_tasks_title(title: &str) -> bool {
    let t: String = title
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    t.contains("tasks/subtasks") || t.contains("tasks&subtasks") || t.contains("tasksandsubtasks")
}

/// Words that open a phase written as a bold paragraph.
const PHASE_WORDS: &[&str] = &[
    "phase",
    "stage",
    "step",
    "milestone",
    "sprint",
    "week",
    "wave",
    "part",
    "iteration",
    "user story",
];

/// `**Phase 1: Setup**` (the whole one-line paragraph bold, optionally
/// followed by a colon or a short note): the title, without the stars.
pub(crate) fn bold_phase(paragraph: &str) -> Option<String> {
    let p = paragraph.trim();
    if p.contains('\n') {
        return None;
    }
    let inner = p.strip_prefix("**")?;
    let close = inner.find("**")?;
    let title = inner[..close].trim().trim_end_matches(':').trim();
    let after = inner[close + 2..].trim();
    if !(after.is_empty() || after == ":" || after.starts_with('(')) {
        return None;
    }
    let lower = title.to_lowercase();
    let numbered = |rest: &str| {
        rest.trim_start()
            .starts_with(|c: char| c.is_ascii_digit() || c.is_ascii_uppercase() && rest.len() < 3)
    };
    let word = PHASE_WORDS.iter().any(|w| {
        lower
            .strip_prefix(w)
            .is_some_and(|rest| rest.starts_with(' ') && numbered(rest))
    });
    // `阶段一`, `第1阶段`, `フェーズ1`
    let cjk = ["阶段", "階段", "フェーズ", "ステップ", "第"]
        .iter()
        .any(|w| title.starts_with(w))
        && title
            .chars()
            .any(|c| c.is_ascii_digit() || "一二三四五六七八九十".contains(c));
    (word || cjk).then(|| {
        if after.is_empty() || after == ":" {
            title.to_string()
        } else {
            format!("{title} {after}")
        }
    })
}

/// The dependency list of a `**Dependencies:** Task 11, Task 12` line (also
/// `Depends on:`, `Prerequisites:`, `Blocked by:`, `前置依赖:`, `依存:`), or
/// `None` when the line is no such line. `None`/`-` give an empty list.
pub(crate) fn dependencies_line(line: &str) -> Option<Vec<String>> {
    let l = strip_bullet(line);
    let plain: String = l.replace("**", "").replace("__", "");
    let plain = plain.trim().trim_start_matches('_');
    let lower = plain.to_lowercase();
    let labels = [
        "dependencies:",
        "dependency:",
        "depends on:",
        "depends:",
        "prerequisites:",
        "prerequisite:",
        "blocked by:",
        "requires:",
        "依赖:",
        "依赖：",
        "前置依赖:",
        "前置依赖：",
        "前置条件:",
        "依存:",
        "依存：",
        "依存関係:",
        "依存関係：",
    ];
    let label = labels.iter().find(|w| lower.starts_with(*w))?;
    let rest = &plain[label.len()..];
    let refs = refs_in(rest, true);
    if !refs.is_empty() {
        return Some(refs);
    }
    // `None`: the author says it waits for nothing. Anything else without a
    // reference (`Prerequisites: plan.md, spec.md`) is no dependency on tasks.
    let none = rest
        .trim()
        .trim_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_lowercase();
    let none_words = [
        "none",
        "n/a",
        "na",
        "nothing",
        "no dependencies",
        "无",
        "なし",
        "없음",
    ];
    (none.is_empty() || none_words.iter().any(|w| none.starts_with(w))).then(Vec::new)
}

/// A dependency line that names what waits first: spec-kit's `**User
/// Story 6 (P3)**: Can start after US1, US4, US5 - …`, `Phase 8 (Video):
/// Can start after US1`, `- **Task 2.1** depends on **Task 1.3**`,
/// `US1 (Parser) must complete before US2, US3`. Returns pairs of (what
/// waits, what it waits for). What it waits for is read up to the end of the
/// first clause (` - `, `;`, `. `), so "May integrate with US1" after the
/// dash adds nothing; the line must start with the one thing that waits.
pub(crate) fn waiter_line(line: &str) -> Vec<(String, Vec<String>)> {
    let l = strip_bullet(line).replace("**", "");
    let lower = l.to_lowercase();
    // (phrase, whether the named thing is what others wait for)
    let phrases: [(&str, bool); 9] = [
        ("can start after", false),
        ("starts after", false),
        ("start after", false),
        ("depends on", false),
        ("blocked by", false),
        ("requires", false),
        ("must complete before", true),
        ("must finish before", true),
        ("blocks", true),
    ];
    let Some((at, len, before)) = phrases
        .iter()
        .filter_map(|(p, rev)| lower.find(p).map(|i| (i, p.len(), *rev)))
        .min_by_key(|(i, _, _)| *i)
    else {
        return Vec::new();
    };
    let head = refs_in(&lower[..at], false);
    let [named] = head.as_slice() else {
        return Vec::new();
    };
    // The named thing opens the line (`User Story 6 (P3): …`).
    let first_word = lower.split_whitespace().next().unwrap_or("");
    let opens = ["user", "story", "us", "task", "phase", "t"]
        .iter()
        .any(|w| first_word.starts_with(w));
    if !opens {
        return Vec::new();
    }
    let tail = &lower[at + len..];
    let clause_end = [" - ", " – ", " — ", ";", ". ", "(but", ", but"]
        .iter()
        .filter_map(|s| tail.find(s))
        .min()
        .unwrap_or(tail.len());
    let others = refs_in(&tail[..clause_end], false);
    if others.is_empty() {
        return Vec::new();
    }
    let named = canonical_ref(named);
    let others: Vec<String> = others.iter().map(|r| canonical_ref(r)).collect();
    if before {
        others
            .into_iter()
            .map(|o| (o, vec![named.clone()]))
            .collect()
    } else {
        vec![(named, others)]
    }
}

/// `t012` → `T012` (refs read from lowercased text).
fn canonical_ref(r: &str) -> String {
    let b = r.as_bytes();
    if b.len() >= 2 && b[0] == b't' && b[1].is_ascii_digit() {
        return r.to_uppercase();
    }
    if let Some((a, z)) = r.split_once('-')
        && a.starts_with('t')
        && z.starts_with('t')
    {
        return r.to_uppercase();
    }
    r.to_string()
}

/// `A → B → C` (also `->`, `=>`, `⟶`): the references of each step, when
/// the line has at least one arrow and every step names something.
pub(crate) fn arrow_chain(line: &str) -> Option<Vec<Vec<String>>> {
    let l = strip_bullet(line);
    let mut steps: Vec<&str> = vec![l];
    for arrow in ["→", "->", "=>", "⟶", "⇒"] {
        steps = steps.into_iter().flat_map(|s| s.split(arrow)).collect();
    }
    if steps.len() < 2 {
        return None;
    }
    let refs: Vec<Vec<String>> = steps.iter().map(|s| refs_in(s, false)).collect();
    refs.iter().all(|r| !r.is_empty()).then_some(refs)
}

/// A list item's text without its bullet or number.
pub(crate) fn strip_bullet(line: &str) -> &str {
    let t = line.trim();
    for b in ["- ", "* ", "+ "] {
        if let Some(r) = t.strip_prefix(b) {
            return r.trim_start();
        }
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0
        && matches!(t.as_bytes().get(digits), Some(b'.' | b')'))
        && matches!(t.as_bytes().get(digits + 1), Some(b' ' | b'\t'))
    {
        return t[digits + 1..].trim_start();
    }
    t
}

/// The references in a piece of prose: `T012`, `T012-T015`, `Task 11`
/// (`Tasks 3 and 4` gives both), `Phase 2`, `US3`, `User Story 3`, dotted
/// numbers `2.1`; with `bare_numbers`, a plain `12` too (in a dependency
/// list, where `Task 11, 12` means tasks).
pub(crate) fn refs_in(text: &str, bare_numbers: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '`' | '*' | '_'))
        .filter(|w| !w.is_empty())
        .collect();
    // The noun that a following number refers to (`Task`, `Phase`, `Story`).
    let mut noun: Option<&'static str> = None;
    let mut i = 0;
    while i < words.len() {
        let w = words[i].trim_end_matches(['.', ':', '!', '?']);
        let lower = w.to_lowercase();
        i += 1;
        match lower.as_str() {
            "task" | "tasks" => {
                noun = Some("Task");
                continue;
            }
            "phase" | "phases" => {
                noun = Some("Phase");
                continue;
            }
            "story" | "stories" => {
                noun = Some("US");
                continue;
            }
            "user" => continue,
            "and" | "&" | "or" | "+" | "和" | "与" => continue,
            _ => {}
        }
        if is_speckit_id(w) {
            push(w.to_string());
            noun = None;
            continue;
        }
        if let Some((a, b)) = w.split_once(['-', '–'])
            && is_speckit_id(a)
            && is_speckit_id(b)
        {
            push(format!("{a}-{b}"));
            noun = None;
            continue;
        }
        if lower.len() > 2
            && lower.starts_with("us")
            && lower[2..].bytes().all(|c| c.is_ascii_digit())
        {
            push(format!("US{}", &w[2..]));
            noun = None;
            continue;
        }
        // `Phases 9-13`, `Tasks 3–5`: each of them.
        if let (Some(n), Some((a, b))) = (noun, w.split_once(['-', '–']))
            && let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>())
            && a <= b
            && b - a <= 50
        {
            for k in a..=b {
                push(match n {
                    "US" => format!("US{k}"),
                    n => format!("{n} {k}"),
                });
            }
            continue;
        }
        if is_number(w) {
            match noun {
                Some("US") => push(format!("US{w}")),
                Some(n) => push(format!("{n} {w}")),
                None if w.contains('.') || bare_numbers => push(w.to_string()),
                None => {}
            }
            continue;
        }
        noun = None;
    }
    out
}

fn is_speckit_id(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() >= 2 && matches!(b[0], b'T' | b't') && b[1..].iter().all(u8::is_ascii_digit)
}

fn is_number(w: &str) -> bool {
    !w.is_empty()
        && w.len() <= 12
        && w.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_work_titles_in_several_languages() {
        for t in [
            "Success Criteria",
            "Acceptance criteria",
            "Definition of Done",
            "Verification Checklist",
            "验证清单",
            "6. 検証",
            "受け入れ基準",
            "Completion Checklist",
        ] {
            assert!(not_work_title(t), "{t}");
        }
        for t in [
            "Implementation Checklist",
            "Phase 1: Setup",
            "Tasks / Subtasks",
            "Checklist",
            "Verify the build",
            // Work that tests: set up environments, write test emails.
            "3. Testing and Validation",
            "Phase 5: Verification",
        ] {
            assert!(!not_work_title(t), "{t}");
        }
    }

    #[test]
    fn bold_paragraph_phases() {
        assert_eq!(
            bold_phase("**Phase 1: Setup**").as_deref(),
            Some("Phase 1: Setup")
        );
        assert_eq!(
            bold_phase("**Phase 2: Core**:").as_deref(),
            Some("Phase 2: Core")
        );
        assert_eq!(
            bold_phase("**Week 3** (2 days)").as_deref(),
            Some("Week 3 (2 days)")
        );
        assert_eq!(
            bold_phase("**阶段一：基础**").as_deref(),
            Some("阶段一：基础")
        );
        assert_eq!(bold_phase("**Note:** this is prose"), None);
        assert_eq!(bold_phase("**Phase 1** then some words"), None);
        assert_eq!(bold_phase("**Phases** matter"), None);
        assert_eq!(bold_phase("**Phase 1: Setup**\nmore"), None);
    }

    #[test]
    fn dependency_lines_name_tasks_phases_and_ids() {
        assert_eq!(
            dependencies_line("**Dependencies:** Task 11, Task 12").unwrap(),
            ["Task 11", "Task 12"]
        );
        assert_eq!(
            dependencies_line("- **Depends on**: Tasks 3 and 4").unwrap(),
            ["Task 3", "Task 4"]
        );
        assert_eq!(
            dependencies_line("**Dependencies**: T001-T003, 2.1").unwrap(),
            ["T001-T003", "2.1"]
        );
        assert!(
            dependencies_line("**Dependencies:** None")
                .unwrap()
                .is_empty()
        );
        assert_eq!(dependencies_line("Dependencies matter a lot"), None);
        assert_eq!(
            dependencies_line("**Prerequisites**: plan.md, spec.md"),
            None
        );
        assert_eq!(dependencies_line("依赖: Task 2").unwrap(), ["Task 2"]);
    }

    #[test]
    fn waiter_lines_read_the_first_clause_only() {
        assert_eq!(
            waiter_line(
                "- **User Story 6 (P3)**: Can start after US1, US4, US5 - needs their data"
            ),
            [(
                "US6".to_string(),
                vec!["US1".to_string(), "US4".into(), "US5".into()]
            )]
        );
        assert_eq!(
            waiter_line(
                "- **User Story 2 (P2)**: Can start after Foundational (Phase 2) - May integrate with US1"
            ),
            [("US2".to_string(), vec!["Phase 2".to_string()])]
        );
        assert_eq!(
            waiter_line("- **Task 2.1** depends on **Task 1.3** (needs the schema)"),
            [("Task 2.1".to_string(), vec!["Task 1.3".to_string()])]
        );
        assert_eq!(
            waiter_line("- T005 depends on T003"),
            [("T005".to_string(), vec!["T003".to_string()])]
        );
        assert_eq!(
            waiter_line("  - US1 (Parser) must complete before US2, US3"),
            [
                ("US2".to_string(), vec!["US1".to_string()]),
                ("US3".to_string(), vec!["US1".to_string()])
            ]
        );
        assert!(waiter_line("- **User Story 1 (P1)**: No dependencies").is_empty());
        assert!(waiter_line("Stories are independent").is_empty());
        assert!(
            waiter_line("- **User Stories (Phase 3+)**: All depend on Foundational").is_empty()
        );
        assert!(waiter_line("This depends on US1 and US2").is_empty());
    }

    #[test]
    fn arrow_chains_and_refs() {
        assert_eq!(
            arrow_chain("1. Task 1 → Task 2 → Tasks 3, 4").unwrap(),
            vec![vec!["Task 1"], vec!["Task 2"], vec!["Task 3", "Task 4"]]
        );
        assert_eq!(
            arrow_chain("Phase 1 -> T004-T006 -> US2").unwrap(),
            vec![vec!["Phase 1"], vec!["T004-T006"], vec!["US2"]]
        );
        // A step that names nothing: not a chain of work.
        assert_eq!(arrow_chain("Setup -> T004"), None);
        assert_eq!(arrow_chain("a → b"), None);
        assert_eq!(
            refs_in("after T001, T002 and 2.1", false),
            ["T001", "T002", "2.1"]
        );
        assert_eq!(refs_in("see section 3", false), Vec::<String>::new());
        assert_eq!(
            refs_in("Phases 9-11 can proceed in any order", false),
            ["Phase 9", "Phase 10", "Phase 11"]
        );
    }
}
