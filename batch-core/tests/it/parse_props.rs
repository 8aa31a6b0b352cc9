//! Properties of parsing: it never panics, and checking a box changes one
//! byte and nothing else the parser sees.

use batch_core::doc::{Document, ParseOptions};
use proptest::prelude::*;

/// Pieces of markdown that exercise every rule of the parser.
const PIECES: &[&str] = &[
    "- [ ] ",
    "- [x] ",
    "* [X] ",
    "1. [ ] ",
    "- [ ]* ",
    "[ ]",
    "  ",
    "    ",
    "\t",
    "# ",
    "## ",
    "### ",
    "#### ",
    "<!-- ",
    " -->",
    "parallel: false",
    "id: a",
    "id: b",
    "paralel: 2",
    "; ",
    "module: m",
    "jobs: 2",
    "wave-level: 2",
    "after: a",
    "timeout: 5m",
    "```",
    "~~~",
    "> ",
    "T001 ",
    "T002 [P] ",
    "[US1] ",
    "1. ",
    "1.1 ",
    "1.2 (P) ",
    "_Requirements: 1.1_",
    "_Depends: 1.1_",
    "(depends on T001)",
    "---",
    "===",
    "\u{feff}",
    "é",
    "✅ COMPLETE",
    "*",
    "**",
    "`",
    "<div>",
    "</div>",
    "|a|b|",
    "|-|-|",
    "text",
    "more words",
    "\n",
    "\n",
    "\n",
    "\r\n",
    "\n\n",
    // Prose the planner reads (issue 12).
    "**Dependencies:** Task 1",
    "**Dependencies:** None",
    "**Phase 1: Setup**",
    "**Phase 2: Core**",
    "Task 1",
    "Task 2 and Task 3",
    "Phase 2",
    "Phases 1-3",
    "## Implementation Order",
    "## Execution order",
    " → ",
    "US1 must complete before US2",
    "User Story 2: Can start after US1",
    "T002 depends on T001",
    "## Success Criteria",
    "## 验证清单",
    "**T001** ",
    "## [ ] ",
    "retries=2",
    "2. ",
];

fn markdownish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..120).prop_map(|v| v.concat())
}

/// A task file made of headings, tasks and details, always with some unchecked tasks.
fn task_file() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        3 => (0..3usize, prop::sample::select(&["- [ ] ", "* [ ] ", "1. [ ] ", "- [x] ", "- [ ]* ", "> - [ ] "][..]), "[a-zA-Z ]{0,12}", prop::sample::select(&["", "T001 ", "1.2 ", "[P] ", "<!-- retries: 1 --> "][..]))
            .prop_map(|(indent, box_, text, extra)| format!("{}{box_}{extra}{text}\n", "  ".repeat(indent))),
        1 => (1..4usize, "[a-zA-Z ]{1,10}").prop_map(|(l, t)| format!("{} {t}\n", "#".repeat(l))),
        1 => "[a-zA-Z ]{0,20}".prop_map(|t| format!("  {t}\n")),
        1 => Just("\n".to_string()),
        1 => Just("```\n- [ ] code\n```\n".to_string()),
        1 => Just("## Group\n<!-- parallel: false -->\n".to_string()),
    ];
    (
        prop::sample::select(&["", "\u{feff}", "---\n\ntitle: x\n---\n"][..]),
        prop::collection::vec(line, 1..40),
        any::<bool>(),
    )
        .prop_map(|(head, lines, crlf)| {
            let body = lines.concat();
            let text = format!("{head}{body}- [ ] last task\n");
            if crlf {
                text.replace('\n', "\r\n")
            } else {
                text
            }
        })
}

fn check_flip(text: &str, pick: prop::sample::Index) -> Result<(), TestCaseError> {
    // Generated files can be legitimately wrong (a hint comment swallowed by
    // a paragraph); those are rejected, and proptest fails if too many are.
    let parsed = Document::parse(text, &ParseOptions::default());
    prop_assume!(parsed.is_ok());
    let Ok(doc) = parsed else { return Ok(()) };
    let open: Vec<usize> = doc
        .tasks
        .iter()
        .filter(|t| !t.checked)
        .map(|t| t.index)
        .collect();
    prop_assert!(!open.is_empty(), "the last task is open");
    let i = open[pick.index(open.len())];
    let t = &doc.tasks[i];
    prop_assert_eq!(&text.as_bytes()[t.marker.clone()], b"[ ]");
    let mut bytes = text.as_bytes().to_vec();
    bytes[t.marker.start + 1] = b'x';
    let changed = bytes
        .iter()
        .zip(text.as_bytes())
        .filter(|(a, b)| a != b)
        .count();
    prop_assert_eq!(changed, 1);
    let again = match Document::parse_bytes(&bytes, &ParseOptions::default()) {
        Ok(d) => d,
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "flipped file fails to parse:\n{e}"
            )));
        }
    };
    let before: Vec<&str> = doc.tasks.iter().map(|t| t.id.as_str()).collect();
    let after: Vec<&str> = again.tasks.iter().map(|t| t.id.as_str()).collect();
    prop_assert_eq!(before, after);
    for (a, b) in doc.tasks.iter().zip(&again.tasks) {
        prop_assert_eq!(b.checked, a.checked || a.index == i, "task {}", &a.id);
        prop_assert_eq!(&a.marker, &b.marker);
    }
    Ok(())
}

