//! Tests against real git in temporary repositories.

use std::fs;
use std::path::{Path, PathBuf};

use super::git::Git;
use super::*;

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    repo: Repo,
    wt_dir: PathBuf,
}

fn git(dir: &Path, args: &[&str]) -> String {
    Git::new(dir).args(args).output_string().unwrap()
}

fn write(path: impl AsRef<Path>, text: &str) {
    let path = path.as_ref();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path).unwrap()
}

const SHARED: &str = "one\ntwo\nthree\nfour\nfive\nsix\nseven\n";

/// A repository `proj` on `main` with a task file, `.mdbatch/` ignored by
/// its own `.gitignore` (as mdbatch writes it), and a shared file.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("proj");
    fs::create_dir(&root).unwrap();
    git(&root, &["init", "--quiet", "-b", "main"]);
    git(&root, &["config", "user.name", "Test User"]);
    git(&root, &["config", "user.email", "test@example.org"]);
    git(&root, &["config", "commit.gpgsign", "false"]);
    write(root.join("README.md"), "# proj\n");
    write(root.join("shared.txt"), SHARED);
    write(root.join("task.md"), "- [ ] A\n- [ ] B\n- [ ] C\n");
    write(root.join(".gitignore"), "*.log\n");
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "--quiet", "-m", "initial"]);
    // mdbatch's own state: present, written after the commit, invisible.
    write(root.join(".mdbatch/.gitignore"), "*\n");
    write(root.join(".mdbatch/journal.jsonl"), "{}\n");
    let repo = Repo::open(&root).unwrap();
    let wt_dir = default_worktree_dir(&repo);
    Fixture {
        _tmp: tmp,
        root,
        repo,
        wt_dir,
    }
}

const EXCLUDE: &[&str] = &["task.md", ".mdbatch"];

impl Fixture {
    fn worktree(&self, task: &str, attempt: u32, base: &str) -> TaskWorktree {
        create_task_worktree(
            &self.repo,
            &TaskWorktreeSpec {
                worktree_dir: &self.wt_dir,
                run: "run1",
                task,
                attempt,
                base,
                include: IncludeMode::Copy,
            },
        )
        .unwrap()
    }

    fn squash(&self, wt: &TaskWorktree, id: &str) -> Option<String> {
        let message = TaskMessage {
            subject: format!("Task {id}"),
            body: vec![format!("Task: {id} (task.md), attempt 1, agent: test")],
            task_id: id.to_string(),
        };
        squash(&SquashSpec {
            worktree: &wt.path,
            base: &wt.base,
            exclude: EXCLUDE,
            message: &message,
            identity: &self.repo.identity().unwrap(),
        })
        .unwrap()
    }

    fn opts(&self) -> LandOptions {
        LandOptions::new(self.repo.identity().unwrap())
    }

    fn land(&self, target: &str, commit: &str) -> LandOutcome {
        land(&self.repo, target, commit, &self.opts()).unwrap()
    }

    fn tip(&self, rev: &str) -> String {
        self.repo.commit_id(rev).unwrap()
    }

    fn show(&self, rev_path: &str) -> String {
        git(&self.root, &["show", rev_path])
    }

    fn worktree_paths(&self) -> Vec<PathBuf> {
        self.repo
            .worktrees()
            .unwrap()
            .into_iter()
            .map(|w| w.path)
            .collect()
    }
}

fn landed<V: std::fmt::Debug>(outcome: LandOutcome<V>) -> String {
    match outcome {
        LandOutcome::Landed { commit, .. } => commit,
        other => panic!("expected a landing, got {other:?}"),
    }
}

#[test]
fn open_reports_layout_and_head() {
    let f = fixture();
    fs::create_dir(f.root.join("sub")).unwrap();
    let repo = Repo::open(f.root.join("sub")).unwrap();
    let canon = |p: &Path| p.canonicalize().unwrap();
    assert_eq!(canon(repo.root()), canon(&f.root));
    assert_eq!(canon(repo.git_dir()), canon(&f.root.join(".git")));
    assert_eq!(repo.git_dir(), repo.common_dir());
    assert_eq!(repo.head().branch(), Some("main"));
    assert!(repo.version() >= GitVersion::MINIMUM);
    assert!(is_git_repo(&f.root).unwrap());

    let head = f.tip("HEAD");
    git(&f.root, &["checkout", "--quiet", "--detach"]);
    assert_eq!(
        Repo::open(&f.root).unwrap().head(),
        &Head::Detached {
            commit: head.clone()
        }
    );

    let wt = f.worktree("linked", 1, &head);
    let linked = Repo::open(&wt.path).unwrap();
    assert_ne!(linked.git_dir(), linked.common_dir());
    assert_eq!(canon(linked.common_dir()), canon(&f.root.join(".git")));
    assert_eq!(linked.head().branch(), Some(wt.branch.as_str()));
}

