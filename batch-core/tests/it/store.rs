//! Task-file write-back, journal and lock, through the public store API.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use batch_core::store::{journal, lock, taskfile};
use batch_core::{Document, ParseOptions, RunSetupError, StoreError};
use proptest::prelude::*;

fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn ids(path: &Path) -> Vec<(String, bool)> {
    let doc = Document::read(path, &ParseOptions::with_path(path)).unwrap();
    doc.tasks
        .iter()
        .map(|t| (t.id.clone(), t.checked))
        .collect()
}

/// Byte offsets where two equally long buffers differ.
fn diff(a: &[u8], b: &[u8]) -> Vec<usize> {
    assert_eq!(a.len(), b.len(), "the file length changed");
    (0..a.len()).filter(|&i| a[i] != b[i]).collect()
}

const SIMPLE: &str = "# Batch\n\n## Wave 1\n\n- [ ] <!-- id: a --> write the parser\n- [ ] <!-- id: b --> write the planner\n\n## Wave 2\n\n- [x] <!-- id: c --> done already\n- [ ] <!-- id: d --> ship it\n";

#[test]
fn checking_a_task_changes_exactly_one_byte_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "task.md", SIMPLE.as_bytes());
    let before = std::fs::read(&path).unwrap();
    let ids0 = ids(&path);
    let b = ids0
        .iter()
        .find(|(id, _)| id == "b")
        .map(|x| x.0.clone())
        .expect("id hint b");
    let out = taskfile::check_boxes(
        &path,
        &ParseOptions::with_path(&path),
        std::slice::from_ref(&b),
    )
    .unwrap();
    assert_eq!(out.changed, [b]);
    let after = std::fs::read(&path).unwrap();
    let d = diff(&before, &after);
    assert_eq!(d.len(), 1);
    assert_eq!(after[d[0]], b'x');
    assert_eq!(&after[d[0] - 1..d[0] + 2], b"[x]");
    assert!(
        String::from_utf8(after)
            .unwrap()
            .contains("- [x] <!-- id: b --> write the planner")
    );
}

#[test]
fn crlf_line_ends_and_a_bom_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = vec![0xEF, 0xBB, 0xBF];
    text.extend_from_slice(SIMPLE.replace('\n', "\r\n").as_bytes());
    let path = write(dir.path(), "task.md", &text);
    taskfile::check_boxes(
        &path,
        &ParseOptions::with_path(&path),
        &["a".into(), "d".into()],
    )
    .unwrap();
    let after = std::fs::read(&path).unwrap();
    assert_eq!(diff(&text, &after).len(), 2);
    assert!(after.starts_with(&[0xEF, 0xBB, 0xBF]));
    let s = String::from_utf8(after).unwrap();
    assert!(s.contains("- [x] <!-- id: a --> write the parser\r\n"));
    assert!(s.contains("- [x] <!-- id: d --> ship it\r\n"));
}

#[test]
fn a_file_that_mostly_uses_capital_x_gets_a_capital_x() {
    let dir = tempfile::tempdir().unwrap();
    let text = "- [X] one\n- [X] two\n- [x] three\n- [ ] <!-- id: four --> four\n";
    let path = write(dir.path(), "task.md", text.as_bytes());
    taskfile::check_boxes(&path, &ParseOptions::with_path(&path), &["four".into()]).unwrap();
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("- [X] <!-- id: four --> four")
    );
}

#[test]
fn a_parent_is_checked_when_its_last_required_child_is() {
    let dir = tempfile::tempdir().unwrap();
    let text = "- [ ] <!-- id: p --> parent\n  - [x] <!-- id: c1 --> one\n  - [ ] <!-- id: c2 --> two\n  - [ ] <!-- id: c3; optional: true --> three\n";
    let path = write(dir.path(), "task.md", text.as_bytes());
    let out =
        taskfile::check_boxes(&path, &ParseOptions::with_path(&path), &["c2".into()]).unwrap();
    assert_eq!(out.parents, ["p"]);
    let s = std::fs::read_to_string(&path).unwrap();
    assert!(s.starts_with("- [x] <!-- id: p --> parent\n"), "{s}");
    assert!(s.contains("  - [ ] <!-- id: c3; optional: true --> three"));
    assert_eq!(diff(text.as_bytes(), s.as_bytes()).len(), 2);

    // And `reset` unchecks the child and the parent above it.
    let out = taskfile::uncheck(&path, &ParseOptions::with_path(&path), &["c1".into()]).unwrap();
    assert_eq!(
        (out.changed, out.parents),
        (vec!["c1".to_string()], vec!["p".to_string()])
    );
    let s2 = std::fs::read_to_string(&path).unwrap();
    assert!(
        s2.starts_with("- [ ] <!-- id: p --> parent\n  - [ ] <!-- id: c1 --> one\n  - [x]"),
        "{s2}"
    );
}

#[test]
fn edits_made_during_the_run_are_kept_and_the_task_is_found_again_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "task.md", SIMPLE.as_bytes());
    // The user adds a note at the top (shifting every offset) while a task runs.
    let edited = format!("> note: reviewed by Ana\n\n{SIMPLE}- [ ] <!-- id: e --> a new task\n");
    std::fs::write(&path, &edited).unwrap();
    taskfile::check_boxes(&path, &ParseOptions::with_path(&path), &["d".into()]).unwrap();
    let s = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        s,
        edited.replace("- [ ] <!-- id: d -->", "- [x] <!-- id: d -->")
    );
}

