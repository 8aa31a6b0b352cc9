//! Planning task files as users write them, one per dialect, plus every real
//! file of `../shared/corpus`: the order a user of each tool expects, snapshots
//! of `mdbatch plan`'s text, and the JSON schema.

use std::path::PathBuf;

use batch_core::plan::{PlanFormat, ReadyTracker, render};
use batch_core::{Dialect, Document, ParseOptions, Plan, PlanOptions};

fn fixture(name: &str) -> (String, Document) {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name);
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    // A relative path keeps snapshots free of the checkout's location.
    let doc = Document::parse(&text, &ParseOptions::with_path(name)).expect("fixture parses");
    (text, doc)
}

/// A plan with the document it was built from (a node's id is its task's).
struct Planned<'d> {
    doc: &'d Document,
    plan: Plan,
}

impl std::ops::Deref for Planned<'_> {
    type Target = Plan;
    fn deref(&self) -> &Plan {
        &self.plan
    }
}

fn plan<'d>(doc: &'d Document, f: impl FnOnce(&mut PlanOptions)) -> Planned<'d> {
    let mut o = PlanOptions::default();
    f(&mut o);
    match Plan::build(doc, &o) {
        Ok(plan) => Planned { doc, plan },
        Err(e) => panic!("plan failed:\n{e}"),
    }
}

/// What a task waits for directly, by id, sorted.
fn waits(p: &Planned, id: &str) -> Vec<String> {
    let n = p
        .node_by_id(p.doc, id)
        .unwrap_or_else(|| panic!("{id} is not in the plan"));
    let mut v: Vec<String> = p
        .waits_for(n.index)
        .into_iter()
        .map(|i| p.nodes[i].id(p.doc).to_string())
        .collect();
    v.sort();
    v
}

fn id_of(doc: &Document, text_start: &str) -> String {
    doc.tasks
        .iter()
        .find(|t| t.text.starts_with(text_start))
        .map(|t| t.id.clone())
        .unwrap_or_else(|| panic!("no task starting with {text_start:?}"))
}

/// Runs the plan to the end with the tracker and returns the finishing order
/// when each step takes every ready node at once (the widest schedule).
fn waves_of_execution(p: &Planned) -> Vec<Vec<String>> {
    let mut tracker = ReadyTracker::new(p);
    let mut ready = tracker.initially_ready();
    let mut out = Vec::new();
    while !ready.is_empty() {
        out.push(
            ready
                .iter()
                .map(|&i| p.nodes[i].id(p.doc).to_string())
                .collect(),
        );
        let mut next = Vec::new();
        for i in ready {
            next.extend(tracker.finish(i));
        }
        next.sort_unstable();
        ready = next;
    }
    out
}

#[test]
fn waves_fixture_runs_modules_side_by_side_and_waves_one_after_another() {
    let (_, doc) = fixture("waves.md");
    assert_eq!(doc.dialect, Dialect::Waves);
    let p = plan(&doc, |_| {});
    assert_eq!(p.nodes.len(), 12);
    let steps = waves_of_execution(&p);
    // Wave 1 (4 tasks, both modules at once), wave 2's API chain of two beside
    // the web tasks, then wave 3.
    assert_eq!(steps.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 1, 3]);
    let delete = id_of(&doc, "Add `DELETE");
    let get = id_of(&doc, "Add `GET");
    assert_eq!(
        waits(&p, &delete),
        [get],
        "`parallel: false` chains the API group"
    );
    let web2 = p
        .node_by_id(&doc, &id_of(&doc, "Build the notes list"))
        .unwrap()
        .group;
    assert_eq!(p.groups[web2].limit, Some(2), "`parallel: 2` is a limit");
    let e2e = p.node_by_id(&doc, &id_of(&doc, "Add end-to-end")).unwrap();
    assert!(
        e2e.deps
            .iter()
            .any(|e| p.nodes[e.on].id(&doc) == "web-client")
    );
    insta::assert_snapshot!("waves_text", render(&doc, &p, PlanFormat::Text));
}