#[test]
fn outside_git_is_not_a_repository() {
    let tmp = tempfile::tempdir().unwrap();
    // Skip when the temp folder itself sits inside some work tree.
    if is_git_repo(tmp.path()).unwrap() {
        eprintln!(
            "skipped: {} is inside a git work tree",
            tmp.path().display()
        );
        return;
    }
    let err = Repo::open(tmp.path()).unwrap_err();
    assert!(matches!(err, GitError::NotARepository { .. }), "{err}");
    assert!(err.to_string().contains("--isolate none"));
    assert!(matches!(
        is_git_repo(tmp.path().join("missing")),
        Err(GitError::Io { .. })
    ));
}

#[test]
fn dirty_check_sees_user_work_but_not_task_file_or_state() {
    let f = fixture();
    assert_eq!(f.repo.uncommitted_changes(EXCLUDE).unwrap(), vec![]);
    write(f.root.join("task.md"), "- [x] A\n- [ ] B\n- [ ] C\n");
    write(f.root.join("debug.log"), "ignored\n");
    assert_eq!(f.repo.uncommitted_changes(EXCLUDE).unwrap(), vec![]);

    write(f.root.join("notes/todo.txt"), "mine\n");
    write(f.root.join("README.md"), "# proj, edited\n");
    write(f.root.join("shared.txt"), "staged\n");
    git(&f.root, &["add", "shared.txt"]);
    let mut got: Vec<(String, String)> = f
        .repo
        .uncommitted_changes(EXCLUDE)
        .unwrap()
        .into_iter()
        .map(|e| (e.code, e.path))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (" M".to_string(), "README.md".to_string()),
            ("??".to_string(), "notes/todo.txt".to_string()),
            ("M ".to_string(), "shared.txt".to_string()),
        ]
    );
    // Without the exclusions the task file shows up too.
    assert!(
        f.repo
            .uncommitted_changes(&[])
            .unwrap()
            .iter()
            .any(|e| e.path == "task.md")
    );
}

#[test]
fn default_worktree_dir_is_outside_the_checkout_and_invisible_to_status() {
    let f = fixture();
    let root = f.root.canonicalize().unwrap();
    assert!(
        !f.wt_dir.ancestors().any(|a| a == root || a == f.root),
        "{} must not be under {}",
        f.wt_dir.display(),
        root.display()
    );
    let wt = f.worktree("A", 1, "main");
    assert!(wt.path.starts_with(&f.wt_dir));
    // Tools searching upward from the worktree (cargo, npm) never reach the
    // main checkout.
    assert!(!wt.path.ancestors().any(|a| a == f.root));
    // Neither the worktree nor `.mdbatch/` shows up in the user's status.
    assert_eq!(f.repo.uncommitted_changes(&[]).unwrap(), vec![]);
}

