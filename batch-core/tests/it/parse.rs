//! Parsing task files as users write them: each dialect, each hint placement,
//! and the file shapes that break naive parsers (BOM, front matter, CRLF,
//! deep nesting, huge lines, invalid UTF-8).

use std::time::Duration;

use batch_core::doc::{Dialect, Document, IdSource, Parallelism, ParseOptions};

fn parse(text: &str) -> Document {
    match Document::parse(text, &ParseOptions::with_path("task.md")) {
        Ok(d) => d,
        Err(e) => panic!("parse failed:\n{e}"),
    }
}

fn parse_err(text: &str) -> batch_core::Diagnostics {
    match Document::parse(text, &ParseOptions::with_path("task.md")) {
        Ok(d) => panic!("expected an error; parsed {} tasks", d.tasks.len()),
        Err(e) => e,
    }
}

fn ids(doc: &Document) -> Vec<&str> {
    doc.tasks.iter().map(|t| t.id.as_str()).collect()
}

/// Flipping the middle byte of task `i`'s marker changes one byte and checks
/// exactly that task, keeping every id.
fn assert_flip_checks(text: &str, doc: &Document, i: usize) {
    let t = &doc.tasks[i];
    assert_eq!(
        &text.as_bytes()[t.marker.clone()],
        b"[ ]",
        "task {} marker",
        t.id
    );
    let mut bytes = text.as_bytes().to_vec();
    bytes[t.marker.start + 1] = b'x';
    let again =
        Document::parse_bytes(&bytes, &ParseOptions::default()).expect("flipped file parses");
    assert_eq!(ids(&again), ids(doc));
    for (a, b) in doc.tasks.iter().zip(&again.tasks) {
        assert_eq!(b.checked, a.checked || a.index == i, "task {}", a.id);
    }
}

const WAVES: &str = "\
# Ship the login page

The app is in `web/`; run `npm test` before you finish.

<!-- jobs: 3 -->

## Wave 1: Foundations

- [x] Create the `users` table
- [ ] Add the session store
  Uses Redis; see `docs/sessions.md`.

### Backend ✅ COMPLETE
<!-- parallel: false -->

- [ ] Add `POST /login`
  - validate the body
  - return a cookie
- [ ] Add `POST /logout` <!-- id: logout; retries: 1 -->

### Frontend

- [ ] Build the login form
  <!-- resource: browser; timeout: 10m -->
- [ ] Style it

## Wave 2: Polish

<!-- after: Wave 1: Foundations -->

- [ ] Write the end-to-end test
";

#[test]
fn a_waves_file_has_waves_groups_modules_and_hints() {
    let doc = parse(WAVES);
    assert_eq!(doc.dialect, Dialect::Waves);
    assert_eq!(doc.wave_level, 2);
    assert_eq!(doc.hints.jobs, Some(3));
    assert!(doc.preamble.starts_with("# Ship the login page"));
    assert!(doc.preamble.contains("npm test"));
    let waves: Vec<_> = doc.waves.iter().map(|w| w.title.as_str()).collect();
    assert_eq!(waves, ["Wave 1: Foundations", "Wave 2: Polish"]);
    let w1 = &doc.waves[0];
    let groups: Vec<_> = w1.groups.iter().map(|&g| &doc.groups[g]).collect();
    assert_eq!(groups.len(), 3, "lead group, Backend, Frontend");
    assert_eq!(groups[0].section, None);
    assert_eq!(groups[0].tasks.len(), 2);
    assert_eq!(groups[1].module.as_deref(), Some("backend"));
    assert_eq!(groups[1].parallel, Parallelism::Sequential);
    assert!(groups[1].parallel_from_hint);
    assert_eq!(groups[2].module.as_deref(), Some("frontend"));
    assert_eq!(groups[2].parallel, Parallelism::Unbounded);
    let w2_section = doc.waves[1].section.unwrap();
    assert_eq!(
        doc.sections[w2_section].hints.after,
        ["Wave 1: Foundations"]
    );

    let login = &doc.tasks[2];
    assert_eq!(login.text, "Add `POST /login`");
    assert_eq!(login.details, "- validate the body\n- return a cookie");
    assert_eq!(login.id, "foundations/backend/add-post-login");
    assert_eq!(login.id_source, IdSource::Slug);
    let logout = doc.task_by_id("logout").unwrap();
    assert_eq!(logout.text, "Add `POST /logout`");
    assert_eq!(logout.hints.retries, Some(1));
    let form = &doc.tasks[4];
    assert_eq!(form.hints.resource, ["browser"]);
    assert_eq!(form.hints.timeout, Some(Duration::from_secs(600)));
    assert_eq!(form.details, "", "the hint is not part of the details");
    assert_eq!(
        doc.tasks[1].details, "",
        "a continuation line is part of the text"
    );
    assert_eq!(
        doc.tasks[1].text,
        "Add the session store\nUses Redis; see `docs/sessions.md`."
    );
    assert!(doc.tasks[0].checked);
    assert_eq!(
        doc.section_path(2),
        [
            "Ship the login page",
            "Wave 1: Foundations",
            "Backend ✅ COMPLETE"
        ]
    );
    assert_flip_checks(WAVES, &doc, 3);
}

