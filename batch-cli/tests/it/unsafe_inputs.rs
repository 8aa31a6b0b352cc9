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