#[test]
fn parallel_tasks_conflict_is_detected_named_and_never_lands_markers() {
    let f = fixture();
    let start = f.tip("main");
    create_branch(&f.repo, "mdbatch/run1/integration", &start).unwrap();
    let target = "mdbatch/run1/integration";

    // Three tasks side by side from the same head.
    let a = f.worktree("A", 1, &start);
    let b = f.worktree("B", 1, &start);
    let c = f.worktree("C", 1, &start);
    // A commits by itself; B leaves its edits uncommitted; C only adds an
    // untracked file. A and B both rewrite line two of shared.txt.
    write(a.path.join("a.txt"), "from A\n");
    write(a.path.join("shared.txt"), &SHARED.replace("two", "two (A)"));
    git(&a.path, &["add", "-A"]);
    git(&a.path, &["commit", "--quiet", "-m", "agent's own commit"]);
    write(a.path.join("task.md"), "- [x] A (agent ticked it)\n");
    write(b.path.join("b.txt"), "from B\n");
    write(b.path.join("shared.txt"), &SHARED.replace("two", "two (B)"));
    write(c.path.join("c.txt"), "from C\n");

    let ca = f.squash(&a, "A").unwrap();
    let cb = f.squash(&b, "B").unwrap();
    let cc = f.squash(&c, "C").unwrap();
    // One commit on the base each, the task file left out.
    for (commit, wt) in [(&ca, &a), (&cb, &b), (&cc, &c)] {
        assert_eq!(f.tip(&format!("{commit}^")), start);
        assert_eq!(f.tip(&wt.branch), *commit);
    }
    let files_a = git(&f.root, &["show", "--format=", "--name-only", &ca]);
    assert_eq!(
        files_a.lines().collect::<Vec<_>>(),
        vec!["a.txt", "shared.txt"]
    );

    let la = landed(f.land(target, &ca));
    assert_eq!(
        la, ca,
        "first landing on the unchanged base is the task commit itself"
    );
    let lc = landed(f.land(target, &cc));
    assert_eq!(f.tip(&format!("{lc}^")), la);

    let before = f.tip(target);
    let LandOutcome::Conflict(conflict) = f.land(target, &cb) else {
        panic!("B must conflict with A");
    };
    assert_eq!(conflict.files, vec!["shared.txt".to_string()]);
    assert_eq!(conflict.tip, before);
    // What the retry prompt shows as the task's previous diff.
    let diff = commit_diff(&f.repo, &cb).unwrap();
    assert!(
        diff.contains("+two (B)") && diff.contains("+from B"),
        "{diff}"
    );
    let ids: Vec<_> = conflict
        .collided
        .iter()
        .map(|t| t.task_id.clone())
        .collect();
    assert_eq!(
        ids,
        vec![Some("A".to_string())],
        "C did not touch shared.txt"
    );
    assert_eq!(f.tip(target), before, "a conflict moves nothing");
    let markers = Git::new(&f.root)
        .args(["grep", "-n", "<<<<<<<", target])
        .succeeds()
        .unwrap();
    assert!(!markers, "no conflict marker on the target");

    // The retry: a fresh worktree from the new head, B redoes its change.
    let b2 = f.worktree("B", 2, target);
    assert_eq!(
        read(b2.path.join("shared.txt")),
        SHARED.replace("two", "two (A)")
    );
    write(b2.path.join("b.txt"), "from B\n");
    write(
        b2.path.join("shared.txt"),
        &SHARED.replace("two", "two (A) (B)"),
    );
    let cb2 = f.squash(&b2, "B").unwrap();
    let lb = landed(f.land(target, &cb2));

    let log = git(
        &f.root,
        &[
            "log",
            "--format=%s|%an|%(trailers:key=Mdbatch-Task,valueonly)",
            &format!("{start}..{target}"),
        ],
    );
    assert_eq!(
        log.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>(),
        vec![
            "Task B|Test User|B",
            "Task C|Test User|C",
            "Task A|Test User|A"
        ]
    );
    assert_eq!(
        git(&f.root, &["rev-list", "--merges", target]),
        "",
        "linear history"
    );
    assert_eq!(
        f.show(&format!("{lb}:shared.txt")),
        SHARED.replace("two", "two (A) (B)")
    );
    for file in ["a.txt", "b.txt", "c.txt"] {
        f.show(&format!("{lb}:{file}"));
    }
    assert_eq!(
        f.show(&format!("{lb}:task.md")),
        "- [ ] A\n- [ ] B\n- [ ] C\n"
    );
}

#[test]
fn landed_commit_keeps_the_task_message_and_author() {
    let f = fixture();
    create_branch(&f.repo, "mdbatch/run1/integration", "main").unwrap();
    let target = "mdbatch/run1/integration";
    let a = f.worktree("A", 1, "main");
    let b = f.worktree("B", 1, "main");
    write(a.path.join("a.txt"), "a\n");
    write(b.path.join("b.txt"), "b\n");
    let ca = f.squash(&a, "A").unwrap();
    // B's commit is authored by someone else; the lander commits it.
    let other = Identity {
        name: "Other Person".into(),
        email: "other@example.org".into(),
        source: IdentitySource::Config,
    };
    let message = TaskMessage {
        subject: "Task B".into(),
        body: vec!["body line".into()],
        task_id: "B".into(),
    };
    let cb = squash(&SquashSpec {
        worktree: &b.path,
        base: &b.base,
        exclude: EXCLUDE,
        message: &message,
        identity: &other,
    })
    .unwrap()
    .unwrap();
    landed(f.land(target, &ca));
    let lb = landed(f.land(target, &cb));
    assert_ne!(lb, cb);
    let fmt = "%an <%ae> %at|%cn|%B";
    assert_eq!(
        git(&f.root, &["log", "-1", &format!("--format={fmt}"), &lb])
            .split_once('|')
            .unwrap()
            .0,
        git(&f.root, &["log", "-1", &format!("--format={fmt}"), &cb])
            .split_once('|')
            .unwrap()
            .0,
    );
    assert_eq!(
        git(&f.root, &["log", "-1", "--format=%cn|%B", &lb]),
        format!("Test User|{}\n", message.render())
    );
}

