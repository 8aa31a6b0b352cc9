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

/// `n` tasks with id hints, one per line.
fn many(n: usize) -> String {
    let mut s = String::from("# Many\n\n");
    for i in 0..n {
        s.push_str(&format!("- [ ] <!-- id: t{i} --> task number {i}\n"));
    }
    s
}

fn want(path: &Path, id: &str) -> taskfile::Want {
    let doc = Document::read(path, &ParseOptions::with_path(path)).unwrap();
    let t = doc.task_by_id(id).unwrap();
    taskfile::Want::with_hash(id, journal::text_hash(&t.text))
}

#[test]
fn an_in_place_save_written_in_two_chunks_while_a_box_is_checked_is_kept_whole() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "task.md", SIMPLE.as_bytes());
    let mut tf = taskfile::TaskFile::open(&path, &ParseOptions::with_path(&path)).unwrap();
    // The user's program saves in place: truncate, first chunk, (mdbatch
    // checks `a` now), second chunk.
    let saved = format!("{SIMPLE}\n## Notes\n\n{}\n", "A long note. ".repeat(40));
    let (one, two) = saved.as_bytes().split_at(SIMPLE.len() - 10);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.write_all(one).unwrap();
    f.flush().unwrap();
    let out = tf.check(&[taskfile::Want::id("a")]).unwrap();
    assert_eq!(out.changed, ["a"]);
    f.write_all(two).unwrap();
    drop(f);
    let after = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        after,
        saved.replace("- [ ] <!-- id: a -->", "- [x] <!-- id: a -->")
    );
}

#[test]
fn an_editor_process_saving_by_rename_throughout_the_writes_loses_no_save_and_no_box() {
    let dir = tempfile::tempdir().unwrap();
    let n = 150;
    let text = many(n);
    let path = write(dir.path(), "task.md", text.as_bytes());
    let opts = ParseOptions::with_path(&path);
    let wants: Vec<taskfile::Want> = (0..n).map(|i| want(&path, &format!("t{i}"))).collect();
    let mut tf = taskfile::TaskFile::open(&path, &opts).unwrap();
    // An editor that re-reads the file and saves it with one more line,
    // by writing a new file and renaming it over, as fast as it can.
    let saves = 300;
    let mut editor = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "i=0; while [ $i -lt {saves} ]; do cat task.md > .edit.tmp && echo \"<!-- save $i -->\" >> .edit.tmp && mv .edit.tmp task.md; i=$((i+1)); done"
        ))
        .current_dir(dir.path())
        .spawn()
        .unwrap();
    for w in &wants {
        // A save of a stale copy may open a box again: the next write sees it.
        // An editor saving with no pause at all can win the race with one
        // write 32 times in a row ("kept changing"): the run then checks the
        // box at its next write, as here.
        let out = loop {
            match tf.check(std::slice::from_ref(w)) {
                Ok(out) => break out,
                Err(e) if e.to_string().contains("kept changing") => continue,
                Err(e) => panic!("{e}"),
            }
        };
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }
    assert!(editor.wait().unwrap().success());
    tf.check(&[]).unwrap();
    let after = std::fs::read_to_string(&path).unwrap();
    // Every save is there, in order, and nothing else changed but the boxes.
    let mut expected = text.replace("- [ ]", "- [x]");
    for i in 0..saves {
        expected.push_str(&format!("<!-- save {i} -->\n"));
    }
    assert_eq!(after, expected);
}

#[test]
fn symlinks_planted_at_the_old_temp_and_probe_names_are_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "task.md", SIMPLE.as_bytes());
    let victim = write(dir.path(), "bashrc", b"export PATH=/usr/bin\n");
    let pid = std::process::id();
    for name in [
        format!(".task.md.mdbatch-{pid}.tmp"),
        format!(".mdbatch-probe-{pid}"),
    ] {
        std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
    }
    taskfile::ensure_writable(&path).unwrap();
    taskfile::check_boxes(&path, &ParseOptions::with_path(&path), &["a".into()]).unwrap();
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "export PATH=/usr/bin\n"
    );
    let m = std::fs::symlink_metadata(&path).unwrap();
    assert!(m.file_type().is_file());
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("- [x] <!-- id: a -->")
    );
}

