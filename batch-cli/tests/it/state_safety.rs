//! The state folder end to end: one owned by someone else is refused, an
//! I/O error says what the system said, and ids that make the same file
//! name keep their logs and progress apart.

use std::os::unix::fs::MetadataExt;

use super::Fixture;

const TASKS: &str = "# Batch\n\n- [ ] one <!-- id: a -->\n";

/// A fixture with [`TASKS`] whose agent records that it ran.
fn fixture() -> Fixture {
    let f = Fixture::new(TASKS);
    f.script("agent.sh", "echo \"$MDBATCH_TASK_ID\" >> ran.log\n");
    f
}

fn chown(path: &std::path::Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown");
}

#[test]
fn a_state_folder_owned_by_another_user_is_refused_and_nothing_runs() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "skipped: giving a folder to another user (chown) needs root; CI runs the tests as root"
        );
        return;
    }
    // `.mdbatch/task.md` is someone else's: nothing is written into it.
    let f = fixture();
    let state = f.file(".mdbatch/task.md");
    std::fs::create_dir_all(&state).unwrap();
    chown(&state, 4242);
    for args in [
        &["run", "--cmd", "./agent.sh"][..],
        &["run", "--detach", "--cmd", "./agent.sh"],
    ] {
        let out = f.mdbatch(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(
                ".mdbatch/task.md: refusing the state folder: it is owned by another user"
            ),
            "{args:?}: {stderr}"
        );
        assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0, "{args:?}");
        assert_eq!(std::fs::metadata(&state).unwrap().uid(), 4242);
        assert!(!f.file("ran.log").exists(), "{args:?}");
        assert_eq!(f.task_md(), TASKS);
    }
    // `.mdbatch` itself is someone else's.
    let f = fixture();
    let base = f.file(".mdbatch");
    std::fs::create_dir(&base).unwrap();
    chown(&base, 4242);
    for args in [
        &["run", "--cmd", "./agent.sh"][..],
        &["run", "--detach", "--cmd", "./agent.sh"],
    ] {
        let out = f.mdbatch(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(".mdbatch: refusing the state folder: it is owned by another user"),
            "{args:?}: {stderr}"
        );
        assert!(!f.file("ran.log").exists(), "{args:?}");
        assert_eq!(f.task_md(), TASKS);
    }
}

#[test]
fn an_io_error_in_the_state_folder_keeps_the_systems_own_words() {
    // A folder where the journal or the lock file should be: opening it
    // fails with EISDIR, the same on every system and for every user.
    for (name, what) in [
        ("journal.jsonl", "cannot open the journal"),
        ("lock", "cannot open the lock file"),
    ] {
        let f = fixture();
        std::fs::create_dir_all(f.file(&format!(".mdbatch/task.md/{name}"))).unwrap();
        let out = f.mdbatch(&["run", "--cmd", "./agent.sh"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        let cause = std::io::Error::from_raw_os_error(libc::EISDIR).to_string();
        assert!(
            stderr.contains(&format!(".mdbatch/task.md/{name}: {what}: {cause}")),
            "{name}: the cause `{cause}` is missing: {stderr}"
        );
        assert!(!f.file("ran.log").exists(), "{name}");
        assert_eq!(f.task_md(), TASKS);
    }
}

#[test]
fn ids_that_make_the_same_file_name_keep_their_logs_and_progress_apart() {
    let f = Fixture::new("# Batch\n\n- [ ] one <!-- id: a/b -->\n- [ ] two <!-- id: a_b -->\n");
    // Both run at once; each prints its id and writes it as progress.
    f.script(
        "agent.sh",
        r#"echo "output of $MDBATCH_TASK_ID"
echo "progress of $MDBATCH_TASK_ID" >> "$MDBATCH_PROGRESS_FILE"
"#,
    );
    let out = f.mdbatch(&["run", "--cmd", "./agent.sh", "-j", "2"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (id, other) in [("a/b", "a_b"), ("a_b", "a/b")] {
        let out = f.mdbatch(&["logs", id]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "logs {id}: {text}");
        assert!(
            text.contains(&format!("output of {id}\n")),
            "logs {id}: {text}"
        );
        assert!(
            text.contains(&format!("progress of {id}\n")),
            "logs {id}: {text}"
        );
        assert!(!text.contains(&format!("of {other}")), "logs {id}: {text}");
    }
    // Two log folders and two progress files, one per id.
    let logs = f.file(".mdbatch/task.md/logs");
    let mut progress: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "progress"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    progress.sort();
    assert_eq!(progress, ["progress of a/b\n", "progress of a_b\n"]);
}