#[test]
fn squash_ignores_task_file_and_state_and_reports_no_change() {
    let f = fixture();
    let wt = f.worktree("A", 1, "main");
    write(wt.path.join("task.md"), "- [x] A\n");
    write(wt.path.join(".mdbatch/other.txt"), "x\n");
    write(wt.path.join("build.log"), "ignored\n");
    assert_eq!(f.squash(&wt, "A"), None);
    fs::remove_file(wt.path.join("README.md")).unwrap();
    let c = f.squash(&wt, "A").unwrap();
    let files = git(&f.root, &["show", "--format=", "--name-status", &c]);
    assert_eq!(files, "D\tREADME.md\n");
}

#[test]
fn dependency_chain_sees_the_earlier_tasks_file() {
    let f = fixture();
    create_branch(&f.repo, "mdbatch/run1/integration", "main").unwrap();
    let target = "mdbatch/run1/integration";
    let first = f.worktree("1", 1, target);
    write(first.path.join("lib.txt"), "needed later\n");
    let c1 = f.squash(&first, "1").unwrap();
    landed(f.land(target, &c1));
    let second = f.worktree("2", 1, target);
    assert_eq!(read(second.path.join("lib.txt")), "needed later\n");
    write(
        second.path.join("use.txt"),
        &read(second.path.join("lib.txt")),
    );
    let c2 = f.squash(&second, "2").unwrap();
    let l2 = landed(f.land(target, &c2));
    assert_eq!(f.tip(&format!("{l2}^")), c1);
}

#[test]
fn worktreeinclude_brings_in_only_ignored_listed_paths() {
    let f = fixture();
    write(
        f.root.join(".gitignore"),
        "*.log\n.env\nnode_modules/\nbuild/\nconfig/*.local\n",
    );
    write(
        f.root.join(WORKTREE_INCLUDE_FILE),
        "# what the work needs\n.env\nnode_modules/\nconfig/*.local\nnotes.txt\n",
    );
    git(&f.root, &["add", ".gitignore", WORKTREE_INCLUDE_FILE]);
    git(&f.root, &["commit", "--quiet", "-m", "ignore files"]);
    write(f.root.join(".env"), "SECRET=1\n");
    write(
        f.root.join("node_modules/pkg/index.js"),
        "module.exports = 1;\n",
    );
    write(f.root.join("config/dev.local"), "local\n");
    write(f.root.join("config/tracked.txt"), "t\n");
    write(f.root.join("build/out.bin"), "not listed\n");
    write(f.root.join("notes.txt"), "untracked but not ignored\n");
    assert_eq!(
        worktree_include_entries(&f.repo).unwrap(),
        vec![".env", "config/dev.local", "node_modules/"]
    );
    let wt = f.worktree("A", 1, "main");
    assert_eq!(
        wt.included,
        vec![".env", "config/dev.local", "node_modules/"]
    );
    assert_eq!(read(wt.path.join(".env")), "SECRET=1\n");
    assert_eq!(
        read(wt.path.join("node_modules/pkg/index.js")),
        "module.exports = 1;\n"
    );
    assert!(!wt.path.join("node_modules").is_symlink());
    assert!(!wt.path.join("build").exists());
    assert!(!wt.path.join("notes.txt").exists());
    // Copied ignored files never end up in the task's commit.
    write(wt.path.join("x.txt"), "x\n");
    let c = f.squash(&wt, "A").unwrap();
    assert_eq!(
        git(&f.root, &["show", "--format=", "--name-only", &c]),
        "x.txt\n"
    );

    let linked = create_task_worktree(
        &f.repo,
        &TaskWorktreeSpec {
            worktree_dir: &f.wt_dir,
            run: "run1",
            task: "B",
            attempt: 1,
            base: "main",
            include: IncludeMode::Symlink,
        },
    )
    .unwrap();
    assert!(linked.path.join("node_modules").is_symlink());
    assert_eq!(read(linked.path.join(".env")), "SECRET=1\n");
}