const SPEC_KIT: &str = "\
---

description: \"Task list\"
---

# Tasks: Photo albums

## Format: `[ID] [P?] [Story] Description`

- **[P]**: Can run in parallel

## Phase 1: Setup

- [x] T001 Create project structure
- [ ] T002 [P] Configure linting
- [ ] T003 [P] Configure formatting

## Phase 2: User Story 1 - Albums (Priority: P1) 🎯 MVP

### Tests for User Story 1

- [ ] T004 [P] [US1] Contract test in tests/contract/test_albums.py
- [ ] T005 [US1] Implement AlbumService (depends on T002-T004)

## Notes

- [P] tasks = different files
";

#[test]
fn a_spec_kit_file_reads_ids_markers_stories_and_dependencies() {
    let doc = parse(SPEC_KIT);
    assert_eq!(doc.dialect, Dialect::SpecKit);
    assert!(
        doc.dialect_reason
            .contains("5 of 5 tasks have T001-style ids"),
        "{}",
        doc.dialect_reason
    );
    assert_eq!(
        doc.front_matter.as_deref(),
        Some("\ndescription: \"Task list\"\n")
    );
    assert_eq!(
        doc.sections[0].title, "Tasks: Photo albums",
        "front matter is not a heading"
    );
    assert_eq!(ids(&doc), ["T001", "T002", "T003", "T004", "T005"]);
    let waves: Vec<_> = doc.waves.iter().map(|w| w.title.as_str()).collect();
    assert_eq!(
        waves,
        [
            "Phase 1: Setup",
            "Phase 2: User Story 1 - Albums (Priority: P1) 🎯 MVP"
        ]
    );
    assert!(
        doc.preamble.contains("Can run in parallel"),
        "a legend without tasks is preamble"
    );
    assert!(doc.tasks[1].parallel_marker && doc.tasks[2].parallel_marker);
    assert!(!doc.tasks[0].parallel_marker);
    assert_eq!(doc.tasks[3].story(), Some("US1"));
    assert_eq!(doc.tasks[4].depends_on(), ["T002", "T003", "T004"]);
    assert_eq!(doc.tasks[1].text, "[P] Configure linting");
    for g in &doc.groups {
        assert_eq!(g.parallel, Parallelism::Sequential);
        assert!(!g.parallel_from_hint);
    }
    let g = &doc.groups[doc.tasks[3].group.unwrap()];
    assert_eq!(g.module.as_deref(), Some("tests for user story 1"));
    assert_flip_checks(SPEC_KIT, &doc, 4);
}

const KIRO: &str = "\
# Implementation Plan

- [x] 1. Set up the API client
- [x] 1.1 Create apiClient service
  - Implement HTTP client wrapper
  - _Requirements: 7.1, 7.2_

- [ ]* 1.2 Write property tests for the client
  - **Property 1: Round trip**

- [ ] 2. Warband list
  - [ ] 2.1 (P) List component
    - _Requirements: 1.1_
  - [ ] 2.2 (P) List item component
  - [ ] 2.3 Wire them
    - _Depends: 2.1, 2.2_
";

