//! Every real task file in `../shared/corpus` parses without error, with the
//! dialect a user of the tool that wrote it would expect.

use std::path::{Path, PathBuf};

use batch_core::{Dialect, Document, ParseOptions};

/// `../shared/corpus` beside the repository, or `$MDBATCH_CORPUS` (for
/// checkouts that live elsewhere, such as git worktrees).
pub(crate) fn corpus_dir() -> PathBuf {
    match std::env::var_os("MDBATCH_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus")),
    }
}

/// The corpus files (`*.md`), or `None` (with the reason printed) when absent.
pub(crate) fn corpus_files() -> Option<Vec<PathBuf>> {
    let dir = corpus_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => {
            println!(
                "skipping: corpus folder {} is not readable: {e}",
                dir.display()
            );
            return None;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    if files.is_empty() {
        println!("skipping: no .md files in {}", dir.display());
        return None;
    }
    Some(files)
}

fn parse(path: &Path) -> Document {
    match Document::read(path, &ParseOptions::default()) {
        Ok(d) => d,
        Err(e) => panic!("{} does not parse:\n{e}", path.display()),
    }
}

/// The dialect each corpus file must be detected as, by a fragment of its name.
fn expected_dialect(name: &str) -> Dialect {
    if name.contains("spec-kit") || name.contains("specs__00") || name.contains(".specify") {
        Dialect::SpecKit
    } else if name.contains(".kiro") || name.contains("cc-sdd") || name.contains("OpenSpec") {
        Dialect::Kiro
    } else {
        Dialect::Waves
    }
}

#[test]
fn every_corpus_file_parses_with_the_dialect_of_its_tool() {
    let Some(files) = corpus_files() else { return };
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let doc = parse(&path);
        let want = expected_dialect(&name);
        assert_eq!(
            doc.dialect, want,
            "{name}: detected {} ({}), expected {want}",
            doc.dialect, doc.dialect_reason
        );
        // Every marker is exactly the three bytes of a box in the file.
        let bytes = std::fs::read(&path).unwrap();
        for t in &doc.tasks {
            let m = &bytes[t.marker.clone()];
            assert!(
                m == b"[ ]" || m == b"[x]" || m == b"[X]",
                "{name}: task {} marker {:?} is {:?}",
                t.id,
                t.marker,
                String::from_utf8_lossy(m)
            );
            assert_eq!(m[1] != b' ', t.checked, "{name}: task {}", t.id);
        }
        // Ids are unique.
        let mut ids: Vec<&str> = doc.tasks.iter().map(|t| t.id.as_str()).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "{name}: duplicate ids");
        println!("== {name}\n{}", crate::outline::outline(&doc));
    }
}

/// cc-sdd writes an optional task as `- [ ] 7.9* (P) …` as well as `- [ ]* 7.9`:
/// either way it is optional, keeps its number as id, and is left out of a plan.
#[test]
fn cc_sdd_starred_number_is_an_optional_task() {
    let Some(files) = corpus_files() else { return };
    let Some(path) = files
        .iter()
        .find(|p| p.to_string_lossy().contains("cc-sdd"))
    else {
        println!(
            "skipped: the cc-sdd corpus file is not in {}",
            corpus_dir().display()
        );
        return;
    };
    let doc = parse(path);
    let task = doc
        .task_by_id("7.9")
        .expect("task 7.9 keeps its number as id");
    assert!(task.optional, "7.9* is optional");
    assert!(
        !task.text.contains('*'),
        "the star is not part of the text: {}",
        task.text
    );
    let plan = batch_core::Plan::build(&doc, &batch_core::PlanOptions::default()).unwrap();
    assert!(
        plan.node_by_id(&doc, "7.9").is_none(),
        "optional tasks are not planned by default"
    );
}

/// The task files of `batch-core/tests/corpus/`: one per shape authors write
/// (see its `SOURCES.tsv` for where each shape was seen), each planned and
/// checked against the plan a careful reader draws: the dialect, the tasks
/// run, the waves, and the order and the side-by-side pairs that matter.
mod shapes {
    use std::path::PathBuf;

    use batch_core::{Dialect, Document, ParseOptions, Plan, PlanOptions};

    struct Planned {
        name: &'static str,
        doc: Document,
        plan: Plan,
    }