#[test]
fn moved_target_during_verify_is_recomputed_and_verified_again() {
    let f = fixture();
    create_branch(&f.repo, "mdbatch/run1/integration", "main").unwrap();
    let target = "mdbatch/run1/integration";
    let a = f.worktree("A", 1, "main");
    let b = f.worktree("B", 1, "main");
    write(a.path.join("a.txt"), "a\n");
    write(b.path.join("b.txt"), "b\n");
    let ca = f.squash(&a, "A").unwrap();
    let cb = f.squash(&b, "B").unwrap();

    let mut seen = Vec::new();
    let outcome = land_verified(&f.repo, target, &cb, &f.opts(), |cand| {
        seen.push(cand.old_tip.clone());
        if seen.len() == 1 {
            // Another lander wins the race while we verify.
            git(
                &f.root,
                &["update-ref", "refs/heads/mdbatch/run1/integration", &ca],
            );
        }
        Ok::<(), String>(())
    })
    .unwrap();
    let LandOutcome::Landed { old_tip, commit } = outcome else {
        panic!("expected a landing, got {outcome:?}");
    };
    assert_eq!(seen, vec![f.tip("main"), ca.clone()]);
    assert_eq!(old_tip, ca);
    assert_eq!(f.tip(&format!("{commit}^")), ca);
    assert_eq!(f.tip(target), commit);

    // A stale candidate's compare-and-swap fails without moving anything.
    let stale = Candidate {
        old_tip: f.tip("main"),
        commit: cb.clone(),
    };
    assert!(!publish(&f.repo, target, &stale, "test").unwrap());
    assert_eq!(f.tip(target), commit);

    // A ref that never stops moving ends in a clear error.
    let mut opts = f.opts();
    opts.max_attempts = 3;
    let c = f.worktree("C", 1, "main");
    write(c.path.join("c.txt"), "c\n");
    let cc = f.squash(&c, "C").unwrap();
    let tips = [ca.clone(), commit.clone()];
    let mut n = 0;
    let err = land_verified(&f.repo, target, &cc, &opts, |cand| {
        n += 1;
        let next = tips.iter().find(|t| **t != cand.old_tip).unwrap();
        git(
            &f.root,
            &["update-ref", "refs/heads/mdbatch/run1/integration", next],
        );
        Ok::<(), String>(())
    })
    .unwrap_err();
    assert_eq!(n, 3, "verified once per attempt");
    assert!(
        matches!(err, GitError::Contention { attempts: 3, .. }),
        "{err}"
    );
}

#[test]
fn verify_runs_on_the_merged_result_and_can_fail_only_there() {
    let f = fixture();
    create_branch(&f.repo, "mdbatch/run1/integration", "main").unwrap();
    let target = "mdbatch/run1/integration";
    // A edits the top of shared.txt, B the bottom: no textual conflict,
    // but the check "not both" fails once both are in.
    let a = f.worktree("A", 1, "main");
    let b = f.worktree("B", 1, "main");
    write(a.path.join("shared.txt"), &SHARED.replace("one", "alpha"));
    write(b.path.join("shared.txt"), &SHARED.replace("seven", "beta"));
    let ca = f.squash(&a, "A").unwrap();
    let cb = f.squash(&b, "B").unwrap();
    let scratch_dir = f.wt_dir.join("run1/verify");
    let check = |cand: &Candidate| -> std::result::Result<(), String> {
        let wt = ScratchWorktree::create(&f.repo, &cand.commit, &scratch_dir, IncludeMode::Copy)
            .unwrap();
        let text = read(wt.path().join("shared.txt"));
        let verdict = if text.contains("alpha") && text.contains("beta") {
            Err("alpha and beta together".to_string())
        } else {
            Ok(())
        };
        wt.remove().unwrap();
        verdict
    };
    // B alone passes its check.
    assert!(
        check(&Candidate {
            old_tip: f.tip("main"),
            commit: cb.clone()
        })
        .is_ok()
    );
    landed(land_verified(&f.repo, target, &ca, &f.opts(), check).unwrap());
    let before = f.tip(target);
    let outcome = land_verified(&f.repo, target, &cb, &f.opts(), check).unwrap();
    let LandOutcome::VerifyFailed { candidate, failure } = outcome else {
        panic!("expected a verify failure, got {outcome:?}");
    };
    assert_eq!(failure, "alpha and beta together");
    assert_eq!(candidate.old_tip, before);
    assert_eq!(f.tip(target), before, "nothing lands that failed its check");
    assert!(!scratch_dir.exists());
    assert_eq!(f.worktree_paths().len(), 3, "main, A and B only");
}

