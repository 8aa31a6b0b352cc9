//! `mdbatch run` in a git repository: each task in its own worktree, landed
//! as one commit through the merge queue. Real git in temporary repositories;
//! the stand-in agents synchronise through files (a barrier so that tasks
//! meant to collide really start from the same head), never by sleeping.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::Fixture;

/// A git repository holding `task.md` and the agent, committed.
struct Repo {
    f: Fixture,
    /// A folder outside the repository the agents use to meet (barriers).
    meet: tempfile::TempDir,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Lovelace")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Repo {
    fn new(task_md: &str, agent: &str, extra: &[(&str, &str)]) -> Self {
        let f = Fixture::new(task_md);
        f.script("agent.sh", agent);
        for (name, text) in extra {
            let p = f.file(name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(p, text).unwrap();
        }
        git(f.path(), &["init", "-q", "-b", "main"]);
        git(f.path(), &["config", "user.name", "Ada Lovelace"]);
        git(f.path(), &["config", "user.email", "ada@example.com"]);
        git(f.path(), &["add", "-A"]);
        git(f.path(), &["commit", "-q", "-m", "start"]);
        git(f.path(), &["tag", "start"]);
        let meet = tempfile::tempdir().unwrap();
        Self { f, meet }
    }

    fn run(&self, extra: &[&str]) -> Output {
        let mut args = vec!["run", "--cmd", "./agent.sh", "--color", "never"];
        args.extend_from_slice(extra);
        self.f
            .command(&args)
            .env("MEET", self.meet.path())
            .output()
            .expect("run mdbatch")
    }

    fn git(&self, args: &[&str]) -> String {
        git(self.f.path(), args)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.f.file(name)).unwrap_or_default()
    }

    fn journal(&self) -> String {
        let mut all = String::new();
        for entry in walk(&self.f.file(".mdbatch")) {
            if entry.extension().is_some_and(|e| e == "jsonl") {
                all.push_str(&std::fs::read_to_string(entry).unwrap_or_default());
            }
        }
        all
    }

    fn worktrees_dir(&self) -> PathBuf {
        let name = self
            .f
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        self.f
            .path()
            .parent()
            .unwrap()
            .join(format!("{name}.mdbatch-worktrees"))
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.worktrees_dir());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Waits (in the agent) until every task named in `$1…` has started: each
/// agent announces itself in `$MEET`, so tasks meant to collide all start
/// from the same head before any of them lands.
const BARRIER: &str = r#"barrier() {
  : > "$MEET/started-$MDBATCH_TASK_ID-$MDBATCH_ATTEMPT"
  for t in "$@"; do
    while [ ! -f "$MEET/started-$t-1" ]; do sleep 0.02; done
  done
}
"#;