proptest! {
    // 256 cases by default; `PROPTEST_CASES=20000` for a longer hunt.
    #[test]
    fn parsing_markdownish_text_never_panics(text in markdownish()) {
        let _ = Document::parse(&text, &ParseOptions::default());
    }

    #[test]
    fn planning_markdownish_text_never_panics_and_keeps_the_order(text in markdownish()) {
        use batch_core::{Plan, PlanOptions};
        if let Ok(doc) = Document::parse(&text, &ParseOptions::default()) {
            for cross_wave in [false, true] {
                let mut o = PlanOptions::default();
                o.cross_wave = Some(cross_wave);
                if let Ok(plan) = Plan::build(&doc, &o) {
                    // Topological: a node waits only for earlier nodes.
                    for n in &plan.nodes {
                        for e in &n.deps {
                            prop_assert!(e.on < n.index);
                        }
                        for &b in &n.barriers {
                            prop_assert!(plan.barriers[b].members.iter().all(|&m| m < n.index));
                        }
                    }
                    let _ = batch_core::plan::render(&doc, &plan, batch_core::plan::PlanFormat::Text);
                }
            }
        }
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Document::parse_bytes(&bytes, &ParseOptions::default());
    }

    #[test]
    fn every_recorded_marker_is_a_box_in_the_file(text in markdownish()) {
        if let Ok(doc) = Document::parse(&text, &ParseOptions::default()) {
            for t in &doc.tasks {
                let m = &text.as_bytes()[t.marker.clone()];
                prop_assert!(m == b"[ ]" || m == b"[x]" || m == b"[X]", "{:?}", m);
            }
        }
    }

    #[test]
    fn flipping_a_marker_changes_one_byte_and_checks_that_task(text in task_file(), pick in any::<prop::sample::Index>()) {
        check_flip(&text, pick)?;
    }
}

/// Parse, plan, then check every planned task's box through the real
/// write-back, one write per task in plan order: the file ends as the
/// original with `[ ]` → `[x]` at task markers only, every planned task
/// checked, no checked box unchecked, and the same tasks when re-parsed.
fn round_trip(text: &str) -> Result<(), TestCaseError> {
    use batch_core::{Plan, PlanOptions};
    let parsed = Document::parse(text, &ParseOptions::default());
    prop_assume!(parsed.is_ok());
    let Ok(doc) = parsed else { return Ok(()) };
    let plan = Plan::build(&doc, &PlanOptions::default());
    prop_assume!(plan.is_ok());
    let Ok(plan) = plan else { return Ok(()) };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("task.md");
    std::fs::write(&path, text).unwrap();
    let options = ParseOptions::with_path(&path);
    let planned: Vec<String> = plan
        .nodes
        .iter()
        .map(|n| doc.tasks[n.task].id.clone())
        .collect();
    for id in &planned {
        let out =
            batch_core::store::taskfile::check_boxes(&path, &options, std::slice::from_ref(id))
                .map_err(|e| TestCaseError::fail(format!("writing `{id}`: {e}")))?;
        prop_assert!(out.problems.is_empty(), "`{}`: {:?}", id, out.problems);
    }
    let after = std::fs::read(&path).unwrap();
    let before = text.as_bytes();
    prop_assert_eq!(after.len(), before.len());
    let markers: std::collections::HashSet<usize> =
        doc.tasks.iter().map(|t| t.marker.start + 1).collect();
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        if a != b {
            prop_assert!(
                markers.contains(&i) && *a == b' ' && (*b == b'x' || *b == b'X'),
                "byte {} changed from {:?} to {:?}",
                i,
                *a as char,
                *b as char
            );
        }
    }
    let again = Document::parse_bytes(&after, &ParseOptions::default())
        .map_err(|e| TestCaseError::fail(format!("the written file fails to parse:\n{e}")))?;
    let ids: Vec<&str> = doc.tasks.iter().map(|t| t.id.as_str()).collect();
    let ids_after: Vec<&str> = again.tasks.iter().map(|t| t.id.as_str()).collect();
    prop_assert_eq!(ids, ids_after);
    for (a, b) in doc.tasks.iter().zip(&again.tasks) {
        prop_assert!(!a.checked || b.checked, "`{}` was unchecked", &a.id);
        if planned.contains(&a.id) {
            prop_assert!(b.checked, "`{}` was planned and written, yet open", &a.id);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn parse_plan_and_write_back_round_trip_flips_only_the_planned_boxes(text in task_file()) {
        round_trip(&text)?;
    }
}