#[test]
fn land_refuses_a_branch_checked_out_somewhere() {
    let f = fixture();
    let a = f.worktree("A", 1, "main");
    write(a.path.join("a.txt"), "a\n");
    let ca = f.squash(&a, "A").unwrap();
    let err = land(&f.repo, "main", &ca, &f.opts()).unwrap_err();
    assert!(
        matches!(err, GitError::BranchCheckedOut { ref branch, .. } if branch == "main"),
        "{err}"
    );
    assert_ne!(f.tip("main"), ca);
}

#[test]
fn checkout_fast_forwards_keeping_local_changes_or_refuses() {
    let f = fixture();
    let result = "mdbatch/run1/integration";
    create_branch(&f.repo, result, "main").unwrap();
    let a = f.worktree("A", 1, "main");
    write(a.path.join("shared.txt"), &SHARED.replace("two", "two (A)"));
    write(a.path.join("a.txt"), "a\n");
    let la = landed(f.land(result, &f.squash(&a, "A").unwrap()));

    // Local changes to files the landing does not touch are kept, staged
    // or not.
    write(f.root.join("README.md"), "# proj, local edit\n");
    write(f.root.join(".gitignore"), "*.log\n*.tmp\n");
    git(&f.root, &["add", ".gitignore"]);
    write(f.root.join("scratch.txt"), "untracked\n");
    let old = f.tip("main");
    let up = fast_forward_checkout(&f.root, "main", result, result).unwrap();
    assert_eq!(
        up,
        CheckoutUpdate::Updated {
            from: old,
            to: la.clone()
        }
    );
    assert_eq!(f.tip("main"), la);
    assert_eq!(
        read(f.root.join("shared.txt")),
        SHARED.replace("two", "two (A)")
    );
    assert_eq!(read(f.root.join("a.txt")), "a\n");
    assert_eq!(read(f.root.join("README.md")), "# proj, local edit\n");
    let mut status: Vec<String> = f
        .repo
        .uncommitted_changes(EXCLUDE)
        .unwrap()
        .into_iter()
        .map(|e| format!("{}{}", e.code, e.path))
        .collect();
    status.sort();
    assert_eq!(
        status,
        vec![" MREADME.md", "??scratch.txt", "M .gitignore"],
        "index not stale"
    );
    assert_eq!(
        fast_forward_checkout(&f.root, "main", result, result).unwrap(),
        CheckoutUpdate::UpToDate
    );

    // A local change in a file the landing touches: refuse, touch nothing.
    let b = f.worktree("B", 1, result);
    write(b.path.join("shared.txt"), &SHARED.replace("six", "six (B)"));
    let lb = landed(f.land(result, &f.squash(&b, "B").unwrap()));
    write(f.root.join("shared.txt"), "my own edit\n");
    let up = fast_forward_checkout(&f.root, "main", &lb, result).unwrap();
    assert_eq!(
        up,
        CheckoutUpdate::Refused {
            files: vec!["shared.txt".into()],
            command: format!("git merge --ff-only {result}"),
        }
    );
    assert_eq!(f.tip("main"), la, "branch not moved");
    assert_eq!(read(f.root.join("shared.txt")), "my own edit\n");
    // Staged, the same.
    git(&f.root, &["add", "shared.txt"]);
    assert!(matches!(
        fast_forward_checkout(&f.root, "main", &lb, result).unwrap(),
        CheckoutUpdate::Refused { .. }
    ));
    assert_eq!(f.show(":shared.txt"), "my own edit\n");

    // The user committed meanwhile: not a fast-forward.
    git(&f.root, &["commit", "--quiet", "-m", "user work"]);
    assert_eq!(
        fast_forward_checkout(&f.root, "main", &lb, result).unwrap(),
        CheckoutUpdate::Diverged {
            command: format!("git merge {result}")
        }
    );
    // Another branch checked out: nothing moves.
    git(&f.root, &["checkout", "--quiet", "-b", "elsewhere"]);
    assert!(matches!(
        fast_forward_checkout(&f.root, "main", &lb, result).unwrap(),
        CheckoutUpdate::NotOnBranch { .. }
    ));
}

