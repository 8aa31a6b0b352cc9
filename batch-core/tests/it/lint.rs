//! `mdbatch check`'s lints on task files as LLMs write them.

use batch_core::plan::{check, check_document};
use batch_core::{Diagnostic, Document, ParseOptions, Plan, PlanOptions};

fn lints(text: &str) -> Vec<Diagnostic> {
    let doc = Document::parse(text, &ParseOptions::with_path("tasks.md")).expect("parses");
    let plan = Plan::build(&doc, &PlanOptions::default()).expect("plans");
    check(&doc, &plan)
}

fn messages(d: &[Diagnostic]) -> Vec<String> {
    d.iter()
        .map(|d| format!("{}: {}", d.line, d.message))
        .collect()
}

#[test]
fn the_hand_written_fixtures_are_clean() {
    for name in ["waves.md", "spec-kit.md", "kiro.md"] {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
        let text = std::fs::read_to_string(format!("{path}{name}")).expect("fixture");
        assert_eq!(messages(&lints(&text)), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn two_parallel_tasks_editing_one_file_are_a_merge_conflict_risk() {
    let text = "# Plan\n\n## Wave 1\n\n### Backend\n\n- [ ] Add the user model to `src/models.py`\n- [ ] Add the order model to src/models.py\n- [ ] Add the API docs in docs/api.md\n";
    let d = lints(text);
    assert_eq!(d.len(), 1, "{:?}", messages(&d));
    assert_eq!(d[0].line, 8);
    assert!(
        d[0].message
            .ends_with("may run side by side and both edit `src/models.py`"),
        "{}",
        d[0].message
    );
    assert!(
        d[0].help
            .as_deref()
            .unwrap_or_default()
            .contains("<!-- after:")
    );
}

#[test]
fn spec_kit_p_tasks_on_one_file_are_flagged_but_sequential_ones_are_not() {
    let text = "# Tasks\n\n## Phase 1: Core\n\n- [ ] T001 Create `src/app.py`\n- [ ] T002 Extend `src/app.py`\n- [ ] T003 [P] Add routes in `src/routes.py`\n- [ ] T004 [P] Add more routes in `src/routes.py`\n";
    let d = lints(text);
    assert_eq!(
        messages(&d),
        ["8: `T004` and `T003` (line 7) may run side by side and both edit `src/routes.py`"]
    );
}

#[test]
fn a_parallel_group_whose_tasks_depend_on_each_other_is_flagged() {
    let text = "# Plan\n\n## Build\n\n### Models\n<!-- parallel: true -->\n\n- [ ] Create the user model <!-- id: user -->\n- [ ] Create the session model <!-- id: session; after: user -->\n\n## Ship\n\n- [ ] Release it\n";
    let d = lints(text);
    assert_eq!(
        messages(&d),
        ["5: group `Models` is marked `parallel: true` but `session` waits for `user`"]
    );
}

#[test]
fn empty_tasks_are_flagged() {
    let text = "# Tasks\n\n## Phase 1: Setup\n\n- [ ] T001 [P]\n- [ ] T002 Real work\n";
    assert_eq!(messages(&lints(text)), ["5: task `T001` is empty"]);
}

#[test]
fn checks_are_not_run_and_not_warned_about_and_a_hint_can_run_them() {
    let text = "# Release\n\n- [ ] read the design first\n\n## Wave 1\n\n- [ ] Build it\n\n## Wave 2\n\n- [ ] Ship it\n\n## Validation Checklist\n\n- [ ] All tests pass\n- [ ] Docs updated\n";
    let doc = Document::parse(text, &ParseOptions::with_path("tasks.md")).expect("parses");
    assert_eq!(messages(&check_document(&doc)), Vec::<String>::new());
    let plan = Plan::build(&doc, &PlanOptions::default()).expect("plans");
    let not_work: Vec<&str> = plan
        .excluded
        .iter()
        .filter(|e| e.reason == "not work")
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(not_work.len(), 2, "{:?}", plan.excluded);
    // The task under the title runs first, in a wave of its own.
    assert_eq!(plan.nodes.len(), 3);
    assert_eq!(doc.tasks[plan.nodes[0].task].text, "read the design first");
    // `skip: false` under the heading says they are work after all.
    let fixed = text.replace(
        "## Validation Checklist\n",
        "## Validation Checklist\n<!-- skip: false -->\n",
    );
    let doc = Document::parse(&fixed, &ParseOptions::with_path("tasks.md")).expect("parses");
    let plan = Plan::build(&doc, &PlanOptions::default()).expect("plans");
    assert_eq!(plan.nodes.len(), 5);
}

#[test]
fn a_section_called_implementation_checklist_is_work_and_reading_one_file_is_no_conflict() {
    // The shape of hve-core's task planner output: every task points at a
    // line range of one details file, to read.
    let text = "# Plan\n\n## Implementation Checklist\n\n### [ ] Phase 1: Setup\n<!-- parallelizable: true -->\n\n- [ ] Task 1.1: Add the config loader\n  - Details: .copilot-tracking/details/20250101-auth-details.md (Lines 10-25)\n- [ ] Task 1.2: Add the token cache\n  - Details: .copilot-tracking/details/20250101-auth-details.md (Lines 26-40)\n- [ ] Task 1.3: Document it, see 20250101-auth-details.md\n\n### [ ] Phase 2: Wire\n\n- [ ] Task 2.1: Wire them together\n";
    let doc = Document::parse(text, &ParseOptions::with_path("tasks.md")).expect("parses");
    let plan = Plan::build(&doc, &PlanOptions::default()).expect("plans");
    assert_eq!(plan.nodes.len(), 4, "{:?}", plan.excluded);
    assert_eq!(messages(&check(&doc, &plan)), Vec::<String>::new());
    // The heading's own box is no part of the wave's title.
    assert_eq!(doc.waves[0].title, "Phase 1: Setup");
}

#[test]
fn a_file_without_checkboxes_says_so() {
    let doc = Document::parse("# Notes\n\nJust prose.\n", &ParseOptions::with_path("t.md"))
        .expect("parses");
    assert_eq!(
        messages(&check_document(&doc)),
        ["1: the file has no checkboxes, so there is nothing to run"]
    );
    let plan = Plan::build(&doc, &PlanOptions::default()).expect("plans");
    let text = batch_core::plan::render(&doc, &plan, batch_core::plan::PlanFormat::Text);
    assert!(
        text.starts_with("t.md: no checkboxes, so nothing to run"),
        "{text}"
    );
    assert!(!text.contains("wave 1"), "{text}");
}
