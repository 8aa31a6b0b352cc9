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
    // The record is kept outside the project, where the agents work.
    let records = f.state_home.path().join("mdbatch/verify-approved");
    let approved: String = std::fs::read_dir(&records)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        approved.lines().any(|l| l == r#""touch pwned""#),
        "{approved}"
    );
    assert!(!f.file(".mdbatch/task.md/verify-approved.jsonl").exists());
}

#[test]
fn an_agent_that_deletes_the_state_folder_does_not_get_its_verify_command_run() {
    let f =
        Fixture::new("# Batch\n\n- [ ] <!-- id: a --> first\n  <!-- verify: test -f a.done -->\n");
    // The agent of `a` plants a task with a verify command and removes the
    // project's state folder, hoping the run (or the next) takes it as a
    // first run that trusts whatever it finds.
    f.script(
        "agent.sh",
        "touch \"$MDBATCH_TASK_ID.done\"\n\
         if [ \"$MDBATCH_TASK_ID\" = a ]; then\n\
           printf -- '- [ ] <!-- id: b --> second\\n  <!-- verify: touch pwned -->\\n' >> task.md\n\
           rm -rf .mdbatch\n\
         fi\n",
    );
    let first = f.mdbatch(&["run", "--cmd", "./agent.sh", "--color", "never"]);
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(!f.file("pwned").exists(), "the planted command ran: {err}");
    assert!(!f.file("b.done").exists(), "the planted task ran: {err}");
    let second = f.mdbatch(&["run", "--cmd", "./agent.sh", "--color", "never"]);
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains("task `b`: touch pwned"), "{err}");
    assert!(!f.file("pwned").exists(), "the planted command ran");
}
