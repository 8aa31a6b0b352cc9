//! `mdbatch run` end to end through the binary: kill and rerun, the lock,
//! Ctrl-C. Subagents are small shell scripts; the tests synchronise with
//! them through files they write, never by sleeping for a fixed time.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mdbatch");

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new(task_md: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tasks.md"), task_md).unwrap();
        // The stand-in agent: records its pid, then logs its run (tests wait on
        // the log, so the pid is there by then), waits for
        // `release-<id>` when told to, and writes `got-term` when TERMed.
        let agent = dir.path().join("agent.sh");
        std::fs::write(
            &agent,
            r#"#!/bin/sh
trap 'echo "$MDBATCH_TASK_ID" >> got-term; exit 143' TERM
echo $$ > "pid-$MDBATCH_TASK_ID"
echo "$MDBATCH_TASK_ID" >> ran.log
if [ -f "block-$MDBATCH_TASK_ID" ]; then
  while [ ! -f "release-$MDBATCH_TASK_ID" ]; do sleep 0.05; done
fi
echo "did $1"
"#,
        )
        .unwrap();
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn touch(&self, name: &str) {
        std::fs::write(self.path(name), "").unwrap();
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    fn cmd(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .args(["run", "--cmd", "./agent.sh {task}", "--color", "never"])
            .args(extra)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    fn spawn(&self, extra: &[&str]) -> Child {
        self.cmd(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn run(&self, extra: &[&str]) -> Output {
        self.cmd(extra).output().unwrap()
    }

    /// Waits (bounded) until `name` holds a line equal to `line`.
    fn wait_line(&self, name: &str, line: &str) {
        wait_for(&format!("`{line}` in {name}"), || {
            self.read(name).lines().any(|l| l == line)
        });
    }

    fn pid(&self, id: &str) -> i32 {
        self.read(&format!("pid-{id}")).trim().parse().unwrap()
    }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with plain integers.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Whether a pid is a live process (not a zombie).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next()),
            Some("Z") | Some("X") | None
        ),
        Err(_) => false,
    }
}

fn count(log: &str, id: &str) -> usize {
    log.lines().filter(|l| *l == id).count()
}

const FOUR: &str = "# Chores

- [ ] <!-- id: t1 --> first chore
- [ ] <!-- id: t2 --> second chore
- [ ] <!-- id: t3 --> third chore
- [ ] <!-- id: t4 --> fourth chore
";

#[test]
fn after_a_sigkill_the_file_is_intact_and_the_rerun_does_not_repeat_checked_tasks() {
    let d = Dir::new(FOUR);
    d.touch("block-t3");
    let mut child = d.spawn(&["-j", "1"]);
    d.wait_line("ran.log", "t3");
    let agent = d.pid("t3");
    // t3 may start while t2's box is still being written (its slot is free
    // once t2's work is done): the kill comes once the write has landed.
    wait_for("t2's box to be checked", || {
        std::fs::read_to_string(d.path("tasks.md")).is_ok_and(|t| t.contains("[x] <!-- id: t2"))
    });
    child.kill().unwrap(); // SIGKILL: no cleanup code runs in mdbatch
    child.wait().unwrap();

    let text = std::fs::read_to_string(d.path("tasks.md")).unwrap();
    assert_eq!(
        text,
        FOUR.replace("[ ] <!-- id: t1", "[x] <!-- id: t1")
            .replace("[ ] <!-- id: t2", "[x] <!-- id: t2")
    );
    wait_for("the orphaned subagent to die with its run", || {
        !alive(agent)
    });

    d.touch("release-t3");
    let out = d.run(&["-j", "1", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let started = stdout.lines().next().unwrap();
    assert!(started.contains(r#""type":"run_started""#), "{started}");
    assert!(started.contains(r#""unfinished":["t3"]"#), "{started}");
    assert!(stdout.contains(r#""type":"task_started""#) && stdout.contains(r#""attempt":2"#));
    let log = d.read("ran.log");
    assert_eq!(
        [
            count(&log, "t1"),
            count(&log, "t2"),
            count(&log, "t3"),
            count(&log, "t4")
        ],
        [1, 1, 2, 1]
    );
    assert_eq!(
        std::fs::read_to_string(d.path("tasks.md")).unwrap(),
        FOUR.replace("[ ]", "[x]")
    );
    let leftovers = std::fs::read_dir(d.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn a_second_run_on_the_same_file_exits_2_naming_the_first() {
    let d = Dir::new(FOUR);
    d.touch("block-t1");
    let first = d.spawn(&["-j", "1"]);
    d.wait_line("ran.log", "t1");
    let second = d.run(&[]);
    assert_eq!(second.status.code(), Some(2));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("locked") && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    d.touch("release-t1");
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(count(&d.read("ran.log"), "t1"), 1);
}

#[test]
fn ctrl_c_terms_the_subagents_records_the_run_and_exits_130() {
    let d = Dir::new(FOUR);
    d.touch("block-t1");
    d.touch("block-t2");
    let child = d.spawn(&["-j", "2"]);
    d.wait_line("ran.log", "t1");
    d.wait_line("ran.log", "t2");
    signal(child.id(), libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let termed = d.read("got-term");
    assert_eq!((count(&termed, "t1"), count(&termed, "t2")), (1, 1));
    assert_eq!(std::fs::read_to_string(d.path("tasks.md")).unwrap(), FOUR);
    assert!(
        d.read("ran.log").lines().all(|l| l == "t1" || l == "t2"),
        "a task started after Ctrl-C"
    );
    let journal = d.read(".mdbatch/tasks.md/journal.jsonl");
    assert!(
        journal
            .lines()
            .any(|l| l.contains(r#""type":"run_end""#) && l.contains(r#""cancelled":true"#))
    );
    assert_eq!(journal.matches(r#""outcome":"interrupted""#).count(), 2);
}

#[test]
fn sighup_is_handled_like_sigterm_the_subagents_are_stopped_and_the_run_recorded() {
    let d = Dir::new(FOUR);
    d.touch("block-t1");
    let child = d.spawn(&["-j", "1"]);
    d.wait_line("ran.log", "t1");
    let agent = d.pid("t1");
    // A closed terminal or a dropped SSH session sends SIGHUP.
    signal(child.id(), libc::SIGHUP);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "mdbatch died of the signal instead of stopping the run: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        count(&d.read("got-term"), "t1"),
        1,
        "the subagent was not stopped"
    );
    wait_for("the subagent to end", || !alive(agent));
    assert_eq!(std::fs::read_to_string(d.path("tasks.md")).unwrap(), FOUR);
    let journal = d.read(".mdbatch/tasks.md/journal.jsonl");
    assert!(
        journal
            .lines()
            .any(|l| l.contains(r#""type":"run_end""#) && l.contains(r#""cancelled":true"#)),
        "{journal}"
    );
}

#[test]
fn a_second_ctrl_c_kills_a_subagent_that_ignores_term_at_once() {
    let d = Dir::new("- [ ] <!-- id: stubborn --> a task\n");
    // This agent notes the TERM but keeps going.
    std::fs::write(
        d.path("agent.sh"),
        "#!/bin/sh\ntrap 'echo stubborn >> got-term' TERM\necho $$ > pid-stubborn\necho stubborn >> ran.log\nwhile :; do sleep 0.05; done\n",
    )
    .unwrap();
    let child = d.spawn(&["--grace", "10m"]);
    d.wait_line("ran.log", "stubborn");
    let agent = d.pid("stubborn");
    signal(child.id(), libc::SIGINT);
    d.wait_line("got-term", "stubborn");
    let started = Instant::now();
    signal(child.id(), libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "waited for the grace period"
    );
    wait_for("the subagent to be killed", || !alive(agent));
}

/// The pids of the live children of `pid` whose command line holds `needle`.
fn children_with(pid: u32, needle: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            let ppid = std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                });
            ppid == Some(pid)
                && std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

#[test]
fn after_a_sigkill_every_descendant_of_every_subagent_is_stopped_without_a_rerun() {
    let d = Dir::new(FOUR);
    // Each subagent starts a child that ignores TERM and a grandchild under
    // it, and a process in a session of its own; records their pids, then
    // blocks: only a KILL ends the child.
    std::fs::write(
        d.path("agent.sh"),
        r#"#!/bin/sh
id=$MDBATCH_TASK_ID
sh -c 'trap "" TERM; sh -c "echo \$\$ > gpid-$0.tmp; mv gpid-$0.tmp gpid-$0; while :; do sleep 0.05; done" & echo $$ > cpid-$0.tmp; mv cpid-$0.tmp cpid-$0; while :; do sleep 0.05; done' "$id" &
setsid sh -c 'echo $$ > spid-$0.tmp; mv spid-$0.tmp spid-$0; while :; do sleep 0.05; done' "$id" &
while [ ! -f "gpid-$id" ] || [ ! -f "cpid-$id" ] || [ ! -f "spid-$id" ]; do sleep 0.05; done
echo $$ > "apid-$id"
echo "$id" >> ran.log
while :; do sleep 0.05; done
"#,
    )
    .unwrap();
    let mut child = d.spawn(&["-j", "2", "--grace", "1s"]);
    d.wait_line("ran.log", "t1");
    d.wait_line("ran.log", "t2");
    let mut pids = Vec::new();
    for id in ["t1", "t2"] {
        // The subagent itself (no parent-death signal: the reaper stops
        // it too), its child and its grandchild, and a process that left
        // the group with `setsid` (found by the run's token it inherited).
        for kind in ["apid", "cpid", "gpid", "spid"] {
            pids.push(
                d.read(&format!("{kind}-{id}"))
                    .trim()
                    .parse::<i32>()
                    .unwrap(),
            );
        }
    }
    assert!(pids.iter().all(|p| alive(*p)));
    child.kill().unwrap(); // SIGKILL: no cleanup code runs in mdbatch
    child.wait().unwrap();
    // Nobody runs mdbatch again: the reaper alone must stop them all, the
    // TERM-ignoring children with a KILL after the grace period.
    let until = Instant::now() + Duration::from_secs(60);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survivors: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    for p in &survivors {
        signal(*p as u32, libc::SIGKILL);
    }
    assert!(
        survivors.is_empty(),
        "outlived the killed run: {survivors:?}"
    );
}

#[test]
fn a_rerun_stops_the_subagents_a_killed_run_left_behind_before_running_their_task_again() {
    let d = Dir::new("# Chores\n\n- [ ] <!-- id: t1 --> first chore\n");
    // The first attempt leaves a child in its process group (which the
    // parent-death signal of the direct child does not reach) and blocks;
    // every later attempt records whether that child is still there.
    let agent = d.path("agent.sh");
    std::fs::write(
        &agent,
        r#"#!/bin/sh
if [ ! -f gpid ]; then
  echo $$ > pgid
  sh -c 'echo $$ > gpid.tmp; mv gpid.tmp gpid; while :; do sleep 0.05; done' &
  while [ ! -f gpid ]; do sleep 0.05; done
  echo "$MDBATCH_TASK_ID" >> ran.log
  while :; do sleep 0.05; done
fi
state=$(cut -d')' -f2 "/proc/$(cat gpid)/stat" 2>/dev/null | cut -d' ' -f2)
case "$state" in ''|Z|X) echo gone >> seen ;; *) echo alive >> seen ;; esac
echo "$MDBATCH_TASK_ID" >> ran.log
"#,
    )
    .unwrap();
    let mut child = d.spawn(&["--grace", "5s"]);
    d.wait_line("ran.log", "t1");
    let pgid: i32 = d.read("pgid").trim().parse().unwrap();
    let orphan: i32 = d.read("gpid").trim().parse().unwrap();
    // The reaper goes too (as when the whole session is killed): only the
    // rerun's journal check is left to stop the orphan.
    let reapers = children_with(child.id(), "mdbatch-reaper");
    assert_eq!(reapers.len(), 1, "one reaper per mdbatch process");
    signal(reapers[0] as u32, libc::SIGKILL);
    child.kill().unwrap(); // SIGKILL: no cleanup code runs in mdbatch
    child.wait().unwrap();
    assert!(alive(orphan), "the grandchild outlives the killed run");

    let out = d.run(&["--grace", "5s", "--json"]);
    let still_alive = alive(orphan);
    if still_alive {
        signal(orphan as u32, libc::SIGKILL);
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        d.read("seen").trim(),
        "gone",
        "attempt 2 ran beside the orphan"
    );
    assert!(!still_alive);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let warning = stdout
        .lines()
        .find(|l| l.contains(r#""type":"warning""#) && l.contains(&format!("process group {pgid}")))
        .unwrap_or_else(|| panic!("no warning naming the process group:\n{stdout}"));
    assert!(warning.contains("t1"), "{warning}");
    let warned_at = stdout.find(warning).unwrap();
    let started_at = stdout.find(r#""type":"task_started""#).unwrap();
    assert!(warned_at < started_at, "{stdout}");
    assert_eq!(count(&d.read("ran.log"), "t1"), 2);
}

#[test]
fn a_box_checked_by_hand_during_the_run_is_not_run_and_the_run_exits_0() {
    let d = Dir::new(
        "# Chores\n\n## Wave 1\n\n- [ ] <!-- id: t1 --> first chore\n\n## Wave 2\n\n- [ ] <!-- id: t2 --> second chore\n",
    );
    // While t1 runs, the user checks t2 by hand.
    std::fs::write(
        d.path("agent.sh"),
        r#"#!/bin/sh
echo "$MDBATCH_TASK_ID" >> ran.log
if [ "$MDBATCH_TASK_ID" = t1 ]; then
  sed -i 's/- \[ \] <!-- id: t2/- [x] <!-- id: t2/' tasks.md
fi
"#,
    )
    .unwrap();
    let out = d.run(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d.read("ran.log"), "t1\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("checked by hand during the run")
            || stderr.contains("checked by hand during the run"),
        "{stdout}{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(d.path("tasks.md")).unwrap(),
        "# Chores\n\n## Wave 1\n\n- [x] <!-- id: t1 --> first chore\n\n## Wave 2\n\n- [x] <!-- id: t2 --> second chore\n"
    );
}