#[test]
fn a_kiro_file_reads_numbers_optional_tasks_and_parents() {
    let doc = parse(KIRO);
    assert_eq!(doc.dialect, Dialect::Kiro);
    assert_eq!(ids(&doc), ["1", "1.1", "1.2", "2", "2.1", "2.2", "2.3"]);
    assert!(doc.tasks.iter().all(|t| t.id_source == IdSource::Number));
    assert_eq!(doc.tasks[0].children(), [1, 2], "children by number");
    assert_eq!(doc.tasks[3].children(), [4, 5, 6], "children by nesting");
    let opt = &doc.tasks[2];
    assert!(opt.optional);
    assert_eq!(opt.text, "Write property tests for the client");
    assert_eq!(opt.details, "- **Property 1: Round trip**");
    assert_eq!(&KIRO[opt.marker.clone()], "[ ]");
    assert!(doc.tasks[4].parallel_marker && doc.tasks[5].parallel_marker);
    assert!(!doc.tasks[6].parallel_marker);
    assert_eq!(doc.tasks[6].depends_on(), ["2.1", "2.2"]);
    assert_eq!(
        doc.tasks[1].details,
        "- Implement HTTP client wrapper\n- _Requirements: 7.1, 7.2_"
    );
    assert_eq!(doc.groups.len(), 1);
    assert_eq!(doc.groups[0].parallel, Parallelism::Sequential);
    assert_flip_checks(KIRO, &doc, 2);
    assert_flip_checks(KIRO, &doc, 6);
}

#[test]
fn a_bom_is_skipped_and_marker_offsets_count_it() {
    let text = "\u{feff}# Tasks\n\n- [ ] one\n- [ ] two\n";
    let doc = parse(text);
    assert!(doc.bom);
    assert_eq!(
        doc.sections.len(),
        1,
        "the title is a heading, not a paragraph"
    );
    assert_eq!(doc.tasks[0].marker, 14..17);
    assert_eq!(doc.tasks[0].pos.line, 3);
    assert_eq!(doc.sections[0].pos.col, 1);
    assert_flip_checks(text, &doc, 1);
}

#[test]
fn crlf_files_parse_with_exact_markers_and_clean_text() {
    let text = "# A\r\n\r\n- [ ] one\r\n  - detail\r\n- [x] two\r\n## B\r\n- [ ] three\r\n";
    let doc = parse(text);
    assert!(doc.crlf);
    assert_eq!(doc.tasks[0].text, "one");
    assert_eq!(doc.tasks[0].details, "- detail");
    assert!(
        !doc.tasks
            .iter()
            .any(|t| t.text.contains('\r') || t.details.contains('\r'))
    );
    assert_flip_checks(text, &doc, 0);
    assert_flip_checks(text, &doc, 2);
}

#[test]
fn loose_lists_keep_markers_exact() {
    let text = "- [ ] one\n\n  more about one\n\n- [ ] two\n\n\n\n\n  - detail after blank lines\n";
    let doc = parse(text);
    assert_eq!(doc.tasks.len(), 2);
    assert_eq!(doc.tasks[0].details, "more about one");
    assert_eq!(doc.tasks[1].details, "- detail after blank lines");
    assert_flip_checks(text, &doc, 0);
    assert_flip_checks(text, &doc, 1);
}

#[test]
fn checkboxes_in_code_html_and_comments_are_not_tasks() {
    let text = "# T\n\n```markdown\n- [ ] fenced\n```\n\n    - [ ] indented code\n\n<details>\n- [ ] in html\n</details>\n\n<!--\n- [ ] commented\n-->\n\n- [ ] the only task\n";
    let doc = parse(text);
    assert_eq!(doc.tasks.len(), 1);
    assert_eq!(doc.tasks[0].text, "the only task");
}

#[test]
fn a_hint_before_the_first_heading_applies_to_the_document() {
    let doc = parse("<!-- cross-wave: true; wave-level: 2 -->\n# T\n## A\n- [ ] a\n");
    assert_eq!(doc.hints.cross_wave, Some(true));
    assert_eq!(doc.wave_level, 2);
}

#[test]
fn a_hint_under_a_heading_applies_to_the_section() {
    let doc = parse(
        "## A\n\n<!-- parallelizable: 2 -->\n<!-- module: api -->\n\n- [ ] a\n## B\n- [ ] b\n",
    );
    assert_eq!(doc.sections[0].hints.parallel, Some(Parallelism::Max(2)));
    assert_eq!(doc.sections[0].hints.module.as_deref(), Some("api"));
    assert_eq!(doc.groups[0].parallel, Parallelism::Max(2));
    assert_eq!(
        doc.groups[0].module.as_deref(),
        Some("api"),
        "a wave's module names its lead group"
    );
}

