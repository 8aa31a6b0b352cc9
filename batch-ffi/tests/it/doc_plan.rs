//! Parsing and planning through the C interface.

use std::ptr;

use mdbatch::*;

use crate::support::{parse, plan_json, take_error, take_string};

const TWO_WAVES: &str = "\
# Release

## Wave 1: build
- [ ] write the parser
- [ ] write the printer

## Wave 2: ship
- [ ] publish the crate
";

fn plan_ids(plan: &serde_json::Value) -> Vec<String> {
    // Every string value named `id` anywhere in the plan.
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if k == "id"
                        && let Some(s) = v.as_str()
                    {
                        out.push(s.to_string());
                    }
                    walk(v, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(plan, &mut out);
    out
}

#[test]
fn a_parsed_document_plans_to_json_naming_every_task() {
    let doc = parse(TWO_WAVES);
    let mut out = ptr::null_mut();
    let mut err = ptr::null_mut();
    assert_eq!(
        unsafe { mdbatch_doc_to_json(doc, &mut out, &mut err) },
        mdbatch_status::Ok
    );
    let doc_json: serde_json::Value = serde_json::from_str(&take_string(out)).unwrap();
    let tasks = doc_json["tasks"].as_array().expect("tasks array");
    assert_eq!(tasks.len(), 3);
    let ids: Vec<String> = tasks
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();

    let plan: serde_json::Value =
        serde_json::from_str(&plan_json(doc, None).unwrap()).expect("plan is JSON");
    let planned = plan_ids(&plan);
    for id in &ids {
        assert!(planned.contains(id), "plan names task {id}: {plan}");
    }
    unsafe { mdbatch_doc_free(doc) };
}

#[test]
fn plan_options_are_applied_and_a_document_can_be_planned_again() {
    let doc = parse(TWO_WAVES);
    let default = plan_json(doc, None).unwrap();
    assert_eq!(
        default,
        plan_json(doc, Some("{}")).unwrap(),
        "empty options are the defaults"
    );
    let default: serde_json::Value = serde_json::from_str(&default).unwrap();
    assert_eq!(default["v"], 1, "the versioned plan schema");
    assert_eq!(default["type"], "plan");
    assert_eq!(default["data"]["summary"]["waves"], 2);

    // Forcing the wave level re-parses: the `# Release` title becomes the one wave.
    let one_wave: serde_json::Value =
        serde_json::from_str(&plan_json(doc, Some(r#"{"wave_level": 1}"#)).unwrap()).unwrap();
    assert_eq!(one_wave["data"]["summary"]["waves"], 1, "{one_wave}");
    assert_eq!(one_wave["data"]["summary"]["tasks"], 3);

    let cross: serde_json::Value = serde_json::from_str(
        &plan_json(
            doc,
            Some(r#"{"cross_wave": true, "include_optional": true, "dialect": "waves"}"#),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(cross["data"]["cross_wave"], true);
    assert_eq!(plan_ids(&cross).len(), plan_ids(&default).len());
    unsafe { mdbatch_doc_free(doc) };
}

#[test]
fn one_document_can_be_planned_from_several_threads_at_once() {
    struct Shared(*mut mdbatch_doc);
    // SAFETY: an mdbatch_doc is immutable; the header allows sharing it.
    unsafe impl Sync for Shared {}
    impl Shared {
        // A method, so closures borrow the whole `Sync` wrapper.
        fn get(&self) -> *mut mdbatch_doc {
            self.0
        }
    }
    let doc = Shared(parse(TWO_WAVES));
    let expected = plan_json(doc.0, None).unwrap();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| plan_json(doc.get(), None).unwrap()))
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap(), expected);
        }
    });
    unsafe { mdbatch_doc_free(doc.0) };
}

#[test]
fn an_unknown_plan_option_is_an_error_and_the_document_stays_usable() {
    let doc = parse(TWO_WAVES);
    let (status, message) = plan_json(doc, Some(r#"{"jobs": 4}"#)).unwrap_err();
    assert_eq!(status, mdbatch_status::InvalidOptions);
    assert!(message.contains("unknown field `jobs`"), "{message}");
    let (status, _) = plan_json(doc, Some("not json")).unwrap_err();
    assert_eq!(status, mdbatch_status::InvalidOptions);
    assert!(plan_json(doc, None).is_ok());
    unsafe { mdbatch_doc_free(doc) };
}

#[test]
fn a_bad_hint_is_a_parse_error_at_its_line_and_column() {
    let text = "# T\n\n## A\n- [ ] one\n  <!-- paralel: false -->\n\n## B\n- [ ] two\n";
    let mut doc = ptr::null_mut();
    let mut err = ptr::null_mut();
    let status = unsafe { mdbatch_doc_parse(text.as_ptr().cast(), text.len(), &mut doc, &mut err) };
    assert_eq!(status, mdbatch_status::ParseError);
    assert!(doc.is_null(), "no output on failure");
    let message = take_error(err);
    assert!(message.contains("<input>:5:"), "{message}");
    assert!(message.contains("paralel"), "{message}");
}

#[test]
fn an_unknown_dependency_is_a_plan_error_naming_it() {
    let text = "# T\n\n## A\n- [ ] one <!-- after: nowhere -->\n\n## B\n- [ ] two\n";
    let doc = parse(text);
    let (status, message) = plan_json(doc, None).unwrap_err();
    assert_eq!(status, mdbatch_status::PlanError);
    assert!(message.contains("nowhere"), "{message}");
    assert!(message.contains("<input>:4:"), "{message}");
    unsafe { mdbatch_doc_free(doc) };
}

#[test]
fn every_corpus_task_file_parses_and_plans_through_the_c_interface() {
    let corpus = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"));
    let Ok(entries) = std::fs::read_dir(corpus) else {
        eprintln!("skipped: {} is absent", corpus.display());
        return;
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the corpus has task files");
    for path in files {
        let text = std::fs::read(&path).unwrap();
        let mut doc = ptr::null_mut();
        let mut err = ptr::null_mut();
        let status =
            unsafe { mdbatch_doc_parse(text.as_ptr().cast(), text.len(), &mut doc, &mut err) };
        if status != mdbatch_status::Ok {
            panic!("{}: {status:?}: {}", path.display(), take_error(err));
        }
        let plan = plan_json(doc, None).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
        assert_eq!(plan["v"], 1, "{}", path.display());
        unsafe { mdbatch_doc_free(doc) };
    }
}

#[test]
fn status_of_a_task_file_is_json_and_a_missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tasks.md");
    std::fs::write(&file, "## Wave 1\n- [x] done one\n- [ ] open one\n").unwrap();
    let path = std::ffi::CString::new(file.to_str().unwrap()).unwrap();
    let mut out = ptr::null_mut();
    let mut err = ptr::null_mut();
    assert_eq!(
        unsafe { mdbatch_status_json(path.as_ptr(), &mut out, &mut err) },
        mdbatch_status::Ok
    );
    let status: serde_json::Value = serde_json::from_str(&take_string(out)).unwrap();
    assert_eq!(status["v"], 1);
    assert_eq!(status["done"], 1);
    assert_eq!(status["open"], 1);
    assert_eq!(status["last_run"], serde_json::Value::Null, "never run");

    let missing = std::ffi::CString::new(dir.path().join("nope.md").to_str().unwrap()).unwrap();
    let mut out = ptr::null_mut();
    let mut err = ptr::null_mut();
    assert_eq!(
        unsafe { mdbatch_status_json(missing.as_ptr(), &mut out, &mut err) },
        mdbatch_status::Io
    );
    assert!(out.is_null(), "no output on failure");
    assert!(take_error(err).contains("nope.md"));
}
