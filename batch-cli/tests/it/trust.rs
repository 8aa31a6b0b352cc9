//! A `verify:` command written into the task file by an agent does not run
//! without the user's say-so.

use super::Fixture;

#[test]
fn a_verify_command_an_agent_planted_is_refused_until_the_user_approves_it() {
    let f =
        Fixture::new("# Batch\n\n- [ ] <!-- id: a --> first\n  <!-- verify: test -f a.done -->\n");
    // The agent of `a` does its work, and plants a task with a verify
    // command of its own at the end of the file.
    f.script(
        "agent.sh",
        "touch \"$MDBATCH_TASK_ID.done\"\n\
         if [ \"$MDBATCH_TASK_ID\" = a ]; then\n\
           printf -- '- [ ] <!-- id: b --> second\\n  <!-- verify: touch pwned -->\\n' >> task.md\n\
         fi\n",
    );
    let first = f.mdbatch(&["run", "--cmd", "./agent.sh", "--color", "never"]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(f.task_md().contains("- [x] <!-- id: a -->"));

    // The next run (no terminal to ask on) refuses to start, naming it.
    let second = f.mdbatch(&["run", "--cmd", "./agent.sh", "--color", "never"]);
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains("task `b`: touch pwned"), "{err}");
    assert!(err.contains("--trust-verify"), "{err}");
    assert!(!f.file("pwned").exists(), "the planted command ran");
    assert!(!f.file("b.done").exists(), "the run started");

    // Reviewed and approved, it runs, and is approved from then on.
    let third = f.mdbatch(&["run", "--cmd", "./agent.sh", "--trust-verify"]);
    assert_eq!(
        third.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
    assert!(f.file("pwned").exists());
    let approved =
        std::fs::read_to_string(f.file(".mdbatch/task.md/verify-approved.jsonl")).unwrap();
    assert!(
        approved.lines().any(|l| l == r#""touch pwned""#),
        "{approved}"
    );
}