#[test]
fn a_gone_task_or_an_already_checked_box_is_reported_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "task.md", SIMPLE.as_bytes());
    let out = taskfile::check_boxes(
        &path,
        &ParseOptions::with_path(&path),
        &["c".into(), "zzz".into()],
    )
    .unwrap();
    assert_eq!(out.unchanged, ["c"]);
    assert!(matches!(&out.problems[..], [StoreError::TaskGone { id, .. }] if id == "zzz"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), SIMPLE);
}

#[test]
fn permissions_are_kept_and_a_symlinked_file_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let real = write(dir.path(), "real.md", SIMPLE.as_bytes());
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("task.md");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    taskfile::check_boxes(&link, &ParseOptions::with_path(&link), &["a".into()]).unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(&real)
            .unwrap()
            .contains("- [x] <!-- id: a -->")
    );
    assert_eq!(
        std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left behind");
}

#[test]
fn a_missing_task_file_is_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    let err = taskfile::ensure_writable(&dir.path().join("nope/task.md")).unwrap_err();
    assert!(err.to_string().contains("not writable"), "{err}");
    let path = write(dir.path(), "task.md", b"- [ ] x\n");
    taskfile::ensure_writable(&path).unwrap();
}

#[test]
fn a_second_run_is_refused_naming_the_first_and_a_released_lock_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".mdbatch");
    let task = dir.path().join("task.md");
    let held = lock::RunLock::acquire(&state, &task).unwrap();
    let err = lock::RunLock::acquire(&state, &task).unwrap_err();
    assert!(matches!(err, RunSetupError::Locked { pid, .. } if pid == std::process::id()));
    assert!(
        err.to_string()
            .contains(&format!("pid {}", std::process::id()))
    );
    drop(held);
    lock::RunLock::acquire(&state, &task).unwrap();
}

#[test]
fn the_journal_reader_survives_garbage_and_unknown_record_types() {
    let bytes = b"{\"v\":1,\"ts\":\"t\",\"run_id\":\"r\",\"type\":\"run_start\",\"file\":\"f\",\"pid\":1,\"runner\":\"command\",\"total\":1}\n\
{\"v\":2,\"ts\":\"t\",\"run_id\":\"r\",\"type\":\"from_the_future\"}\n\
not json at all\n\
{\"v\":1,\"ts\":\"t\",\"run_id\":\"r\",\"type\":\"attempt_st";
    let read = journal::parse(bytes);
    assert_eq!(read.entries.len(), 1);
    assert_eq!(read.skipped_lines, 3);
}

fn task_file_strategy() -> impl Strategy<Value = (String, bool, bool)> {
    let line = prop_oneof![
        (any::<bool>(), "[a-z ]{1,12}")
            .prop_map(|(c, t)| format!("- [{}] {t}", if c { "x" } else { " " })),
        (any::<bool>(), "[a-z ]{1,12}")
            .prop_map(|(c, t)| format!("  - [{}] {t}", if c { "X" } else { " " })),
        "[a-z ]{0,20}".prop_map(|t: String| t),
        Just("## Section".to_string()),
        Just("```\n- [ ] not a task\n```".to_string()),
        Just("<!-- - [ ] not a task either -->".to_string()),
    ];
    (
        prop::collection::vec(line, 1..25),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lines, crlf, bom)| {
            let mut text = format!("# Title\n\n- [ ] first\n{}\n", lines.join("\n"));
            if crlf {
                text = text.replace('\n', "\r\n");
            }
            (text, crlf, bom)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Only the markers of the targeted tasks (and of parents completed by
    /// them) change, one byte each, to `x` or `X`.
    #[test]
    fn checking_tasks_only_ever_changes_their_marker_bytes((text, _crlf, bom) in task_file_strategy(), pick in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        if bom { bytes.extend_from_slice(&[0xEF, 0xBB, 0xBF]); }
        bytes.extend_from_slice(text.as_bytes());
        let path = write(dir.path(), "task.md", &bytes);
        let opts = ParseOptions::with_path(&path);
        let doc = Document::read(&path, &opts).unwrap();
        let targets: Vec<String> = doc.tasks.iter().enumerate()
            .filter(|(i, t)| !t.checked && pick & (1 << (i % 64)) != 0)
            .map(|(_, t)| t.id.clone())
            .collect();
        let out = taskfile::check_boxes(&path, &opts, &targets).unwrap();
        let after = std::fs::read(&path).unwrap();
        let changed = diff(&bytes, &after);
        let allowed: Vec<usize> = doc.tasks.iter()
            .filter(|t| out.changed.contains(&t.id) || out.parents.contains(&t.id))
            .map(|t| t.marker.start + 1)
            .collect();
        prop_assert_eq!(changed.len(), out.changed.len() + out.parents.len());
        for at in changed {
            prop_assert!(allowed.contains(&at), "byte {} changed outside a target marker", at);
            prop_assert!(after[at] == b'x' || after[at] == b'X');
        }
        prop_assert_eq!(out.changed.len(), targets.len());
    }
}