#[test]
fn a_task_file_replaced_by_a_symlink_during_the_run_is_refused_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "task.md", SIMPLE.as_bytes());
    let victim = write(dir.path(), "victim.md", SIMPLE.as_bytes());
    let mut tf = taskfile::TaskFile::open(&path, &ParseOptions::with_path(&path)).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    let err = tf.check(&[taskfile::Want::id("a")]).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), SIMPLE);
}

#[test]
fn owner_mode_and_hard_links_survive_a_write() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "task.md", SIMPLE.as_bytes());
    let other = dir.path().join("linked.md");
    std::fs::hard_link(&path, &other).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        std::os::unix::fs::chown(&path, Some(4242), Some(4242)).unwrap();
    }
    let before = std::fs::metadata(&path).unwrap();
    taskfile::check_boxes(&path, &ParseOptions::with_path(&path), &["b".into()]).unwrap();
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(after.ino(), before.ino());
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_eq!(after.mode() & 0o7777, 0o604);
    assert!(
        std::fs::read_to_string(&other)
            .unwrap()
            .contains("- [x] <!-- id: b -->")
    );
}

#[test]
fn a_task_whose_text_changed_while_it_ran_is_not_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "task.md", SIMPLE.as_bytes());
    let w = want(&path, "b");
    let mut tf = taskfile::TaskFile::open(&path, &ParseOptions::with_path(&path)).unwrap();
    // Regenerated mid-run: `b` now names other work.
    let edited = SIMPLE.replace("write the planner", "delete the planner");
    std::fs::write(&path, &edited).unwrap();
    let out = tf.check(&[w]).unwrap();
    assert!(out.changed.is_empty());
    assert!(
        matches!(&out.problems[..], [StoreError::TextChanged { id, .. }] if id == "b"),
        "{:?}",
        out.problems
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
}

#[test]
fn a_copy_of_the_running_task_added_above_it_gets_no_box_checked() {
    let dir = tempfile::tempdir().unwrap();
    let text = "# Fixes\n\n- [ ] Fix the tests\n- [ ] Ship\n";
    let path = write(dir.path(), "task.md", text.as_bytes());
    let doc = Document::read(&path, &ParseOptions::with_path(&path)).unwrap();
    let id = doc.tasks[0].id.clone();
    let w = taskfile::Want::with_hash(&id, journal::text_hash(&doc.tasks[0].text));
    let mut tf = taskfile::TaskFile::open(&path, &ParseOptions::with_path(&path)).unwrap();
    // The user inserts a second "Fix the tests" above the running one: it
    // takes the running task's id.
    let edited = "# Fixes\n\n- [ ] Fix the tests\n- [ ] Fix the tests\n- [ ] Ship\n";
    std::fs::write(&path, edited).unwrap();
    let out = tf.check(&[w]).unwrap();
    assert!(out.changed.is_empty());
    assert!(
        matches!(&out.problems[..], [StoreError::Ambiguous { count: 2, .. }]),
        "{:?}",
        out.problems
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
}

#[test]
fn a_task_found_under_a_new_id_with_the_same_text_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let text = "- [ ] T001 Write the parser\n- [ ] T002 Write the planner\n";
    let path = write(dir.path(), "task.md", text.as_bytes());
    let w = want(&path, "T002");
    let mut tf = taskfile::TaskFile::open(&path, &ParseOptions::with_path(&path)).unwrap();
    // Renumbered: the planner is T003 now, and T002 is new work.
    let edited =
        "- [ ] T001 Write the parser\n- [ ] T002 Write the lexer\n- [ ] T003 Write the planner\n";
    std::fs::write(&path, edited).unwrap();
    let out = tf.check(&[w]).unwrap();
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        edited.replace("- [ ] T003", "- [x] T003")
    );
}

#[test]
fn device_and_fifo_task_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = taskfile::ensure_writable(Path::new("/dev/null")).unwrap_err();
    let cause = std::error::Error::source(&err).map(|c| c.to_string());
    assert_eq!(cause.as_deref(), Some("not a regular file"), "{err}");
    let fifo = dir.path().join("task.md");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(taskfile::ensure_writable(&fifo).is_err());
}