#[test]
fn waves_fixture_cross_wave_lets_each_module_run_ahead() {
    let (_, doc) = fixture("waves.md");
    let p = plan(&doc, |o| o.cross_wave = Some(true));
    let api_health = id_of(&doc, "Add request logging");
    let api_delete = id_of(&doc, "Add `DELETE");
    assert_eq!(
        waits(&p, &api_health),
        [api_delete],
        "API waits only for API"
    );
    // Docs appear first in wave 3: they wait for the whole of wave 2.
    let docs = id_of(&doc, "Write the user guide");
    assert_eq!(waits(&p, &docs).len(), 4);
    insta::assert_snapshot!("waves_cross_wave_text", render(&doc, &p, PlanFormat::Text));
}

#[test]
fn spec_kit_fixture_is_sequential_with_p_runs_and_reads_depends_on() {
    let (_, doc) = fixture("spec-kit.md");
    assert_eq!(doc.dialect, Dialect::SpecKit);
    let p = plan(&doc, |_| {});
    assert!(p.node_by_id(&doc, "T001").is_none(), "T001 is checked");
    assert!(waits(&p, "T002").is_empty() && waits(&p, "T003").is_empty());
    assert_eq!(
        waits(&p, "T004"),
        ["T002", "T003"],
        "phase 2 waits for phase 1"
    );
    assert_eq!(waits(&p, "T007"), ["T005", "T006"]);
    assert_eq!(
        waits(&p, "T010"),
        ["T008", "T009"],
        "implementation after tests"
    );
    assert_eq!(waits(&p, "T015"), ["T012", "T014"], "(depends on T012)");
    insta::assert_snapshot!("spec_kit_text", render(&doc, &p, PlanFormat::Text));
}

#[test]
fn spec_kit_fixture_cross_wave_runs_the_two_stories_side_by_side() {
    let (_, doc) = fixture("spec-kit.md");
    let p = plan(&doc, |o| o.cross_wave = Some(true));
    assert_eq!(waits(&p, "T008"), ["T007"]);
    assert_eq!(waits(&p, "T014"), ["T007"], "US2 does not wait for US1");
    let t14 = p.node_by_id(&doc, "T014").unwrap().index;
    let t13 = p.node_by_id(&doc, "T013").unwrap().index;
    assert!(!p.depends_on(t14, t13));
    // …except where a task says so.
    let t15 = p.node_by_id(&doc, "T015").unwrap().index;
    let t12 = p.node_by_id(&doc, "T012").unwrap().index;
    assert!(p.depends_on(t15, t12));
    // Polish waits for both stories.
    assert_eq!(waits(&p, "T017"), ["T007", "T013", "T016"]);
    insta::assert_snapshot!(
        "spec_kit_cross_wave_text",
        render(&doc, &p, PlanFormat::Text)
    );
}

#[test]
fn kiro_fixture_is_a_chain_of_children_with_p_runs_and_optional_tasks_left_out() {
    let (_, doc) = fixture("kiro.md");
    assert_eq!(doc.dialect, Dialect::Kiro);
    let p = plan(&doc, |_| {});
    let order: Vec<&str> = p.nodes.iter().map(|n| n.id(&doc)).collect();
    assert_eq!(order, ["1.2", "1.3", "2.1", "2.2", "3.1", "3.2", "3.3"]);
    assert!(waits(&p, "1.3").is_empty(), "(P) run");
    assert_eq!(waits(&p, "2.1"), ["1.2", "1.3"]);
    assert_eq!(waits(&p, "3.3"), ["3.1", "3.2"]);
    assert!(
        p.excluded
            .iter()
            .any(|e| e.id == "2.3" && e.reason == "optional")
    );
    assert_eq!(p.nodes[0].chain, 5, "1.2 → 2.1 → 2.2 → 3.1 → 3.3");
    insta::assert_snapshot!("kiro_text", render(&doc, &p, PlanFormat::Text));
    let with_optional = plan(&doc, |o| o.include_optional = true);
    assert_eq!(waits(&with_optional, "2.3"), ["2.2"]);
}

#[test]
fn only_plans_the_selection_and_what_it_needs() {
    let (_, doc) = fixture("spec-kit.md");
    let p = plan(&doc, |o| o.only = vec!["T015".into()]);
    let ids: Vec<&str> = p.nodes.iter().map(|n| n.id(&doc)).collect();
    // Strict waves: T015 needs phases 1-3 and T014 before it.
    assert_eq!(ids.first(), Some(&"T002"));
    assert_eq!(ids.last(), Some(&"T015"));
    assert!(!ids.contains(&"T016"));
    let p = plan(&doc, |o| {
        o.only = vec!["T015".into()];
        o.cross_wave = Some(true);
    });
    let ids: Vec<&str> = p.nodes.iter().map(|n| n.id(&doc)).collect();
    assert_eq!(
        ids,
        [
            "T002", "T003", "T004", "T005", "T006", "T007", "T008", "T009", "T010", "T011", "T012",
            "T014", "T015"
        ]
    );
    let p = plan(&doc, |o| o.only = vec!["Phase 1".into()]);
    assert_eq!(p.nodes.len(), 2);
}

