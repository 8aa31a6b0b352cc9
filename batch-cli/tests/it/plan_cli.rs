//! `mdbatch plan` and `mdbatch check` as a user runs them: output on stdout,
//! diagnostics on stderr, exit codes, the default file name.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../batch-core/tests/fixtures"
    ))
    .join(name);
    std::fs::read_to_string(path).expect("fixture exists")
}

/// A temporary folder holding `files`.
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

fn mdbatch(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mdbatch"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .expect("mdbatch runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Snapshot settings that hide the temporary folder's path.
fn redacted(dir: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(&regex_escape(&dir.display().to_string()), "[DIR]");
    s
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[test]
fn plan_prints_each_dialect_fixture_as_waves_groups_and_tasks() {
    for (fixture_name, snapshot) in [
        ("waves.md", "plan_waves"),
        ("spec-kit.md", "plan_spec_kit"),
        ("kiro.md", "plan_kiro"),
    ] {
        let dir = folder(&[("tasks.md", &fixture(fixture_name))]);
        let out = mdbatch(dir.path(), &["plan", "tasks.md"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(stderr(&out), "", "nothing on stderr for a clean file");
        insta::assert_snapshot!(snapshot, stdout(&out));
    }
}

#[test]
fn plan_finds_task_md_then_tasks_md_in_the_current_folder() {
    let dir = folder(&[("tasks.md", &fixture("kiro.md"))]);
    let out = mdbatch(dir.path(), &["plan"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("tasks.md: 7 tasks to run in 1 wave\n"));
    std::fs::write(dir.path().join("task.md"), "# One\n\n- [ ] only task\n").expect("write");
    let out = mdbatch(dir.path(), &["plan"]);
    assert!(
        stdout(&out).starts_with("task.md: 1 task to run in 1 wave\n"),
        "{}",
        stdout(&out)
    );
    let empty = folder(&[]);
    let out = mdbatch(empty.path(), &["plan"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no task.md or tasks.md in this folder"));
}

#[test]
fn plan_flags_change_the_plan() {
    let dir = folder(&[("tasks.md", &fixture("spec-kit.md"))]);
    let out = mdbatch(dir.path(), &["plan", "--cross-wave", "--only", "T014-T016"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("cross-wave: on"), "{text}");
    assert!(text.contains("T016"), "{text}");
    assert!(!text.contains(". T017"), "{text}");
    // T015 says it depends on T012, so story 1 up to T012 comes along.
    assert!(
        text.contains("not selected by --only: T013, T017, T018, T019"),
        "{text}"
    );
    let kiro = folder(&[("tasks.md", &fixture("kiro.md"))]);
    let out = mdbatch(kiro.path(), &["plan", "--include-optional"]);
    assert!(
        stdout(&out).contains("2.3  Write property tests"),
        "{}",
        stdout(&out)
    );
    let out = mdbatch(kiro.path(), &["plan", "--dialect", "waves"]);
    assert!(
        stdout(&out).contains("dialect: waves (set by --dialect)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn plan_formats_json_dot_and_mermaid() {
    let dir = folder(&[("tasks.md", &fixture("kiro.md"))]);
    let out = mdbatch(dir.path(), &["plan", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["v"], 1);
    assert_eq!(v["type"], "plan");
    assert_eq!(v["data"]["file"], "tasks.md");
    let out = mdbatch(dir.path(), &["plan", "--format", "dot"]);
    insta::assert_snapshot!("plan_kiro_dot", stdout(&out));
    let out = mdbatch(dir.path(), &["plan", "--format", "mermaid"]);
    assert!(stdout(&out).starts_with("flowchart TD\n"));
}

#[test]
fn plan_of_a_file_with_a_cycle_prints_the_cycle_compiler_style_and_exits_2() {
    let text = "# Tasks\n\n## Build\n\n- [ ] T001 Parser (depends on T003)\n- [ ] T002 Planner\n- [ ] T003 Runner (depends on T001)\n";
    let dir = folder(&[("tasks.md", text)]);
    let out = mdbatch(dir.path(), &["plan", "--color", "never"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "", "nothing on stdout when there is no plan");
    insta::assert_snapshot!("plan_cycle_stderr", stderr(&out));
}

#[test]
fn check_reports_every_problem_at_once_and_exits_1() {
    let text = "# Tasks\n\n- [ ] T000 read the spec first\n\n## Phase 1: Setup\n<!-- paralel: false -->\n\n- [ ] T001 Create `src/app.py`\n- [ ] T002 [P]\n- [ ] T003 [P] Add routes to `src/app.py` (depends on T099)\n\n## Phase 2: Core\n\n- [ ] T004 [P] Add the model in `src/models.py`\n- [ ] T005 [P] Add the view in `src/models.py`\n\n## Validation Checklist\n\n- [ ] All tests pass\n";
    let dir = folder(&[("tasks.md", text)]);
    let out = mdbatch(dir.path(), &["check", "--color", "never"]);
    let err = stderr(&out);
    // A hint error does not hide the plan's errors or the lints: every
    // problem of the file is listed at once, in line order.
    assert_eq!(out.status.code(), Some(1), "{err}");
    let hint = err.find("unknown hint key `paralel`").expect(&err);
    let empty = err.find("task `T002` is empty").expect(&err);
    let unknown = err.find("names `T099`").expect(&err);
    assert!(hint < empty && empty < unknown, "{err}");
    assert!(err.ends_with("tasks.md: 2 errors, 1 warning\n"), "{err}");
    let fixed = text.replace("<!-- paralel: false -->\n", "");
    std::fs::write(dir.path().join("tasks.md"), &fixed).expect("write");
    let out = mdbatch(dir.path(), &["check", "--color", "never"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    insta::assert_snapshot!("check_problems_stderr", stderr(&out));
}

#[test]
fn check_of_a_clean_file_prints_a_one_line_summary_and_exits_0() {
    let dir = folder(&[("tasks.md", &fixture("spec-kit.md"))]);
    let out = mdbatch(dir.path(), &["check", "tasks.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "tasks.md: 18 tasks to run in 5 waves, 1 done; 0 errors, 0 warnings\n"
    );
    assert_eq!(stderr(&out), "");
}

#[test]
fn check_warnings_alone_exit_0() {
    let text = "# Plan\n\n## Wave 1\n\n- [ ] Edit `src/a.rs`\n- [ ] Also edit `src/a.rs`\n\n## Wave 2\n\n- [ ] Ship\n";
    let dir = folder(&[("tasks.md", text)]);
    let out = mdbatch(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "tasks.md: 3 tasks to run in 2 waves; 0 errors, 1 warning\n"
    );
    let err = stderr(&out);
    assert!(err.starts_with("warning: "), "{err}");
    assert!(err.contains(" --> tasks.md:6:1\n"), "{err}");
    assert!(err.contains("6 | - [ ] Also edit `src/a.rs`\n"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no colour when stderr is not a terminal"
    );
}

#[test]
fn check_colours_only_when_asked_and_never_with_no_color() {
    let text = "# Plan\n\n## Wave 1\n\n- [ ] Edit `src/a.rs`\n- [ ] Also edit `src/a.rs`\n\n## Wave 2\n\n- [ ] Ship\n";
    let dir = folder(&[("tasks.md", text)]);
    let out = mdbatch(dir.path(), &["check", "--color", "always"]);
    assert!(stderr(&out).starts_with('\u{1b}'), "{}", stderr(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_mdbatch"))
        .args(["check"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    assert!(!stderr(&out).contains('\u{1b}'));
}

#[test]
fn check_of_a_missing_file_is_a_usage_error() {
    let dir = folder(&[]);
    let out = mdbatch(dir.path(), &["check", "nope.md"]);
    assert_eq!(out.status.code(), Some(2));
    let s = redacted(dir.path());
    s.bind(|| insta::assert_snapshot!("check_missing_stderr", stderr(&out)));
}

#[test]
fn show_prompt_prints_the_prompt_a_subagent_would_get() {
    let dir = folder(&[("tasks.md", &fixture("spec-kit.md"))]);
    let out = mdbatch(dir.path(), &["plan", "--show-prompt", "T012"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let p = stdout(&out);
    assert!(p.contains("Implement BookmarkService.save"), "{p}");
    assert!(
        p.contains("Design documents from"),
        "the preamble is part of the prompt: {p}"
    );
    std::fs::write(dir.path().join("prompt.txt"), "Do {id}: {task}\n").expect("write");
    let out = mdbatch(
        dir.path(),
        &[
            "plan",
            "--show-prompt",
            "T012",
            "--prompt-template",
            "prompt.txt",
        ],
    );
    assert_eq!(
        stdout(&out),
        "Do T012: [US1] Implement BookmarkService.save in `src/services/bookmarks.py`\n"
    );
    let out = mdbatch(dir.path(), &["plan", "--show-prompt", "T999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no task `T999`"));
}

#[test]
fn check_lists_a_two_task_cycle_beside_other_errors_and_reads_misspelt_hints() {
    let text = "# P\n\n## A\n\n- [ ] one <!-- id: a; after: b -->\n- [ ] two <!-- id: b; after: a -->\n- [ ] three <!-- retries=2 -->\n- [ ] four <!-- id: x; id: y -->\n- [ ] five <!-- after: nosuch -->\n\n## B\n\n- [ ] six\n";
    let dir = folder(&[("tasks.md", text)]);
    let out = mdbatch(dir.path(), &["check", "--color", "never"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for want in [
        "error: dependency cycle: a → b → a",
        "error: hint `retries=2` is written with `=`; mdbatch reads `key: value`",
        "= help: write `retries: 2`",
        "error: hint `id` is given twice in one comment",
        "error: `after:` names `nosuch`",
    ] {
        assert!(err.contains(want), "{want:?} in\n{err}");
    }
    assert!(err.ends_with("tasks.md: 4 errors, 0 warnings\n"), "{err}");
}

#[test]
fn run_setup_errors_show_the_source_line_and_caret() {
    let text = "# P\n\n## A\n\n- [ ] one <!-- id: a; after: b -->\n- [ ] two <!-- id: b; after: a -->\n\n## B\n\n- [ ] three\n";
    let dir = folder(&[("tasks.md", text)]);
    let out = mdbatch(
        dir.path(),
        &["run", "--cmd", "true {id}", "--color", "never"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("error: dependency cycle: a → b → a"), "{err}");
    assert!(err.contains(" --> tasks.md:5:1\n"), "{err}");
    assert!(
        err.contains("5 | - [ ] one <!-- id: a; after: b -->\n"),
        "{err}"
    );
    assert!(err.contains("  | ^\n"), "{err}");
}

#[test]
fn plan_and_check_count_the_same_tasks_and_waves() {
    let text = "# Plan\n\n## Phase 1\n\n- [x] done one\n- [ ] open one\n\n## Phase 2\n\n- [x] done two\n\n## Phase 3\n\n- [ ] open three\n\n## Acceptance Criteria\n\n- [ ] it works\n";
    let dir = folder(&[("tasks.md", text)]);
    let plan = stdout(&mdbatch(dir.path(), &["plan"]));
    assert!(
        plan.starts_with("tasks.md: 2 tasks to run in 2 waves\n"),
        "{plan}"
    );
    assert!(plan.contains("\nwave 1: Phase 1\n"), "{plan}");
    assert!(
        plan.contains("\nPhase 2: nothing to run (1 done)\n"),
        "{plan}"
    );
    assert!(plan.contains("\nwave 2: Phase 3\n"), "{plan}");
    assert!(!plan.contains("wave 3"), "{plan}");
    assert!(
        plan.contains("Acceptance Criteria: nothing to run (1 check, not work)"),
        "{plan}"
    );
    let check = mdbatch(dir.path(), &["check"]);
    assert_eq!(
        stdout(&check),
        "tasks.md: 2 tasks to run in 2 waves, 2 done, 1 not run (see `mdbatch plan`); 0 errors, 0 warnings\n"
    );
}

#[test]
fn an_empty_only_is_a_usage_error_for_plan_and_run() {
    let dir = folder(&[("task.md", "- [ ] <!-- id: a --> one\n")]);
    for args in [
        &["plan", "--only", ""][..],
        &["plan", "--only", "a,,"],
        &["run", "--cmd", "true", "--only", ""],
    ] {
        let out = mdbatch(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("an empty name selects no task"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("task.md")).unwrap(),
        "- [ ] <!-- id: a --> one\n"
    );
}