#[test]
fn three_tasks_side_by_side_two_colliding_each_land_as_one_commit() {
    let agent = format!(
        "{BARRIER}\ncase \"$MDBATCH_TASK_ID\" in\n  alpha|beta) barrier alpha beta; echo \"$MDBATCH_TASK_ID line\" >> shared.txt ;;\n  gamma) echo gamma > gamma.txt ;;\nesac\necho \"worked in $MDBATCH_WORKDIR\"\n"
    );
    let r = Repo::new(
        "# Demo\n\n## Wave 1\n- [ ] Add alpha to shared <!-- id: alpha -->\n- [ ] Add beta to shared <!-- id: beta -->\n- [ ] Write gamma <!-- id: gamma -->\n",
        &agent,
        &[("shared.txt", "shared\n")],
    );
    let out = r.run(&["-j", "3"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");

    // One commit per task on the user's branch, linear, with trailers and
    // the user's identity; the checkout shows the result.
    let log = r.git(&["log", "--format=%s|%an|%P", "start..main"]);
    let subjects: Vec<&str> = log.lines().collect();
    assert_eq!(subjects.len(), 3, "{log}");
    assert!(
        subjects.iter().all(|l| l.contains("|Ada Lovelace|")),
        "{log}"
    );
    assert!(
        subjects
            .iter()
            .all(|l| !l.rsplit('|').next().unwrap().contains(' ')),
        "merge commits: {log}"
    );
    let trailers = r.git(&[
        "log",
        "--format=%(trailers:key=Mdbatch-Task,valueonly)",
        "start..main",
    ]);
    for id in ["alpha", "beta", "gamma"] {
        assert!(trailers.lines().any(|l| l.trim() == id), "{trailers}");
    }
    let shared = r.read("shared.txt");
    assert!(
        shared.contains("alpha line") && shared.contains("beta line"),
        "{shared}"
    );
    assert!(!shared.contains("<<<<<<<"), "{shared}");
    assert_eq!(r.read("gamma.txt"), "gamma\n");
    assert_eq!(r.read("task.md").matches("- [x]").count(), 3);

    // The collision was a retry of kind conflict, and every landing is in
    // the journal.
    let journal = r.journal();
    assert!(journal.contains("\"kind\":\"conflict\""), "{journal}");
    assert_eq!(
        journal.matches("\"type\":\"landed\"").count(),
        3,
        "{journal}"
    );
    assert!(all.contains("conflict in shared.txt"), "{all}");

    // Nothing left behind: no worktree, no mdbatch branch, a clean status.
    assert_eq!(r.git(&["worktree", "list"]).lines().count(), 1);
    assert_eq!(r.git(&["branch", "--list", "mdbatch/*"]), "");
    assert_eq!(r.git(&["status", "--porcelain"]).trim(), "M task.md");
    assert!(!r.worktrees_dir().exists());
}

#[test]
fn a_later_task_sees_what_its_dependency_landed() {
    let agent = "case \"$MDBATCH_TASK_ID\" in\n  first) echo one > one.txt ;;\n  second) test -f one.txt || { echo 'one.txt is missing' >&2; exit 1; }; cat one.txt > two.txt ;;\nesac\n";
    let r = Repo::new(
        "# Chain\n\n## Wave 1\n- [ ] Make one <!-- id: first -->\n\n## Wave 2\n- [ ] Make two from one <!-- id: second -->\n",
        agent,
        &[],
    );
    let junit = r.meet.path().join("junit.xml");
    let out = r.run(&["--junit", junit.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(r.read("two.txt"), "one\n");
    // The report names each task's landed commit.
    let xml = std::fs::read_to_string(&junit).unwrap();
    for commit in r.git(&["log", "--format=%H", "start..main"]).lines() {
        assert!(
            xml.contains(&format!("name=\"commit\" value=\"{commit}\"")),
            "{xml}"
        );
    }
    assert_eq!(
        r.git(&["log", "--format=%s", "start..main"])
            .lines()
            .count(),
        2
    );
}

#[test]
fn verify_runs_on_the_merged_result_and_a_change_failing_only_there_is_retried() {
    // Each task passes verify alone; the two together fail unless the later
    // one saw the other's file (which a retry from the new head does).
    let agent = format!(
        "{BARRIER}\nbarrier x y\nother=x; [ \"$MDBATCH_TASK_ID\" = x ] && other=y\nif [ -f \"$other.txt\" ]; then echo aware > \"$MDBATCH_TASK_ID.txt\"; else echo plain > \"$MDBATCH_TASK_ID.txt\"; fi\n"
    );
    let check = "#!/bin/sh\nif [ -f x.txt ] && [ -f y.txt ] && ! grep -q aware x.txt y.txt; then echo 'x and y disagree' >&2; exit 1; fi\n";
    let r = Repo::new(
        "# Verify\n\n## Wave 1\n- [ ] Write x <!-- id: x -->\n- [ ] Write y <!-- id: y -->\n",
        &agent,
        &[("check.sh", check)],
    );
    std::fs::set_permissions(
        r.f.file("check.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    r.git(&["add", "-A"]);
    r.git(&["commit", "-q", "-m", "check script"]);
    let out = r.run(&["-j", "2", "--verify", "./check.sh"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("verify failed on the merged result"), "{all}");
    // What landed passed its check.
    let xy = format!("{}{}", r.read("x.txt"), r.read("y.txt"));
    assert!(xy.contains("aware"), "{xy}");
    assert_eq!(
        r.git(&["log", "--format=%s", "HEAD~2..HEAD"])
            .lines()
            .count(),
        2
    );
}

#[test]
fn uncommitted_work_is_never_touched_and_the_command_to_bring_the_work_in_is_printed() {
    let agent = "echo task >> notes.txt\n";
    let r = Repo::new(
        "# Dirty\n\n## Wave 1\n- [ ] Append to notes <!-- id: notes -->\n",
        agent,
        &[("notes.txt", "notes\n"), ("other.txt", "other\n")],
    );
    std::fs::write(r.f.file("notes.txt"), "notes\nmine, not committed\n").unwrap();
    std::fs::write(r.f.file("other.txt"), "other\nalso mine\n").unwrap();
    let out = r.run(&[]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("uncommitted change"), "{all}");
    // The user's edits are intact; the task's commit waits on a branch, and
    // the one command that brings it in is printed.
    assert_eq!(r.read("notes.txt"), "notes\nmine, not committed\n");
    assert_eq!(r.read("other.txt"), "other\nalso mine\n");
    let branches = r.git(&["branch", "--list", "mdbatch/*/integration"]);
    let branch = branches.trim().trim_start_matches("* ").to_string();
    assert!(!branch.is_empty(), "no integration branch kept");
    assert!(
        all.contains(&format!("git merge --ff-only {branch}")),
        "{all}"
    );
    assert_eq!(
        r.git(&["show", &format!("{branch}:notes.txt")]),
        "notes\ntask\n"
    );
    assert!(r.read("task.md").contains("- [x]"));
}

#[test]
fn worktreeinclude_brings_ignored_files_into_each_worktree_without_committing_them() {
    let agent = "test -f .env || { echo '.env is missing' >&2; exit 1; }\ncat .env > used.txt\n";
    let r = Repo::new(
        "# Include\n\n## Wave 1\n- [ ] Use the env <!-- id: env -->\n",
        agent,
        &[(".gitignore", ".env\n"), (".worktreeinclude", ".env\n")],
    );
    std::fs::write(r.f.file(".env"), "SECRET=1\n").unwrap();
    let out = r.run(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(r.read("used.txt"), "SECRET=1\n");
    let files = r.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert!(
        files.contains("used.txt") && !files.contains(".env"),
        "{files}"
    );
}

#[test]
fn a_task_that_cannot_land_keeps_its_worktree_and_branch_for_inspection() {
    // Both rewrite the same line and neither may retry; `stubborn` commits
    // in its worktree itself (an agent may), which lands the same way.
    let agent = format!(
        "{BARRIER}\nbarrier first stubborn\nif [ \"$MDBATCH_TASK_ID\" = first ]; then echo first > line.txt; else echo stubborn > line.txt; git add -A >/dev/null; git -c user.name=x -c user.email=x@x commit -qm wip >/dev/null; fi\n"
    );
    let r = Repo::new(
        "# Stubborn\n\n## Wave 1\n- [ ] First <!-- id: first; retries: 0 -->\n- [ ] Stubborn <!-- id: stubborn; retries: 0 -->\n",
        &agent,
        &[("line.txt", "base\n")],
    );
    let out = r.run(&["-j", "2"]);
    let all = text(&out);
    // Whichever landed second failed with a conflict naming the file.
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("conflict in line.txt"), "{all}");
    let kept: Vec<String> = r
        .git(&["worktree", "list", "--porcelain"])
        .lines()
        .filter_map(|l| l.strip_prefix("worktree ").map(str::to_string))
        .skip(1)
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "the failed task's worktree is kept: {kept:?}"
    );
    assert!(Path::new(&kept[0]).starts_with(r.worktrees_dir()));
    assert_eq!(
        r.git(&["branch", "--list", "mdbatch/*/*-a1"])
            .lines()
            .count(),
        1
    );

    // `status` shows it, with its task, path and branch.
    let out = r.f.mdbatch(&["status", "--color", "never"]);
    let all = text(&out);
    assert!(all.contains("kept worktrees"), "{all}");
    assert!(all.contains(&kept[0]), "{all}");
    let json = r.f.mdbatch(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let task = v["kept_worktrees"][0]["task"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(task == "first" || task == "stubborn", "{v}");

    // `mdbatch clean` removes what was kept and says how much it freed.
    let out = r.f.mdbatch(&["clean", "--dry-run"]);
    assert!(text(&out).contains("would remove"), "{}", text(&out));
    assert_eq!(r.git(&["worktree", "list"]).lines().count(), 2);
    let out = r.f.mdbatch(&["clean"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("removed 1 worktree and 1 branch"), "{all}");
    assert!(all.contains("freed"), "{all}");
    assert_eq!(r.git(&["worktree", "list"]).lines().count(), 1);
    assert_eq!(r.git(&["branch", "--list", "mdbatch/*"]), "");
}

#[test]
fn outside_git_worktree_isolation_is_a_clear_error_and_the_default_runs_in_place() {
    let f = Fixture::new("# Plain\n\n## Wave 1\n- [ ] Do it <!-- id: it -->\n");
    f.script("agent.sh", "pwd > where.txt\n");
    let out = f.mdbatch(&["run", "--cmd", "./agent.sh", "--isolate", "worktree"]);
    let all = text(&out);
    assert!(!out.status.success());
    assert!(all.contains("not inside a git repository"), "{all}");
    assert!(all.contains("--isolate none"), "{all}");
    let out = f.mdbatch(&["run", "--cmd", "./agent.sh"]);
    assert!(out.status.success(), "{}", text(&out));
    let here = f.path().canonicalize().unwrap();
    assert_eq!(
        Path::new(std::fs::read_to_string(f.file("where.txt")).unwrap().trim())
            .canonicalize()
            .unwrap(),
        here
    );
}

#[test]
fn kill_9_between_commit_and_landing_lands_the_commit_on_the_rerun_without_running_the_agent() {
    // verify runs on the merged result before the ref moves: the task's
    // commit exists, nothing has landed. It blocks until released.
    let agent = "echo \"$MDBATCH_TASK_ID\" >> \"$MEET/ran.log\"\necho made > made.txt\n";
    let verify = "#!/bin/sh\n: > \"$MEET/verifying\"\nwhile [ ! -f \"$MEET/release\" ]; do sleep 0.02; done\n";
    let r = Repo::new(
        "# Kill\n\n## Wave 1\n- [ ] Make it <!-- id: make -->\n",
        agent,
        &[("verify.sh", verify)],
    );
    std::fs::set_permissions(
        r.f.file("verify.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    r.git(&["add", "-A"]);
    r.git(&["commit", "-q", "-m", "verify script"]);
    r.git(&["tag", "-f", "start"]);
    let mut child =
        r.f.command(&[
            "run",
            "--cmd",
            "./agent.sh",
            "--verify",
            "./verify.sh",
            "--color",
            "never",
        ])
        .env("MEET", r.meet.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    super::wait_for(
        "verify to start",
        std::time::Duration::from_secs(30),
        || r.meet.path().join("verifying").exists(),
    );
    // SAFETY: kill(2) on the pid of the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    std::fs::write(r.meet.path().join("release"), "").unwrap();
    assert_eq!(
        r.git(&["log", "--format=%s", "start..main"]),
        "",
        "nothing landed yet"
    );

    let out = r.run(&["--verify", "./verify.sh", "--verbose"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("did not land it: landing it now"), "{all}");
    // The agent ran once, the task landed once, its box is checked, and the
    // killed run's worktree and branches are gone.
    let ran = std::fs::read_to_string(r.meet.path().join("ran.log")).unwrap();
    assert_eq!(ran.lines().count(), 1, "{ran}");
    assert_eq!(
        r.git(&["log", "--format=%s", "start..main"])
            .lines()
            .count(),
        1
    );
    assert_eq!(r.read("made.txt"), "made\n");
    assert!(r.read("task.md").contains("- [x] Make it"));
    assert_eq!(r.git(&["worktree", "list"]).lines().count(), 1);
    assert_eq!(r.git(&["branch", "--list", "mdbatch/*"]), "");
}

#[test]
fn a_crash_after_landing_and_before_the_box_is_checked_checks_it_on_the_rerun() {
    let agent = "echo \"$MDBATCH_TASK_ID\" >> \"$MEET/ran.log\"\necho \"$MDBATCH_TASK_ID\" > \"$MDBATCH_TASK_ID.txt\"\n";
    let r = Repo::new(
        "# Crash\n\n## Wave 1\n- [ ] One <!-- id: one -->\n- [ ] Two <!-- id: two -->\n",
        agent,
        &[],
    );
    let out = r.run(&[]);
    assert!(out.status.success(), "{}", text(&out));
    // The state a kill -9 right after landing leaves: commits landed, the
    // journal has no end of run, the boxes are open. (Landed before its box,
    // one task with its journal lines, the other with only its start.)
    let journal_path = walk(&r.f.file(".mdbatch"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let journal = std::fs::read_to_string(&journal_path).unwrap();
    let kept: String = journal
        .lines()
        .filter(|l| {
            let two_after_start = l.contains("\"id\":\"two\"") && !l.contains("attempt_start");
            !l.contains("\"type\":\"run_end\"") && !two_after_start
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&journal_path, kept).unwrap();
    std::fs::write(
        r.f.file("task.md"),
        "# Crash\n\n## Wave 1\n- [ ] One <!-- id: one -->\n- [ ] Two <!-- id: two -->\n",
    )
    .unwrap();

    let out = r.run(&[]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let ran = std::fs::read_to_string(r.meet.path().join("ran.log")).unwrap();
    assert_eq!(ran.lines().count(), 2, "no landed task runs again: {ran}");
    assert_eq!(r.read("task.md").matches("- [x]").count(), 2);
    assert_eq!(
        r.git(&["log", "--format=%s", "start..main"])
            .lines()
            .count(),
        2
    );
}

#[test]
fn into_lands_on_another_branch_and_leaves_the_checked_out_one_alone() {
    let agent = "echo \"$MDBATCH_TASK_ID\" > \"$MDBATCH_TASK_ID.txt\"\n";
    let r = Repo::new(
        "# Into\n\n## Wave 1\n- [ ] One <!-- id: one -->\n- [ ] Two <!-- id: two -->\n",
        agent,
        &[],
    );
    r.git(&["branch", "release"]);
    let out = r.run(&["--into", "release"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        r.git(&["log", "--format=%s", "start..release"])
            .lines()
            .count(),
        2
    );
    assert_eq!(r.git(&["log", "--format=%s", "start..main"]), "");
    assert!(!r.f.file("one.txt").exists());
    assert_eq!(r.git(&["branch", "--list", "mdbatch/*"]), "");
}

#[test]
fn commit_without_isolation_makes_one_commit_per_task_and_refuses_a_dirty_checkout() {
    let agent = "echo \"$MDBATCH_TASK_ID\" > \"$MDBATCH_TASK_ID.txt\"\n";
    let r = Repo::new(
        "# Commit\n\n## Wave 1\n- [ ] One <!-- id: one -->\n- [ ] Two <!-- id: two -->\n",
        agent,
        &[("mine.txt", "mine\n")],
    );
    let out = r.run(&["--isolate", "none", "--commit"]);
    let all = text(&out);
    assert!(!out.status.success());
    assert!(all.contains("-j 1"), "{all}");

    std::fs::write(r.f.file("mine.txt"), "mine, changed\n").unwrap();
    let out = r.run(&["--isolate", "none", "--commit", "-j", "1"]);
    let all = text(&out);
    assert!(!out.status.success());
    assert!(
        all.contains("git stash -u") && all.contains("mine.txt"),
        "{all}"
    );
    r.git(&["checkout", "mine.txt"]);

    let out = r.run(&["--isolate", "none", "--commit", "-j", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    let log = r.git(&["log", "--format=%s", "start..main"]);
    assert_eq!(log.lines().count(), 2, "{log}");
    assert_eq!(r.git(&["status", "--porcelain"]).trim(), "M task.md");
    assert_eq!(r.git(&["worktree", "list"]).lines().count(), 1);
}

#[test]
fn reset_failed_removes_the_failed_tasks_kept_worktree() {
    let agent = "echo nope >&2\nexit 1\n";
    let r = Repo::new(
        "# Reset\n\n## Wave 1\n- [ ] Fail <!-- id: fail; retries: 0 -->\n",
        agent,
        &[],
    );
    let out = r.run(&[]);
    assert!(!out.status.success());
    assert_eq!(r.git(&["worktree", "list"]).lines().count(), 2, "kept");
    let out = r.f.mdbatch(&["reset", "--failed", "--yes"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("removed 1 kept worktree and 1 branch"),
        "{all}"
    );
    assert_eq!(r.git(&["worktree", "list"]).lines().count(), 1);
    assert_eq!(r.git(&["branch", "--list", "mdbatch/*"]), "");
}