#[test]
fn resume_tells_committed_from_landed() {
    let f = fixture();
    let start = f.tip("main");
    let target = "mdbatch/run1/integration";
    create_branch(&f.repo, target, &start).unwrap();
    create_branch(&f.repo, target, &start).unwrap(); // idempotent
    let t1 = f.worktree("T1", 1, target);
    write(t1.path.join("one.txt"), "1\n");
    let t10 = f.worktree("T10", 1, target);
    write(t10.path.join("ten.txt"), "10\n");
    assert_eq!(
        task_land_state(&f.repo, target, Some(&start), Some(&t1.branch), "T1").unwrap(),
        TaskLandState::NotCommitted
    );
    let c10 = f.squash(&t10, "T10").unwrap();
    landed(f.land(target, &c10));
    // T10's trailer does not count for T1.
    assert_eq!(
        task_land_state(&f.repo, target, Some(&start), Some(&t1.branch), "T1").unwrap(),
        TaskLandState::NotCommitted
    );
    let c1 = f.squash(&t1, "T1").unwrap();
    assert_eq!(
        task_land_state(&f.repo, target, Some(&start), Some(&t1.branch), "T1").unwrap(),
        TaskLandState::Committed { commit: c1.clone() }
    );
    let l1 = landed(f.land(target, &c1));
    assert_eq!(
        task_land_state(&f.repo, target, Some(&start), Some(&t1.branch), "T1").unwrap(),
        TaskLandState::Landed { commit: l1.clone() }
    );
    // Landing again is harmless: the change is already there.
    assert_eq!(f.land(target, &c1), LandOutcome::NoChange { tip: l1 });
    // A later run starting from here does not see the old landing.
    assert_eq!(
        task_land_state(&f.repo, target, Some(target), None, "T1").unwrap(),
        TaskLandState::NotCommitted
    );
}

#[test]
fn clean_removes_worktrees_and_branches_and_reports_bytes() {
    let f = fixture();
    let a = f.worktree("A", 1, "main");
    let b = f.worktree("B", 1, "main");
    write(a.path.join("big.bin"), &"x".repeat(10_000));
    write(b.path.join("dirty.txt"), "uncommitted\n");
    git(&f.root, &["branch", "mdbatch/run0/orphan-a1", "main"]);
    let scratch = ScratchWorktree::create(
        &f.repo,
        "main",
        &f.wt_dir.join("run1/verify"),
        IncludeMode::Copy,
    )
    .unwrap();
    let scratch_path = scratch.path().to_path_buf();
    drop(scratch);
    assert!(
        !scratch_path.exists(),
        "dropping a scratch worktree removes it"
    );

    let left = list_leftovers(&f.repo, Some(&f.wt_dir)).unwrap();
    let mut branches: Vec<_> = left.iter().filter_map(|l| l.branch.clone()).collect();
    branches.sort();
    assert_eq!(
        branches,
        vec![
            "mdbatch/run0/orphan-a1".to_string(),
            a.branch.clone(),
            b.branch.clone(),
        ]
    );
    let bytes: u64 = left.iter().map(|l| l.bytes).sum();
    assert!(bytes >= 10_000, "{bytes}");
    assert_eq!(
        left.iter()
            .find(|l| l.branch.as_deref() == Some(a.branch.as_str()))
            .unwrap()
            .bytes,
        disk_usage(&a.path).unwrap()
    );

    let report = clean(&f.repo, &left).unwrap();
    assert_eq!(report.bytes_freed, bytes);
    assert_eq!(report.worktrees.len(), 2);
    assert_eq!(report.branches.len(), 3);
    assert_eq!(list_leftovers(&f.repo, Some(&f.wt_dir)).unwrap(), vec![]);
    let porcelain = git(&f.root, &["worktree", "list", "--porcelain"]);
    assert_eq!(porcelain.matches("worktree ").count(), 1, "{porcelain}");
    assert!(!a.path.exists() && !b.path.exists());
    // Removing what is already gone is fine (a resumed clean).
    remove_worktree(&f.repo, &a.path).unwrap();
    delete_branch(&f.repo, &a.branch).unwrap();
}

#[test]
fn squash_uses_the_fallback_identity_when_given_it() {
    let f = fixture();
    let wt = f.worktree("A", 1, "main");
    write(wt.path.join("a.txt"), "a\n");
    let id = Identity {
        name: Identity::FALLBACK_NAME.into(),
        email: Identity::FALLBACK_EMAIL.into(),
        source: IdentitySource::Fallback,
    };
    let msg = TaskMessage {
        subject: "A".into(),
        body: vec![],
        task_id: "A".into(),
    };
    let c = squash(&SquashSpec {
        worktree: &wt.path,
        base: &wt.base,
        exclude: EXCLUDE,
        message: &msg,
        identity: &id,
    })
    .unwrap()
    .unwrap();
    assert_eq!(
        git(&f.root, &["log", "-1", "--format=%an <%ae>|%cn <%ce>", &c]).trim(),
        "mdbatch <mdbatch@localhost>|mdbatch <mdbatch@localhost>"
    );
    assert_eq!(f.repo.identity().unwrap().source, IdentitySource::Config);
}