#[test]
fn temp_files_left_by_killed_runs_of_old_versions_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "task.md", SIMPLE.as_bytes());
    // A pid above the kernel's pid_max is never alive.
    let stale = write(dir.path(), ".task.md.mdbatch-2147483600.tmp", b"half");
    let live = write(
        dir.path(),
        &format!(".task.md.mdbatch-{}.tmp", std::process::id()),
        b"ours",
    );
    taskfile::TaskFile::open(&path, &ParseOptions::with_path(&path)).unwrap();
    assert!(!stale.exists());
    assert!(live.exists());
}

#[test]
fn ids_that_make_the_same_file_name_get_separate_logs() {
    use batch_core::store::log_path;
    let s = Path::new("/s");
    assert_ne!(log_path(s, "a/b", 1), log_path(s, "a_b", 1));
    let long = "x".repeat(100);
    assert_ne!(
        log_path(s, &format!("{long}1"), 1),
        log_path(s, &format!("{long}2"), 1)
    );
    // A plain id keeps its plain name (`mdbatch logs` finds old logs).
    assert_eq!(log_path(s, "T001", 2), Path::new("/s/logs/T001/2.log"));
}

#[test]
fn a_state_folder_that_is_a_symlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let state = dir.path().join(".mdbatch");
    std::fs::create_dir(&state).unwrap();
    let mine = state.join("task.md");
    std::os::unix::fs::symlink(&elsewhere, &mine).unwrap();
    let err = lock::RunLock::acquire(&mine, &dir.path().join("task.md")).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(journal::Journal::open(&mine, "r").is_err());
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn a_mdbatch_folder_that_is_a_symlink_gets_nothing_made_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.path().join(".mdbatch")).unwrap();
    let state = dir.path().join(".mdbatch").join("task.md");
    let task = dir.path().join("task.md");
    let err = lock::RunLock::acquire(&state, &task).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(journal::Journal::open(&state, "r").is_err());
    assert!(batch_core::store::make_state_dir(&state).is_err());
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "a folder was made through the link"
    );
}

#[test]
fn a_symlink_planted_at_a_log_folder_makes_no_write_or_delete_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let precious = write(&elsewhere, "1.log", b"precious");
    let state = dir.path().join(".mdbatch").join("task.md");
    std::fs::create_dir_all(state.join("logs")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, state.join("logs").join("a")).unwrap();
    let log = batch_core::store::log_path(&state, "a", 1);
    assert!(batch_core::store::prepare_log(&log).is_err());
    assert_eq!(std::fs::read(&precious).unwrap(), b"precious");
}

#[test]
fn an_earlier_runs_log_and_progress_of_the_same_attempt_are_removed_and_others_kept() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".mdbatch").join("task.md");
    std::fs::create_dir_all(&state).unwrap();
    // A first attempt: `logs/` is made, nothing else.
    let fresh = batch_core::store::log_path(&state, "fresh", 1);
    batch_core::store::prepare_log(&fresh).unwrap();
    assert!(state.join("logs").is_dir());
    assert!(!fresh.parent().unwrap().exists());
    // An earlier run's attempt 1 of `a` left its log and its progress file;
    // its attempt 2 and another task's files stay.
    let log = batch_core::store::log_path(&state, "a", 1);
    let progress = batch_core::store::progress_path(&log);
    let second = batch_core::store::log_path(&state, "a", 2);
    let other = batch_core::store::progress_path(&batch_core::store::log_path(&state, "b", 1));
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    for p in [&log, &progress, &second, &other] {
        std::fs::write(p, b"old").unwrap();
    }
    batch_core::store::prepare_log(&log).unwrap();
    assert!(!log.exists() && !progress.exists());
    assert!(second.exists() && other.exists());
    // A progress file left by a task that never printed (no log folder).
    let quiet = batch_core::store::log_path(&state, "quiet", 1);
    let quiet_progress = batch_core::store::progress_path(&quiet);
    std::fs::write(&quiet_progress, b"old").unwrap();
    batch_core::store::prepare_log(&quiet).unwrap();
    assert!(!quiet_progress.exists());
}

#[test]
fn journal_lines_are_durable_when_a_sync_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = journal::Journal::open(dir.path(), "run").unwrap();
    j.append(journal::JournalRecord::TaskReset { id: "a".into() })
        .unwrap();
    j.sync().unwrap();
    let read = journal::read(dir.path()).unwrap();
    assert_eq!(read.entries.len(), 1);
}
