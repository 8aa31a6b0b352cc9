//! `--junit FILE`: the report parsed back and checked.

use crate::batch;

#[test]
fn junit_has_one_testcase_per_task_with_failure_flaky_and_skipped_marked() {
    let f = batch();
    let out = f.mdbatch(&[
        "run",
        "--cmd",
        "./agent.sh",
        "--retries",
        "1",
        "--junit",
        "report.xml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(f.file("report.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("4"));
    assert_eq!(root.attribute("failures"), Some("1"));
    assert_eq!(root.attribute("skipped"), Some("1"));
    let suite = root
        .children()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("name"), Some("task.md"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 4);
    let case = |id: &str| {
        *cases
            .iter()
            .find(|c| {
                c.attribute("name")
                    .is_some_and(|n| n.starts_with(&format!("{id}: ")))
            })
            .unwrap_or_else(|| panic!("no testcase for {id} in\n{xml}"))
    };
    let prop = |c: roxmltree::Node, name: &str| {
        c.descendants()
            .find(|p| p.has_tag_name("property") && p.attribute("name") == Some(name))
            .and_then(|p| p.attribute("value").map(str::to_string))
    };

    let alpha = case("alpha");
    assert_eq!(alpha.attribute("classname"), Some("Wave 1/api"));
    assert_eq!(alpha.attribute("name"), Some("alpha: Create the model"));
    assert!(alpha.attribute("time").unwrap().parse::<f64>().is_ok());
    assert!(
        alpha
            .children()
            .all(|c| !c.has_tag_name("failure") && !c.has_tag_name("skipped"))
    );

    let beta = case("beta");
    assert_eq!(prop(beta, "flaky").as_deref(), Some("true"));
    assert_eq!(prop(beta, "attempts").as_deref(), Some("2"));
    let flaky = beta
        .children()
        .find(|c| c.has_tag_name("flakyFailure"))
        .unwrap();
    assert_eq!(flaky.attribute("type"), Some("failed"));
    assert!(beta.children().all(|c| !c.has_tag_name("failure")));

    let gamma = case("gamma");
    assert_eq!(gamma.attribute("classname"), Some("Wave 1/db"));
    let failure = gamma
        .children()
        .find(|c| c.has_tag_name("failure"))
        .unwrap();
    assert_eq!(failure.attribute("type"), Some("failed"));
    assert!(
        failure
            .attribute("message")
            .unwrap()
            .contains("table exists"),
        "{xml}"
    );
    assert_eq!(
        gamma
            .children()
            .filter(|c| c.has_tag_name("rerunFailure"))
            .count(),
        1
    );

    let delta = case("delta");
    assert_eq!(delta.attribute("classname"), Some("Wave 2"));
    let skipped = delta
        .children()
        .find(|c| c.has_tag_name("skipped"))
        .unwrap();
    assert!(
        skipped.attribute("message").unwrap().contains("gamma"),
        "{xml}"
    );
}

#[test]
fn junit_naming_the_task_file_is_refused_and_the_file_is_untouched() {
    let f = batch();
    let before = std::fs::read(f.file("task.md")).unwrap();
    let out = f.mdbatch(&["run", "--cmd", "./agent.sh", "--junit", "task.md"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("that is the task file"), "{err}");
    assert_eq!(std::fs::read(f.file("task.md")).unwrap(), before);
}