#[test]
fn git_variables_of_the_caller_never_leak_in() {
    // Environment variables are process-wide: the check runs in a child
    // copy of this test binary started with a hostile git environment.
    if std::env::var_os("GITLAND_HOSTILE_ENV_CHILD").is_some() {
        let f = fixture();
        let wt = f.worktree("A", 1, "main");
        write(wt.path.join("a.txt"), "a\n");
        let c = f.squash(&wt, "A").unwrap();
        assert_eq!(f.tip(&format!("{c}^")), f.tip("main"));
        assert_eq!(f.repo.uncommitted_changes(EXCLUDE).unwrap(), vec![]);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "land::tests::git_variables_of_the_caller_never_leak_in",
            "--test-threads=1",
        ])
        .env("GITLAND_HOSTILE_ENV_CHILD", "1")
        .env("GIT_DIR", "/nonexistent/.git")
        .env("GIT_WORK_TREE", "/nonexistent")
        .env("GIT_INDEX_FILE", "/nonexistent/index")
        .env("GIT_CONFIG_PARAMETERS", "'user.name'='Leaked'")
        .env("LC_ALL", "de_DE.UTF-8")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn relative_paths_are_repository_relative_and_stay_inside() {
    let f = fixture();
    assert_eq!(
        f.repo.relative_path(f.root.join("task.md")).unwrap(),
        "task.md"
    );
    // A file that does not exist yet, in a folder that does.
    fs::create_dir(f.root.join("docs")).unwrap();
    assert_eq!(
        f.repo.relative_path(f.root.join("docs/new.md")).unwrap(),
        "docs/new.md"
    );
    assert_eq!(f.repo.relative_path("./.mdbatch").unwrap(), ".mdbatch");
    assert!(matches!(
        f.repo.relative_path("../elsewhere"),
        Err(GitError::InvalidName { .. })
    ));
    assert!(matches!(
        f.repo.relative_path(f.root.parent().unwrap().join("x")),
        Err(GitError::InvalidName { .. })
    ));
}

#[test]
fn a_change_carrying_conflict_markers_never_lands() {
    let f = fixture();
    let target = "mdbatch/run1/integration";
    create_branch(&f.repo, target, "main").unwrap();
    let a = f.worktree("A", 1, "main");
    // The agent ran a merge itself and left it half done.
    write(
        a.path.join("shared.txt"),
        "one\n<<<<<<< HEAD\ntwo\n=======\ntwo (theirs)\n>>>>>>> other\nthree\n",
    );
    // A Markdown heading underline is not a marker.
    write(a.path.join("doc.md"), "Title\n=======\n");
    let ca = f.squash(&a, "A").unwrap();
    assert_eq!(
        f.land(target, &ca),
        LandOutcome::MarkersInChange {
            files: vec!["shared.txt".into()]
        }
    );
    assert_eq!(f.tip(target), f.tip("main"));

    let b = f.worktree("B", 1, "main");
    write(b.path.join("doc.md"), "Title\n=======\n");
    landed(f.land(target, &f.squash(&b, "B").unwrap()));
}

#[test]
fn checkout_refuses_when_an_untracked_file_is_in_the_way() {
    let f = fixture();
    let result = "mdbatch/run1/integration";
    create_branch(&f.repo, result, "main").unwrap();
    let a = f.worktree("A", 1, "main");
    write(a.path.join("new.txt"), "from the task\n");
    let la = landed(f.land(result, &f.squash(&a, "A").unwrap()));
    write(f.root.join("new.txt"), "the user's own\n");
    let before = f.tip("main");
    assert_eq!(
        fast_forward_checkout(&f.root, "main", &la, result).unwrap(),
        CheckoutUpdate::Refused {
            files: vec!["new.txt".into()],
            command: format!("git merge --ff-only {result}"),
        }
    );
    assert_eq!(read(f.root.join("new.txt")), "the user's own\n");
    assert_eq!(f.tip("main"), before);
}
