//! Inputs that could make a run do what the user did not ask: `--cmd`
//! templates that let task text become an option, task files that are not
//! regular files, and state folders planted as symlinks.

use super::Fixture;

#[test]
fn a_cmd_template_with_task_text_right_after_a_flag_is_warned_about_on_stderr() {
    let f = Fixture::new("# Batch\n\n- [ ] words.txt <!-- id: a -->\n");
    std::fs::write(f.file("words.txt"), "b\na\n").unwrap();
    std::fs::write(f.file("list.txt"), "c\n").unwrap();
    let out = f.mdbatch(&[
        "run",
        "--cmd",
        "sort -r {task} list.txt",
        "--color",
        "never",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: --cmd passes {task} to `sort` as an argument of its own"),
        "{stderr}"
    );
    assert!(stderr.contains("sort -r -- {task} list.txt"), "{stderr}");
    // The safe spelling is not warned about.
    let f = Fixture::new("# Batch\n\n- [ ] words.txt <!-- id: a -->\n");
    std::fs::write(f.file("words.txt"), "b\na\n").unwrap();
    std::fs::write(f.file("list.txt"), "c\n").unwrap();
    let out = f.mdbatch(&[
        "run",
        "--cmd",
        "sort -r -- {task} list.txt",
        "--color",
        "never",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("warning: --cmd"), "{stderr}");
}

/// Whether `/dev/.mdbatch` exists (a run on a device would make it).
fn dev_state() -> bool {
    std::path::Path::new("/dev/.mdbatch")
        .symlink_metadata()
        .is_ok()
}

#[test]
fn run_on_dev_null_is_refused_before_anything_is_created_with_or_without_detach() {
    let existed = dev_state();
    if existed {
        eprintln!("note: /dev/.mdbatch exists already; only the refusals are checked");
    }
    let f = Fixture::new("# Batch\n\n- [ ] a\n");
    for args in [
        &["run", "--cmd", "true", "/dev/null"][..],
        &["run", "--detach", "--cmd", "true", "/dev/null"],
    ] {
        let out = f.mdbatch(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("/dev/null: the task file is a character device, not a regular file"),
            "{args:?}: {stderr}"
        );
        if !existed {
            assert!(!dev_state(), "{args:?} made /dev/.mdbatch");
        }
        assert!(!f.file(".mdbatch").exists(), "{args:?}");
    }
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

#[test]
fn a_fifo_as_the_task_file_is_refused_promptly_by_every_command() {
    let f = Fixture::new("# Batch\n\n- [ ] a\n");
    let fifo = f.file("pipe.md");
    mkfifo(&fifo);
    for args in [
        &["run", "--cmd", "true", "pipe.md"][..],
        &["run", "--detach", "--cmd", "true", "pipe.md"],
        &["plan", "pipe.md"],
        &["check", "pipe.md"],
        &["status", "pipe.md"],
    ] {
        // Opening a FIFO for reading blocks until a writer comes: nobody
        // writes here, so a command that opens it never ends. The limit
        // only bounds the failure; a refusal takes milliseconds.
        let mut child = f
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if start.elapsed() > std::time::Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let status = status.unwrap_or_else(|| panic!("{args:?} hung on the FIFO: {stderr}"));
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("pipe.md: the task file is a FIFO (named pipe), not a regular file"),
            "{args:?}: {stderr}"
        );
        assert!(!f.file(".mdbatch").exists(), "{args:?}");
    }
}

#[test]
fn a_detached_run_with_mdbatch_planted_as_a_symlink_writes_nothing_through_it() {
    let f = Fixture::new("# Batch\n\n- [ ] a <!-- id: a -->\n");
    f.script("agent.sh", "echo ran >> ran.log\n");
    let elsewhere = f.file("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, f.file(".mdbatch")).unwrap();
    let out = f.mdbatch(&["run", "--detach", "--cmd", "./agent.sh"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(".mdbatch: refusing the state folder: it is a symbolic link"),
        "{stderr}"
    );
    let made: Vec<_> = std::fs::read_dir(&elsewhere).unwrap().collect();
    assert!(made.is_empty(), "written through the link: {made:?}");
    assert!(!f.file("ran.log").exists());
    // `stop` has nothing to stop and writes nothing there either.
    let out = f.mdbatch(&["stop"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn a_launcher_arg_hint_that_would_write_a_file_refuses_the_run_naming_its_line() {
    let f = Fixture::new(
        "# Batch\n\n- [ ] a <!-- id: a -->\n- [ ] b <!-- id: b; launcher-arg: --output=pwned -->\n",
    );
    f.script("agent.sh", "echo ran >> ran.log\n");
    let out = f.mdbatch(&["run", "--launcher", "slurm", "--cmd", "./agent.sh"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("task.md:4:") && stderr.contains("launcher-arg: --output=pwned: refused"),
        "{stderr}"
    );
    assert!(stderr.contains("--launcher-arg"), "{stderr}");
    assert!(!f.file("ran.log").exists() && !f.file("pwned").exists());
}
