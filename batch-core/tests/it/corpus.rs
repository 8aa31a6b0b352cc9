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
        plan.node_by_id("7.9").is_none(),
        "optional tasks are not planned by default"
    );
}