#[test]
fn a_hint_indented_in_a_list_item_applies_to_the_task() {
    let doc = parse(
        "- [ ] a\n  <!-- id: a1; after: b1; verify: cargo test -->\n- [ ] b\n  - note\n    <!-- id: b1 -->\n",
    );
    assert_eq!(ids(&doc), ["a1", "b1"]);
    assert_eq!(doc.tasks[0].hints.after, ["b1"]);
    assert_eq!(doc.tasks[0].hints.verify.as_deref(), Some("cargo test"));
    assert_eq!(doc.tasks[1].details, "- note");
}

#[test]
fn a_hint_inline_after_the_text_applies_to_the_task() {
    let doc = parse("- [ ] T001 Build it <!-- id: build; skip: true -->\n");
    assert_eq!(doc.tasks[0].id, "build");
    assert!(doc.tasks[0].skip);
    assert_eq!(doc.tasks[0].text, "Build it");
}

#[test]
fn an_unindented_hint_after_a_list_is_an_error() {
    let e = parse_err("## A\n- [ ] a\n<!-- id: a -->\n");
    assert_eq!(e.error_count(), 1);
    let d = &e.0[0];
    assert_eq!((d.line, d.col), (3, 1));
    assert!(d.message.contains("applies to nothing"), "{d}");
    assert_eq!(d.path.as_deref(), Some(std::path::Path::new("task.md")));
    assert_eq!(d.source_line, "<!-- id: a -->");
}

#[test]
fn other_comments_are_left_alone() {
    let doc = parse(
        "<!-- markdownlint-disable-file -->\n# T\n<!-- Note: 10.2 and 10.3 are follow-ups -->\n- [ ] a <!-- TODO: split -->\n",
    );
    assert_eq!(doc.tasks[0].text, "a <!-- TODO: split -->");
}

#[test]
fn hint_errors_name_the_key_the_place_and_the_fix() {
    let e = parse_err(
        "# T\n## A\n<!-- paralel: false -->\n- [ ] a\n  <!-- timeout: soon; jobs: 2 -->\n",
    );
    assert_eq!(e.error_count(), 3);
    let shown = e.to_string();
    assert!(shown.contains("task.md:3:6"), "{shown}");
    assert!(shown.contains("did you mean `parallel`?"), "{shown}");
    assert!(
        shown.contains("bad value `soon` for hint `timeout`"),
        "{shown}"
    );
    assert!(shown.contains("task.md:5:8"), "{shown}");
    assert!(shown.contains("task.md:5:23"), "{shown}");
    assert!(shown.contains("before the first heading"), "{shown}");
    assert!(e.0.iter().all(|d| !d.source_line.is_empty()));
}

#[test]
fn duplicate_explicit_ids_are_an_error_naming_both_lines() {
    let e = parse_err("- [ ] a <!-- id: x -->\n- [ ] b\n- [ ] c <!-- id: x -->\n");
    assert_eq!(e.error_count(), 1);
    assert_eq!(e.0[0].line, 3);
    assert!(e.0[0].message.contains("`x` (also on line 1)"));
}

#[test]
fn slug_ids_stay_stable_when_unrelated_lines_change() {
    let before = parse("# T\n## A\n- [ ] one\n- [ ] two\n## B\n- [ ] three\n");
    let after = parse(
        "# T\nNew intro.\n## A\n- [ ] zero\n- [ ] one\n  - new detail\n- [ ] two\n## B\n- [x] three\n",
    );
    for id in ids(&before) {
        assert!(after.task_by_id(id).is_some(), "{id} lost");
    }
}

#[test]
fn an_empty_file_parses_to_no_tasks() {
    for text in ["", "\n\n", "   ", "\u{feff}"] {
        let doc = parse(text);
        assert!(doc.tasks.is_empty());
        assert_eq!(doc.waves.len(), 1);
    }
}

#[test]
fn invalid_utf8_is_an_error_at_its_line_and_column() {
    let e = Document::parse_bytes(
        b"# T\n- [ ] ok\n- [ ] b\xffd\n",
        &ParseOptions::with_path("t.md"),
    )
    .unwrap_err();
    assert_eq!((e.0[0].line, e.0[0].col), (3, 8));
    assert!(e.to_string().contains("t.md:3:8"));
    assert_eq!(e.0[0].source_line, "- [ ] b\u{fffd}d");
}