    fn dir() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus"))
    }

    fn load(name: &'static str, cross_wave: bool) -> Planned {
        let path = dir().join(name);
        let doc = Document::read(&path, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("{name} does not parse:\n{e}"));
        let mut o = PlanOptions::default();
        o.cross_wave = Some(cross_wave);
        let plan = Plan::build(&doc, &o).unwrap_or_else(|e| panic!("{name} does not plan:\n{e}"));
        Planned { name, doc, plan }
    }

    impl Planned {
        /// The id of the task whose text (or id) starts with `key`.
        fn id(&self, key: &str) -> String {
            self.doc
                .tasks
                .iter()
                .find(|t| t.id == key || t.text.starts_with(key))
                .map(|t| t.id.clone())
                .unwrap_or_else(|| panic!("{}: no task {key:?}", self.name))
        }

        fn node(&self, key: &str) -> usize {
            let id = self.id(key);
            self.plan
                .node_by_id(&self.doc, &id)
                .unwrap_or_else(|| panic!("{}: {key:?} ({id}) is not run", self.name))
                .index
        }

        /// Tasks run, in the plan's order, by id.
        fn run(&self) -> Vec<String> {
            self.plan
                .nodes
                .iter()
                .map(|n| n.id(&self.doc).to_string())
                .collect()
        }

        /// Waves that hold work.
        fn waves(&self) -> usize {
            let mut w: Vec<usize> = self.plan.nodes.iter().map(|n| n.wave).collect();
            w.dedup();
            w.len()
        }

        /// `later` waits, directly or not, for `earlier`.
        fn after(&self, later: &str, earlier: &str) -> bool {
            self.plan.depends_on(self.node(later), self.node(earlier))
        }

        /// Neither waits for the other.
        fn side_by_side(&self, a: &str, b: &str) -> bool {
            !self.after(a, b) && !self.after(b, a)
        }

        fn not_run(&self, key: &str) -> String {
            let id = self.id(key);
            self.plan
                .excluded
                .iter()
                .find(|e| e.id == id)
                .map(|e| e.reason.clone())
                .unwrap_or_else(|| panic!("{}: {key:?} is run", self.name))
        }

        fn text(&self) -> String {
            batch_core::plan::render(&self.doc, &self.plan, batch_core::plan::PlanFormat::Text)
        }
    }

    #[test]
    fn every_file_is_listed_in_sources_with_a_licence() {
        let sources =
            std::fs::read_to_string(dir().join("SOURCES.tsv")).expect("SOURCES.tsv exists");
        let mut listed: Vec<&str> = sources
            .lines()
            .skip(1)
            .filter_map(|l| l.split('\t').next())
            .collect();
        listed.sort_unstable();
        let mut files: Vec<String> = std::fs::read_dir(dir())
            .expect("corpus folder")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".md"))
            .collect();
        files.sort();
        assert_eq!(listed, files);
        for line in sources.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 6, "{line}");
            assert!(!cols[5].is_empty(), "licence of {}", cols[0]);
        }
    }

    #[test]
    fn kiro_task_with_its_own_bullets_runs_and_its_subtask_follows() {
        let p = load("kiro-task-with-own-bullets.md", false);
        assert_eq!(p.doc.dialect, Dialect::Kiro);
        assert_eq!(p.run(), ["2", "2.1", "3.1", "3.3", "4"]);
        assert!(p.after("2.1", "2"), "the tests come after the service");
        assert_eq!(p.not_run("3"), "parent", "3. has no work of its own");
        assert_eq!(p.not_run("3.2"), "optional");
        assert_eq!(p.not_run("1"), "done");
    }

    #[test]
    fn a_p_run_is_not_broken_by_an_unmarked_grouping_task() {
        let p = load("cc-sdd-p-under-grouping-task.md", false);
        assert_eq!(p.doc.dialect, Dialect::Kiro);
        assert_eq!(p.run(), ["1", "2.1", "2.2", "3"]);
        assert!(p.side_by_side("1", "2.1"));
        assert!(p.side_by_side("2.1", "2.2"));
        assert!(p.after("3", "1") && p.after("3", "2.1") && p.after("3", "2.2"));
    }

    #[test]
    fn bold_spec_kit_ids_are_spec_kit() {
        let p = load("spec-kit-bold-ids.md", false);
        assert_eq!(p.doc.dialect, Dialect::SpecKit);
        assert_eq!(p.run().len(), 7);
        assert_eq!(p.waves(), 2);
        assert!(p.after("T002", "T001"));
        assert!(p.side_by_side("T002", "T003"));
        assert!(p.after("T005", "T004") && p.side_by_side("T005", "T006"));
        assert!(p.after("T007", "T005") && p.after("T007", "T006"));
        assert_eq!(
            p.doc.task_by_id("T004").map(|t| t.story()),
            Some(Some("US1"))
        );
    }

    #[test]
    fn dependencies_under_task_headings_are_followed_and_shown_with_their_line() {
        let p = load("task-headings-with-dependencies.md", false);
        assert_eq!(p.doc.dialect, Dialect::Waves);
        assert_eq!(p.run().len(), 7);
        assert!(p.after("Implement `UserRepository`", "Create the migrations"));
        assert!(p.after("Add `GET /orders`", "Implement `OrderRepository`"));
        assert!(p.after("Build the orders table", "Add `GET /orders`"));
        // Task 10 says it waits for Task 9 only: the two repositories run
        // side by side, and Task 11 does not wait for Task 12.
        assert!(p.side_by_side("Implement `UserRepository`", "Implement `OrderRepository`"));
        let t = p.text();
        assert!(t.contains("dependencies read from the text:"), "{t}");
        assert!(
            t.contains("line 21: Task 11: REST endpoints waits for Task 10"),
            "{t}"
        );
        assert!(t.contains("from: **Dependencies:** Task 10"), "{t}");
    }

    #[test]
    fn an_implementation_order_list_is_the_order() {
        let p = load("implementation-order-section.md", false);
        assert_eq!(p.run().len(), 5);
        assert!(p.after("Stream documents", "Define the index mapping"));
        assert!(p.after("Add the `/search`", "Write the migration"));
        assert!(
            p.side_by_side("Stream documents", "Add the `/search`"),
            "2. Task 2 and Task 3"
        );
        assert!(p.after("Add the search box", "Stream documents"));
        assert!(p.after("Add the search box", "Add the `/search`"));
        assert!(
            p.text()
                .contains("line 22: Task 4 waits for Task 2, Task 3")
        );
    }

    #[test]
    fn story_dependencies_are_honoured_with_cross_wave() {
        let p = load("spec-kit-story-dependencies.md", true);
        assert_eq!(p.doc.dialect, Dialect::SpecKit);
        assert_eq!(p.run().len(), 6);
        // Stories 1 and 2 wait only for the foundation…
        assert!(p.side_by_side("T003", "T004"));
        assert!(p.after("T004", "T002"));
        // …but story 3 "can start after US1, US2".
        assert!(p.after("T005", "T003") && p.after("T005", "T004"));
        assert!(p.text().contains("US3 waits for US1, US2"));
        // Strict waves: one phase after another, as before.
        let strict = load("spec-kit-story-dependencies.md", false);
        assert!(strict.after("T004", "T003"));
    }

    #[test]
    fn numbered_checkboxes_run_in_the_order_of_their_numbers() {
        let p = load("release-runbook-ordered-checkboxes.md", false);
        assert_eq!(p.doc.dialect, Dialect::Waves);
        assert_eq!(p.run().len(), 7);
        let steps = [
            "Create the",
            "Bump",
            "Update",
            "Tag",
            "Push",
            "Merge",
            "Delete",
        ];
        for w in steps.windows(2) {
            assert!(p.after(w[1], w[0]), "{} after {}", w[1], w[0]);
        }
    }

    #[test]
    fn checkboxes_under_numbered_items_run_item_after_item() {
        let p = load("ordered-headings-as-list-items.md", false);
        assert_eq!(p.run().len(), 5);
        assert!(p.side_by_side("Fix the SQL", "Rotate"));
        assert!(p.after("Add input validation", "Fix the SQL"));
        assert!(p.after("Add input validation", "Rotate"));
        assert!(p.after("Move the search", "Add input validation"));
        assert!(p.side_by_side("Move the search", "Add a security"));
    }

    #[test]
    fn a_bmad_story_is_worked_in_order() {
        let p = load("bmad-story.md", false);
        assert_eq!(p.doc.dialect, Dialect::Waves);
        assert_eq!(p.run().len(), 6);
        assert_eq!(p.waves(), 1);
        assert!(p.after("Build `JobGallery.tsx`", "Register the route"));
        assert!(p.after("Embed it", "Build `JobGallery.tsx`"));
        assert!(p.after("Fetch the score", "Embed it"));
        // The acceptance criteria are a numbered list without boxes: nothing to run.
        assert!(
            p.doc
                .tasks
                .iter()
                .all(|t| !t.text.starts_with("The profile screen"))
        );
    }

    #[test]
    fn a_tasks_subtasks_run_in_order_beside_its_siblings() {
        let p = load("waves-parent-with-subtasks.md", false);
        assert_eq!(p.run().len(), 5);
        assert!(p.after("Stream the rows", "Write the CSV"));
        assert!(p.after("Add the endpoint", "Stream the rows"));
        assert!(p.side_by_side("Write the CSV", "Upgrade the HTTP"));
        assert!(p.side_by_side("Add the endpoint", "Upgrade the HTTP"));
        assert_eq!(p.not_run("Add the export endpoint"), "parent");
    }

    #[test]
    fn success_criteria_and_definition_of_done_are_not_run() {
        let p = load("success-criteria-and-definition-of-done.md", false);
        assert_eq!(p.run().len(), 3);
        assert_eq!(p.waves(), 2);
        for key in [
            "Requests over the limit",
            "p99 latency",
            "Code reviewed",
            "Documentation updated",
        ] {
            assert_eq!(p.not_run(key), "not work", "{key}");
        }
        let t = p.text();
        assert!(t.contains("3 tasks to run in 2 waves"), "{t}");
        assert!(
            t.contains("Success Criteria: nothing to run (2 checks, not work)"),
            "{t}"
        );
        assert!(
            t.contains("2 under `Definition of Done`: checks, not work"),
            "{t}"
        );
        assert!(!t.contains("wave 3"), "{t}");
    }

    #[test]
    fn chinese_and_japanese_verification_sections_are_not_run() {
        let p = load("zh-plan-with-verification-checklist.md", false);
        assert_eq!(p.run().len(), 4);
        assert_eq!(p.not_run("所有集成测试通过"), "not work");
        assert!(p.after("拆分订单仓储层", "为订单服务补充集成测试"));
        let p = load("ja-plan-with-verification.md", false);
        assert_eq!(p.run().len(), 4);
        assert_eq!(p.not_run("ステージングで"), "not work");
        assert_eq!(p.waves(), 2);
    }

    #[test]
    fn an_open_task_under_the_title_runs_before_the_first_wave() {
        let p = load("critical-task-under-the-title.md", false);
        assert_eq!(p.run().len(), 4);
        assert_eq!(p.waves(), 3);
        let critical = "Critical: fix the install command";
        assert_eq!(p.plan.nodes[0].id(&p.doc), p.id(critical));
        assert!(p.after("Remove the unused", critical));
        assert!(p.after("Add dark mode", critical));
        assert!(!p.doc.preamble.contains("Critical"), "{}", p.doc.preamble);
    }

    #[test]
    fn phases_written_in_bold_are_waves() {
        let p = load("bold-paragraph-phases.md", false);
        assert_eq!(p.doc.dialect, Dialect::SpecKit);
        assert_eq!(p.run().len(), 7);
        assert_eq!(p.waves(), 3);
        let titles: Vec<&str> = p.doc.waves.iter().map(|w| w.title.as_str()).collect();
        assert_eq!(
            titles,
            ["Phase 1: Setup", "Phase 2: Core", "Phase 3: Cutover"]
        );
        assert!(p.side_by_side("T002", "T003"));
        assert!(p.side_by_side("T005", "T006"));
        assert!(p.after("T004", "T003") && p.after("T007", "T006"));
    }

    #[test]
    fn heading_boxes_are_no_part_of_titles_and_a_file_read_by_all_is_no_conflict() {
        let p = load("heading-checkboxes-and-details-references.md", false);
        assert_eq!(p.run().len(), 3);
        let titles: Vec<&str> = p.doc.waves.iter().map(|w| w.title.as_str()).collect();
        assert_eq!(titles, ["Phase 1: Building blocks", "Phase 2: Integration"]);
        assert!(
            p.side_by_side("Task 1.1", "Task 1.2"),
            "parallelizable: true"
        );
        assert!(p.after("Task 2.1", "Task 1.2"));
        assert!(batch_core::plan::check(&p.doc, &p.plan).is_empty());
    }

    #[test]
    fn classic_kiro_number_parents_stay_parents() {
        let p = load("kiro-classic-number-parents.md", false);
        assert_eq!(p.run(), ["1.1", "1.2", "2.1"]);
        assert_eq!(p.not_run("1"), "parent");
        assert_eq!(p.not_run("2"), "parent");
    }

    #[test]
    fn an_arrow_chain_in_an_execution_order_section_is_the_order() {
        let p = load("execution-order-arrows.md", false);
        assert_eq!(p.run().len(), 4);
        assert!(p.after("Normalise", "Read the CSV"));
        assert!(p.after("Build the monthly", "Normalise"));
        assert!(p.text().contains("line 19: Phase 3 waits for Phase 2"));
    }

    #[test]
    fn a_critical_path_list_lets_phases_in_any_order_run_side_by_side() {
        let p = load("spec-kit-critical-path.md", false);
        assert_eq!(p.doc.dialect, Dialect::SpecKit);
        assert_eq!(p.run().len(), 5);
        assert!(p.after("T002", "T001"));
        // "Phases 3-4 can proceed in any order": side by side, after the path…
        assert!(p.side_by_side("T003", "T004"));
        assert!(p.after("T003", "T002") && p.after("T004", "T002"));
        // …and "Phase 5 finalizes" after both.
        assert!(p.after("T005", "T003") && p.after("T005", "T004"));
        assert!(
            p.text()
                .contains("line 29: Phase 5 waits for Phase 3, Phase 4"),
            "{}",
            p.text()
        );
    }

    #[test]
    fn a_file_without_checkboxes_has_nothing_to_run() {
        let p = load("no-checkboxes.md", false);
        assert!(p.run().is_empty());
        assert!(p.text().contains("no checkboxes, so nothing to run"));
    }
}
