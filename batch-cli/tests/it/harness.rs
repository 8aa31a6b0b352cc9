//! The harness that keeps issue 13 fixed: random `kill -9`s across waves,
//! retries and write-back; an editor saving the task file throughout a run;
//! a subagent that tries every escape. Seeded (`MDBATCH_HARNESS_SEED`,
//! printed) and bounded: every wait has a limit, and runs synchronise with
//! the subagents through the files they write.
//!
//! Each test prints one `harness:` line with its counts (kills survived,
//! saves kept, escapes tried).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mdbatch");

/// At least this many `kill -9`s per run of the suite.
const KILLS: usize = 20;

/// xorshift64*: small, seeded, good enough to pick kill points.
struct Rng(u64);

impl Rng {
    fn seeded(test: &str) -> Self {
        let seed = std::env::var("MDBATCH_HARNESS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x005e_ed13);
        eprintln!("harness: {test}: seed {seed} (set MDBATCH_HARNESS_SEED to replay)");
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// In `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn script(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn lines(dir: &Path, name: &str) -> usize {
    read(dir, name).lines().count()
}

fn mdbatch(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .arg("run")
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("CI")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Waits (bounded) until `cond` holds or `child` has exited; whether it holds.
fn wait_until(child: &mut Child, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if child.try_wait().unwrap().is_some() || Instant::now() > until {
            return cond();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Panics unless `now` is `original` with some `[ ]` turned `[x]` and
/// nothing else, keeping every box `before` had checked.
fn assert_only_flips(original: &[u8], before: &[u8], now: &[u8], when: &str) {
    assert_eq!(
        original.len(),
        now.len(),
        "{when}: the file changed length:\n{}",
        String::from_utf8_lossy(now)
    );
    for i in 0..now.len() {
        if original[i] != now[i] {
            assert!(
                original[i] == b' ' && now[i] == b'x' && i > 0 && original[i - 1] == b'[',
                "{when}: byte {i} changed from {:?} to {:?}:\n{}",
                original[i] as char,
                now[i] as char,
                String::from_utf8_lossy(now)
            );
        }
        if before[i] == b'x' && original[i] == b' ' {
            assert_eq!(now[i], b'x', "{when}: a checked box was unchecked");
        }
    }
}

fn kill9(child: &mut Child) {
    child.kill().unwrap(); // SIGKILL: no cleanup code of mdbatch runs
    child.wait().unwrap();
}

/// Three waves of eight tasks; every third task fails its first attempt.
fn batch_file() -> String {
    let mut s = String::from("# Harness\n\nSome context the agents read.\n");
    for w in 1..=3 {
        s.push_str(&format!("\n## Wave {w}\n\n"));
        for t in 1..=8 {
            s.push_str(&format!(
                "- [ ] <!-- id: w{w}t{t} --> task {t} of wave {w}\n"
            ));
        }
    }
    s
}

/// The agent: notes a start of a task whose box is already checked (the
/// violation), fails the first attempt of every third task, works briefly,
/// and logs its end.
const AGENT: &str = r#"id=$MDBATCH_TASK_ID
if grep -qF -- "- [x] <!-- id: $id -->" task.md; then echo "$id" >> violations; fi
echo $$ >> pids
sleep 30 & echo $! >> pids
echo "$id" >> started.log
case "$id" in *t3|*t6) if [ ! -f "failed-$id" ]; then touch "failed-$id"; echo "flaky" >&2; exit 1; fi ;; esac
sleep 0.02
echo "$id" >> done.log
"#;

#[test]
fn random_kill_9s_across_waves_retries_and_write_back_never_lose_the_file_or_rerun_a_checked_task()
{
    let mut rng = Rng::seeded("kill -9");
    let original = batch_file();
    let mut kills = 0;
    let mut rounds = 0;
    let mut resumed = 0;
    let mut checked_pids = 0;
    while kills < KILLS {
        rounds += 1;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("task.md"), &original).unwrap();
        script(d, "agent.sh", AGENT);
        let mut before = original.clone().into_bytes();
        let mut seen_pids = 0;
        // Kill this round's runs until the batch is done (or the round's share).
        for _ in 0..12 {
            let mut child = mdbatch(d, &["--cmd", "./agent.sh", "-j", "4", "--retries", "2"])
                .spawn()
                .unwrap();
            // A random point: after a few more starts, then a few ms more
            // (which lands in write-backs, retries' backoff and wave changes).
            let target = lines(d, "started.log") + rng.range(1, 6) as usize;
            wait_until(&mut child, Duration::from_secs(60), || {
                lines(d, "started.log") >= target
            });
            std::thread::sleep(Duration::from_millis(rng.range(0, 40)));
            if child.try_wait().unwrap().is_some() {
                break; // finished before the kill
            }
            kill9(&mut child);
            kills += 1;
            let now = std::fs::read(d.join("task.md")).unwrap();
            assert_only_flips(original.as_bytes(), &before, &now, &format!("kill {kills}"));
            before = now;
            resumed += 1;
            // No subagent, nor a child it left in the background, outlives
            // the killed run for longer than the grace period (10 s), with
            // no later run to clean up; and no temp file is left behind.
            let pids: Vec<i32> = read(d, "pids")
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            let until = Instant::now() + Duration::from_secs(20);
            while pids.iter().any(|&p| alive(p)) {
                assert!(
                    Instant::now() < until,
                    "kill {kills}: subagent processes outlived the killed run: {:?}",
                    pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            checked_pids += pids.len() - std::mem::replace(&mut seen_pids, pids.len());
            let temps: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp") || n.contains(".mdbatch-"))
                .collect();
            assert!(temps.is_empty(), "kill {kills}: left behind: {temps:?}");
        }
        // The run after the last kill finishes the batch.
        let out = mdbatch(d, &["--cmd", "./agent.sh", "-j", "4", "--retries", "2"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {rounds}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let done = read(d, "task.md");
        assert_eq!(done, original.replace("- [ ]", "- [x]"), "round {rounds}");
        assert_eq!(
            read(d, "violations"),
            "",
            "round {rounds}: a task started after its box was checked"
        );
    }
    eprintln!(
        "harness: kill -9: {kills} kills survived over {rounds} rounds ({resumed} resumed runs), \
         0 files damaged, 0 checked tasks run again, {checked_pids} subagent processes \
         (and their background children) gone within the grace period, 0 temp files left"
    );
}

/// An editor that saves `task.md` about 50 times a second until `done`,
/// each save adding a note line at the top: by rename (as most editors do)
/// or in place in two writes (as `>` in a shell, or some editors, do).
/// Returns how many saves it made.
fn edit_until_done(d: &Path, done: &std::sync::atomic::AtomicBool, in_place: bool) -> usize {
    use std::io::Write;
    let path = d.join("task.md");
    let mut n = 0;
    while !done.load(std::sync::atomic::Ordering::Acquire) {
        let text = std::fs::read_to_string(&path).unwrap();
        let Some((head, rest)) = text.split_once("\n\n") else {
            panic!("the file lost its layout:\n{text}");
        };
        n += 1;
        let new = format!("{head}\nnote {n}\n\n{rest}");
        if !in_place {
            let tmp = d.join(".task.md.editor~");
            std::fs::write(&tmp, &new).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        } else {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            let (a, b) = new.as_bytes().split_at(new.len() / 2);
            f.write_all(a).unwrap();
            f.flush().unwrap();
            f.write_all(b).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    n
}

#[test]
fn an_editor_saving_by_rename_throughout_a_run_loses_no_save() {
    editor_throughout_a_run(false);
}

#[test]
fn an_editor_saving_in_place_throughout_a_run_loses_no_save() {
    editor_throughout_a_run(true);
}

fn editor_throughout_a_run(in_place: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let mut original = String::from("# Notes kept above the tasks\n\n## Tasks\n\n");
    for t in 1..=TASKS {
        original.push_str(&format!("- [ ] <!-- id: t{t} --> task {t}\n"));
    }
    std::fs::write(d.join("task.md"), &original).unwrap();
    const TASKS: usize = 100;
    script(&d, "agent.sh", "sleep 0.03\n");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let editor = {
        let (d, done) = (d.clone(), done.clone());
        std::thread::spawn(move || edit_until_done(&d, &done, in_place))
    };
    let out = mdbatch(&d, &["--cmd", "./agent.sh", "-j", "4"])
        .output()
        .unwrap();
    done.store(true, std::sync::atomic::Ordering::Release);
    let saves = editor.join().unwrap();
    // Under load a write-back can lose the race with the editor five times
    // in a row: mdbatch then leaves that box open (the task fails, and the
    // second run below checks it) rather than write over a save.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(0)
            || (out.status.code() == Some(1)
                && stderr
                    .lines()
                    .filter(|l| l.contains(" failed: "))
                    .all(|l| l.contains("kept changing"))),
        "{stderr}"
    );
    let text = read(&d, "task.md");
    let lost: Vec<usize> = (1..=saves)
        .filter(|n| !text.lines().any(|l| l == format!("note {n}")))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {saves} saves lost: {lost:?}",
        lost.len()
    );
    // The editor's own read-modify-write can undo a box mdbatch checked
    // between its read and its save (as any editor with a stale buffer
    // would); a second run finishes those, and keeps the notes.
    let again = mdbatch(&d, &["--cmd", "./agent.sh", "-j", "4"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0));
    let text = read(&d, "task.md");
    assert_eq!(
        text.matches("- [x]").count(),
        TASKS,
        "every task's box is checked:\n{text}"
    );
    assert!(text.lines().any(|l| l == format!("note {saves}")));
    eprintln!(
        "harness: editor: {saves} saves ({}) kept, 0 lost",
        if in_place { "in place" } else { "by rename" }
    );
}

/// Whether a pid is a live process (not a zombie).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !matches!(
            stat.rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next()),
            Some("Z") | Some("X") | None
        )
    })
}

/// Raw control characters (other than newline and tab) in `bytes`.
fn controls(bytes: &[u8]) -> Vec<char> {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
        .collect()
}

#[test]
fn a_subagent_that_tries_every_escape_gets_none() {
    let dir = tempfile::tempdir().unwrap();
    let d: PathBuf = dir.path().to_path_buf();
    std::fs::write(
        d.join("task.md"),
        "# Escapes\n\n- [ ] <!-- id: a --> be hostile\n- [ ] <!-- id: b --> be quiet\n",
    )
    .unwrap();
    // 1. terminal escapes on stdout and stderr (a window title, a screen
    //    clear, a clipboard write);
    // 2. a verify command planted in the task file;
    // 3. a child left running in the background after the agent exits;
    // 4. the same, in a process that ignores SIGTERM;
    // (and, in a folder of its own below, the state folder deleted.)
    script(
        &d,
        "agent.sh",
        r#"if [ "$MDBATCH_TASK_ID" = a ]; then
  printf '\033]0;owned\007\033[2J\033]52;c;Y3VybCBldmls\007done\n'
  printf '\033]0;owned-too\007\n' >&2
  printf -- '- [ ] <!-- id: c --> planted\n  <!-- verify: touch pwned -->\n' >> task.md
  sleep 300 & echo $! > bg.pid
  sh -c 'trap "" TERM; sleep 300' & echo $! > stubborn.pid
fi
"#,
    );
    let out = mdbatch(&d, &["--cmd", "./agent.sh", "-v"])
        .output()
        .unwrap();
    let mut tried = 0;
    let mut check = |what: &str, ok: bool| {
        tried += 1;
        assert!(ok, "escape `{what}` got through");
    };
    check(
        "terminal escapes in the run's output",
        controls(&out.stderr).is_empty(),
    );
    let logs = Command::new(BIN)
        .current_dir(&d)
        .args(["logs", "a"])
        .output()
        .unwrap();
    check(
        "terminal escapes through `mdbatch logs`",
        controls(&logs.stdout).is_empty() && String::from_utf8_lossy(&logs.stdout).contains("done"),
    );
    let status = Command::new(BIN)
        .current_dir(&d)
        .arg("status")
        .output()
        .unwrap();
    check(
        "terminal escapes through `mdbatch status`",
        controls(&status.stdout).is_empty(),
    );
    for (file, what) in [
        ("bg.pid", "a background child outliving its task"),
        ("stubborn.pid", "a TERM-ignoring child outliving its task"),
    ] {
        let pid: i32 = read(&d, file).trim().parse().unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while alive(pid) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let survived = alive(pid);
        if survived {
            // SAFETY: kill(2) on a pid this test's subagent started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        check(what, !survived);
    }
    let next = mdbatch(&d, &["--cmd", "./agent.sh"]).output().unwrap();
    check(
        "a planted verify command run by the next run",
        next.status.code() == Some(2) && !d.join("pwned").exists(),
    );
    let plan = Command::new(BIN)
        .current_dir(&d)
        .arg("plan")
        .output()
        .unwrap();
    check(
        "terminal escapes through `mdbatch plan`",
        controls(&plan.stdout).is_empty(),
    );
    // 5. The state folder deleted (the approved verify commands, the lock,
    //    the journal), a verify command planted, a second run started.
    let dir2 = tempfile::tempdir().unwrap();
    let d2 = dir2.path();
    std::fs::write(
        d2.join("task.md"),
        "# Escapes\n\n- [ ] <!-- id: a --> be hostile\n\n## Then\n\n- [ ] <!-- id: b --> be quiet\n",
    )
    .unwrap();
    script(
        d2,
        "agent.sh",
        r#"if [ "$MDBATCH_TASK_ID" = a ]; then
  printf -- '- [ ] <!-- id: c --> planted\n  <!-- verify: touch pwned -->\n' >> task.md
  rm -rf .mdbatch
  "$HARNESS_BIN" run --cmd true > second.out 2>&1; echo $? > second.rc
fi
"#,
    );
    mdbatch(d2, &["--cmd", "./agent.sh"])
        .env("HARNESS_BIN", BIN)
        .output()
        .unwrap();
    check(
        "a planted verify command run in the same run, its approvals deleted",
        !d2.join("pwned").exists(),
    );
    check(
        "a second run started on the file while the state folder is gone",
        read(d2, "second.rc").trim() != "0" && read(d2, "second.out").contains("locked by another"),
    );
    check(
        "the run's journal lost with the state folder",
        std::fs::read_to_string(d2.join(".mdbatch/task.md/journal.jsonl"))
            .is_ok_and(|j| j.contains("run_start") && j.contains("\"b\"")),
    );
    let next = mdbatch(d2, &["--cmd", "./agent.sh"]).output().unwrap();
    check(
        "a planted verify command run by the next run, its approvals deleted",
        next.status.code() == Some(2) && !d2.join("pwned").exists(),
    );
    eprintln!("harness: escapes: {tried} tried, 0 got through");
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn random_kill_9s_during_isolated_runs_and_landing_never_lose_the_file_or_rerun_a_landed_task() {
    const ISOLATED_KILLS: usize = 8;
    let mut rng = Rng::seeded("kill -9, isolated");
    let mut original = String::from("# Isolated\n");
    for w in 1..=2 {
        original.push_str(&format!("\n## Wave {w}\n\n"));
        for t in 1..=4 {
            original.push_str(&format!(
                "- [ ] <!-- id: w{w}t{t} --> task {t} of wave {w}\n"
            ));
        }
    }
    let mut kills = 0;
    let mut rounds = 0;
    while kills < ISOLATED_KILLS {
        rounds += 1;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let logs = tempfile::tempdir().unwrap();
        std::fs::write(d.join("task.md"), &original).unwrap();
        // Each agent writes a file of its own in its worktree (the change that
        // lands), and notes its start in a folder outside the repository.
        script(
            d,
            "agent.sh",
            r#"id=$MDBATCH_TASK_ID
if grep -qF -- "- [x] <!-- id: $id -->" "$MDBATCH_FILE"; then echo "$id" >> "$LOGS/violations"; fi
echo "$id" >> "$LOGS/started.log"
echo "$id" > "$id.txt"
sleep 0.02
"#,
        );
        git(d, &["init", "-q", "-b", "main"]);
        git(d, &["add", "-A"]);
        git(d, &["commit", "-q", "-m", "start"]);
        let run = |extra: &[&str]| {
            let mut c = mdbatch(
                d,
                &[
                    &["--cmd", "./agent.sh", "-j", "2", "--isolate", "worktree"][..],
                    extra,
                ]
                .concat(),
            );
            c.env("LOGS", logs.path())
                .env("GIT_AUTHOR_NAME", "Ada")
                .env("GIT_AUTHOR_EMAIL", "ada@example.com")
                .env("GIT_COMMITTER_NAME", "Ada")
                .env("GIT_COMMITTER_EMAIL", "ada@example.com");
            c
        };
        let mut before = original.clone().into_bytes();
        for _ in 0..6 {
            let mut child = run(&[]).spawn().unwrap();
            let target = lines(logs.path(), "started.log") + rng.range(1, 3) as usize;
            wait_until(&mut child, Duration::from_secs(60), || {
                lines(logs.path(), "started.log") >= target
            });
            // A few ms more: into the agent's work, its commit, the landing.
            std::thread::sleep(Duration::from_millis(rng.range(0, 60)));
            if child.try_wait().unwrap().is_some() {
                break;
            }
            kill9(&mut child);
            kills += 1;
            let now = std::fs::read(d.join("task.md")).unwrap();
            assert_only_flips(
                original.as_bytes(),
                &before,
                &now,
                &format!("isolated kill {kills}"),
            );
            before = now;
        }
        let out = run(&[]).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(read(d, "task.md"), original.replace("- [ ]", "- [x]"));
        for w in 1..=2 {
            for t in 1..=4 {
                let id = format!("w{w}t{t}");
                assert_eq!(
                    read(d, &format!("{id}.txt")).trim(),
                    id,
                    "{id} did not land"
                );
            }
        }
        assert_eq!(
            read(logs.path(), "violations"),
            "",
            "a task started after its box was checked"
        );
    }
    eprintln!(
        "harness: kill -9, isolated: {kills} kills survived over {rounds} rounds of worktree runs and landing, \
         0 files damaged, every task landed, 0 checked tasks run again"
    );
}
