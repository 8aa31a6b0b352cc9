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
            .ends_with("may run side by side and both name `src/models.py`"),
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
        ["8: `T004` and `T003` (line 7) may run side by side and both name `src/routes.py`"]
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
fn checklists_and_stray_checkboxes_suggest_a_skip_hint() {
    let text = "# Release\n\n- [ ] read the design first\n\n## Wave 1\n\n- [ ] Build it\n\n## Wave 2\n\n- [ ] Ship it\n\n## Validation Checklist\n\n- [ ] All tests pass\n- [ ] Docs updated\n";
    let doc = Document::parse(text, &ParseOptions::with_path("tasks.md")).expect("parses");
    let d = check_document(&doc);
    let m = messages(&d);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(
        m[0].starts_with("3: a checkbox outside any wave is not run"),
        "{m:?}"
    );
    assert!(
        m[1].starts_with("13: section `Validation Checklist` looks like a checklist"),
        "{m:?}"
    );
    for x in &d {
        assert!(x.help.as_deref().unwrap_or_default().contains("skip: true"));
    }
    // With the hint the user is told to write, the warning goes away.
    let fixed = text.replace(
        "## Validation Checklist\n",
        "## Validation Checklist\n<!-- skip: true -->\n",
    );
    let doc = Document::parse(&fixed, &ParseOptions::with_path("tasks.md")).expect("parses");
    assert_eq!(check_document(&doc).len(), 1);
}