#[test]
fn json_output_follows_the_documented_schema() {
    let (_, doc) = fixture("spec-kit.md");
    let p = plan(&doc, |_| {});
    let v: serde_json::Value =
        serde_json::from_str(&render(&doc, &p, PlanFormat::Json)).expect("valid JSON");
    assert_eq!(v["v"], 1);
    assert_eq!(v["type"], "plan");
    let d = &v["data"];
    for key in [
        "file",
        "dialect",
        "dialect_reason",
        "cross_wave",
        "summary",
        "waves",
        "tasks",
        "barriers",
        "excluded",
    ] {
        assert!(d.get(key).is_some(), "data.{key}");
    }
    let tasks = d["tasks"].as_array().expect("tasks array");
    assert_eq!(tasks.len(), 18);
    for (i, t) in tasks.iter().enumerate() {
        assert_eq!(t["order"], i);
        for key in [
            "id",
            "text",
            "wave",
            "group",
            "line",
            "chain",
            "deps",
            "barriers",
            "resources",
        ] {
            assert!(t.get(key).is_some(), "tasks[{i}].{key}");
        }
    }
    insta::assert_json_snapshot!("spec_kit_json", v);
}

#[test]
fn dot_and_mermaid_outputs_are_stable() {
    let (_, doc) = fixture("kiro.md");
    let p = plan(&doc, |_| {});
    insta::assert_snapshot!("kiro_dot", render(&doc, &p, PlanFormat::Dot));
    insta::assert_snapshot!("kiro_mermaid", render(&doc, &p, PlanFormat::Mermaid));
}

#[test]
fn a_cycle_in_a_file_is_reported_with_each_task_and_its_line() {
    let text = "# Tasks\n\n## Build\n\n- [ ] T001 Parser (depends on T003)\n- [ ] T002 [P] Planner\n- [ ] T003 Runner (depends on T001)\n";
    let doc = Document::parse(text, &ParseOptions::with_path("tasks.md")).expect("parses");
    let err = Plan::build(&doc, &PlanOptions::default()).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    let d = &err.0[0];
    assert_eq!((d.line, d.col), (5, 1));
    assert!(
        d.message.starts_with("dependency cycle: T001 → T003"),
        "{}",
        d.message
    );
    let help = d.help.as_deref().unwrap_or_default();
    assert!(
        help.contains("`T001` (line 5)") && help.contains("`T003` (line 7)"),
        "{help}"
    );
}

#[test]
fn unknown_dependencies_are_errors_naming_the_place_and_a_suggestion() {
    let text = "# Tasks\n\n## One\n\n- [ ] T001 First\n- [ ] T002 Second (depends on T010)\n\n## Two\n<!-- after: Setpu -->\n\n- [ ] T003 Third\n";
    let doc = Document::parse(text, &ParseOptions::with_path("tasks.md")).expect("parses");
    let err = Plan::build(&doc, &PlanOptions::default()).unwrap_err();
    let found: Vec<(usize, &str)> = err.0.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        found,
        [
            (
                6,
                "the dependency text names `T010`, which is no task id or section here"
            ),
            (
                8,
                "`after:` names `Setpu`, which is no task id or section here"
            ),
        ]
    );
    assert_eq!(err.0[0].help.as_deref(), Some("did you mean `T001`?"));
}