#[test]
fn nesting_800_deep_parses_on_a_small_stack() {
    let mut lists = String::new();
    for depth in 0..800 {
        lists.push_str(&"  ".repeat(depth));
        lists.push_str(&format!("- [ ] level {depth}\n"));
    }
    let quotes = format!("{} - [ ] quoted\n", ">".repeat(800));
    let result = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let a = Document::parse(&lists, &ParseOptions::default()).map(|d| d.tasks.len());
            let b = Document::parse(&quotes, &ParseOptions::default()).map(|d| d.tasks.len());
            (a, b)
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
    let (a, b) = result;
    let a = a.expect("parses");
    assert!(a >= 1, "nested tasks found");
    assert_eq!(b.expect("parses"), 1);
}

#[test]
fn nested_tasks_chain_parents() {
    let mut text = String::new();
    for depth in 0..50 {
        text.push_str(&"  ".repeat(depth));
        text.push_str(&format!("- [ ] level {depth}\n"));
    }
    let doc = parse(&text);
    assert_eq!(doc.tasks.len(), 50);
    for t in &doc.tasks[1..] {
        assert_eq!(t.parent, Some(t.index - 1));
    }
    assert_eq!(doc.leaves().count(), 1);
}

#[test]
fn a_100_kb_heading_line_parses() {
    let text = format!(
        "# {}\n- [ ] a\n## {}\n- [ ] b\n",
        "x".repeat(100_000),
        "y ".repeat(50_000)
    );
    let doc = parse(&text);
    assert_eq!(doc.tasks.len(), 2);
    assert_eq!(doc.sections[0].title.len(), 100_000);
}

/// How long it takes is the `parse_plan` bench's business (100,000 tasks).
#[test]
fn a_10_mb_file_parses_every_task() {
    let mut text = String::with_capacity(10_500_000);
    let mut i = 0;
    while text.len() < 10_000_000 {
        if i % 500 == 0 {
            text.push_str(&format!("## Wave {}\n\n", i / 500));
        }
        text.push_str(&format!(
            "- [ ] task number {i} with some words to make the line longer\n"
        ));
        text.push_str("  - a detail line\n");
        i += 1;
    }
    let doc = parse(&text);
    assert_eq!(doc.tasks.len(), i);
    assert_eq!(
        doc.tasks[i - 1].text,
        format!(
            "task number {} with some words to make the line longer",
            i - 1
        )
    );
    assert_eq!(doc.tasks[i - 1].details, "- a detail line");
}

#[test]
fn outline_of_the_waves_example() {
    insta::assert_snapshot!("waves_outline", crate::outline::outline(&parse(WAVES)));
}

#[test]
fn outline_of_the_spec_kit_example() {
    insta::assert_snapshot!(
        "spec_kit_outline",
        crate::outline::outline(&parse(SPEC_KIT))
    );
}

#[test]
fn outline_of_the_kiro_example() {
    insta::assert_snapshot!("kiro_outline", crate::outline::outline(&parse(KIRO)));
}

#[test]
fn ids_survive_an_agent_decorating_a_heading_as_complete() {
    let before =
        parse("# T\n## Phase 1: Setup\n- [ ] Install deps\n## Phase 2: Build\n- [ ] Compile\n");
    let after = parse(
        "# T\n## Phase 1: Setup ✅ COMPLETE\n- [x] Install deps\n## Phase 2: Build (DONE)\n- [x] Compile\n",
    );
    assert_eq!(ids(&before), ids(&after));
    assert_eq!(ids(&before), ["setup/install-deps", "build/compile"]);
}

#[test]
fn a_flood_of_errors_is_capped_and_counted() {
    let mut text = String::from("# A\n- [ ] t\n\ntext\n\n");
    for _ in 0..1000 {
        text.push_str("<!-- parallel: false -->\n\npara\n\n");
    }
    let e = parse_err(&text);
    assert_eq!(e.error_count(), 201);
    let last = e.0.iter().rfind(|d| d.is_error()).unwrap();
    assert!(last.message.contains("800 more errors"), "{last}");
}

/// Inputs built to be slow parse to the right result, with their errors
/// capped. How long they take is measured by the `pathological` group of
/// the `parse_plan` bench (no timed unit tests).
#[test]
fn pathological_inputs_parse_with_their_errors_capped() {
    let no_tasks = [
        "[".repeat(1_000_000),
        "- ".repeat(200_000),
        "*a **b ".repeat(100_000),
        format!("{}x\n", "> ".repeat(100_000)),
        "<!--".repeat(200_000),
        "`".repeat(500_000),
    ];
    for text in no_tasks {
        let doc = Document::parse(&text, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("{:?}…: {e}", &text[..20]));
        assert!(doc.tasks.is_empty(), "{:?}…", &text[..20]);
    }
    let capped = [
        (
            "<!-- id: a -->".repeat(100_000),
            "hint `id` cannot stand in a document hint",
        ),
        (
            "- [ ] x <!-- paralel: 1 -->\n".repeat(5_000),
            "unknown hint key `paralel`",
        ),
    ];
    for (text, first) in capped {
        let e = parse_err(&text);
        assert_eq!(e.error_count(), 201, "{:?}…", &text[..20]);
        assert!(e.0[0].message.contains(first), "{}", e.0[0]);
        let last = e.0.iter().rfind(|d| d.is_error()).expect("errors");
        assert!(last.message.contains("more errors"), "{last}");
    }
}

#[test]
fn an_empty_task_is_reported_once_by_check() {
    let text = "# F\n## Wave 1\n### a\n- [ ]\n- [ ] x\n## Wave 2\n### a\n- [ ] y\n";
    let doc = parse(text);
    // What `mdbatch check` prints: the parse warnings, then the document lints.
    let mut all = doc.warnings.clone();
    all.extend(batch_core::plan::check_document(&doc));
    let on_line_4: Vec<String> = all
        .iter()
        .filter(|d| d.line == 4)
        .map(|d| d.message.clone())
        .collect();
    assert_eq!(on_line_4.len(), 1, "{on_line_4:?}");
    assert!(on_line_4[0].contains("is empty"), "{on_line_4:?}");
}

#[test]
fn hint_comments_are_left_out_of_the_preamble_given_to_subagents() {
    let doc = parse(
        "<!-- jobs: 6; cross-wave: true -->\n# Shop\n<!-- verify: npm test -->\n\nUse TypeScript. \
         <!-- a note kept for the agent -->\n\n## A\n- [ ] a\n## B\n- [ ] b\n",
    );
    assert_eq!(doc.hints.jobs, Some(6));
    assert_eq!(doc.hints.cross_wave, Some(true));
    assert_eq!(
        doc.preamble,
        "# Shop\n\nUse TypeScript. <!-- a note kept for the agent -->"
    );
}

const ONE_WAVE: &str = "# Billing\n\n## Wave 1\n### api\n- [ ] Add invoice type\n- [ ] Add route\n";

#[test]
fn a_title_over_a_single_wave_is_not_the_wave_and_its_groups_are_modules() {
    let doc = parse(ONE_WAVE);
    assert_eq!(doc.wave_level, 2);
    let waves: Vec<_> = doc.waves.iter().map(|w| w.title.as_str()).collect();
    assert_eq!(waves, ["Wave 1"]);
    let g = &doc.groups[doc.tasks[0].group.expect("in a group")];
    assert_eq!(g.title, "api");
    assert_eq!(g.module.as_deref(), Some("api"));
    assert_eq!(doc.preamble, "# Billing");
    assert_eq!(
        ids(&doc),
        ["wave-1/api/add-invoice-type", "wave-1/api/add-route"]
    );
}

#[test]
fn ids_stay_the_same_when_a_second_wave_is_added() {
    let one = parse(ONE_WAVE);
    let two = parse(&format!("{ONE_WAVE}\n## Wave 2\n### api\n- [ ] Add POST\n"));
    assert_eq!(two.waves.len(), 2);
    assert_eq!(ids(&two)[..2], ids(&one)[..]);
    assert_eq!(ids(&two)[2], "wave-2/api/add-post");
}

#[test]
fn ids_do_not_depend_on_the_wave_level() {
    let text = "# Billing\n## Wave 1\n### api\n- [ ] Add route\n### web\n- [ ] Add page\n";
    let detected = parse(text);
    for level in 1..=3 {
        let mut o = ParseOptions::with_path("task.md");
        o.wave_level = Some(level);
        let d = Document::parse(text, &o).expect("parses");
        assert_eq!(d.wave_level, level);
        assert_eq!(ids(&d), ids(&detected), "wave level {level}");
    }
    assert_eq!(
        ids(&detected),
        ["wave-1/api/add-route", "wave-1/web/add-page"]
    );
}