#[test]
fn every_corpus_file_plans_without_error_strict_and_cross_wave() {
    let Some(files) = crate::corpus::corpus_files() else {
        return;
    };
    for path in files {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let doc = Document::read(&path, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("{name} does not parse:\n{e}"));
        for cross_wave in [false, true] {
            let p = Plan::build(&doc, &{
                let mut o = PlanOptions::default();
                o.cross_wave = Some(cross_wave);
                o
            })
            .unwrap_or_else(|e| panic!("{name} (cross-wave {cross_wave}) does not plan:\n{e}"));
            // Every open leaf inside a wave is a node; every node runs exactly once.
            let open = doc
                .tasks
                .iter()
                .filter(|t| {
                    !t.checked && !t.is_parent() && !t.optional && !t.skip && t.wave.is_some()
                })
                .count();
            let checks = p.excluded.iter().filter(|e| e.reason == "not work").count();
            assert_eq!(p.nodes.len() + checks, open, "{name}");
            let p = Planned { doc: &doc, plan: p };
            let ran: usize = waves_of_execution(&p).iter().map(Vec::len).sum();
            assert_eq!(ran, p.nodes.len(), "{name}: every node becomes ready");
            for text in [
                PlanFormat::Text,
                PlanFormat::Json,
                PlanFormat::Dot,
                PlanFormat::Mermaid,
            ] {
                assert!(!render(&doc, &p, text).is_empty());
            }
        }
        println!("{name}: plans");
    }
}

mod props {
    use batch_core::{Document, ParseOptions, Plan, PlanOptions};
    use proptest::prelude::*;

    /// One generated task: starts a new group / wave, is checked, its `after:` targets.
    type Spec = (u8, bool, Vec<usize>);

    fn file(specs: &[Spec]) -> String {
        let mut s = String::from("# Generated\n");
        let (mut wave, mut group) = (0, 0);
        for (i, (brk, checked, after)) in specs.iter().enumerate() {
            if i == 0 || brk % 4 == 0 {
                wave += 1;
                s.push_str(&format!("\n## Wave {wave}\n"));
            }
            if i == 0 || brk % 2 == 0 {
                group += 1;
                s.push_str(&format!("\n### Group {group}\n\n"));
            }
            let mark = if *checked { "x" } else { " " };
            let after: Vec<String> = after
                .iter()
                .map(|a| format!("t{}", a % specs.len()))
                .collect();
            let hint = if after.is_empty() {
                format!("<!-- id: t{i} -->")
            } else {
                format!("<!-- id: t{i}; after: {} -->", after.join(", "))
            };
            s.push_str(&format!("- [{mark}] task {i} {hint}\n"));
        }
        s
    }

    fn specs() -> impl Strategy<Value = Vec<Spec>> {
        prop::collection::vec(
            (
                any::<u8>(),
                prop::bool::weighted(0.2),
                prop::collection::vec(0usize..64, 0..3),
            ),
            1..40,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Plans are in topological order, respect every `after:` between open
        /// tasks and every wave boundary, or fail only on cycles.
        #[test]
        fn plans_are_acyclic_and_respect_after_and_waves(specs in specs(), cross_wave in any::<bool>()) {
            let text = file(&specs);
            let doc = Document::parse(&text, &ParseOptions::with_path("t.md")).expect("generated files parse");
            let mut o = PlanOptions::default();
            o.cross_wave = Some(cross_wave);
            match Plan::build(&doc, &o) {
                Ok(plan) => {
                    for (i, n) in plan.nodes.iter().enumerate() {
                        prop_assert_eq!(n.order, i);
                        prop_assert!(n.deps.iter().all(|e| e.on < i));
                        for &b in &n.barriers {
                            prop_assert!(plan.barriers[b].members.iter().all(|&m| m < i));
                        }
                        prop_assert!(n.chain >= 1);
                    }
                    for n in &plan.nodes {
                        let task = &doc.tasks[n.task];
                        for a in &task.hints.after {
                            if let Some(m) = plan.node_by_id(&doc, a) {
                                prop_assert!(plan.depends_on(n.index, m.index), "{} after {}", n.id(&doc), a);
                            }
                        }
                    }
                    if !cross_wave {
                        for a in &plan.nodes {
                            for b in &plan.nodes {
                                if a.wave > b.wave {
                                    prop_assert!(plan.depends_on(a.index, b.index), "{} waits for {}", a.id(&doc), b.id(&doc));
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    let backward = specs.iter().enumerate().all(|(i, (_, _, after))| {
                        after.iter().all(|a| a % specs.len() < i)
                    });
                    prop_assert!(!backward, "only backward refs, yet: {}", e);
                    for d in &e.0 {
                        prop_assert!(
                            d.message.starts_with("dependency cycle") || d.message.ends_with("depends on itself"),
                            "{}", d.message
                        );
                    }
                }
            }
        }
    }
}
