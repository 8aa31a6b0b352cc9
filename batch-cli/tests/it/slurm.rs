//! `mdbatch run --launcher slurm` against a real single-node Slurm cluster
//! (`.ci/slurm.sh start DIR` and `. DIR/env` set `SLURM_CONF`). Without one
//! the tests print why and pass, unless `MDBATCH_REQUIRE_SLURM=1` (which
//! `.ci/run` sets), when they fail. The cluster's queue is shared: every
//! test names its tasks uniquely and looks only for its own jobs, and the
//! tests run one at a time (the `slurm` test group in .config/nextest.toml).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::{Fixture, wait_for};

/// Whether a cluster is there; says why not (or fails when one is required).
fn cluster() -> bool {
    if std::env::var_os("SLURM_CONF").is_some() {
        return true;
    }
    let why =
        "SLURM_CONF is not set: start a test cluster with `.ci/slurm.sh start DIR` and `. DIR/env`";
    if std::env::var("MDBATCH_REQUIRE_SLURM").as_deref() == Ok("1") {
        panic!("MDBATCH_REQUIRE_SLURM=1 but {why}");
    }
    eprintln!("skipped: {why}");
    false
}

/// The names of this user's jobs still known to the cluster that contain `tag`.
fn jobs_with(tag: &str) -> Vec<String> {
    let out = Command::new("squeue")
        .args(["--me", "--noheader", "--format=%j %T"])
        .output()
        .expect("squeue runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(tag))
        .map(str::to_string)
        .collect()
}

fn wait_no_jobs(tag: &str) {
    wait_for(
        &format!("no job of {tag} in squeue"),
        Duration::from_secs(60),
        || jobs_with(tag).is_empty(),
    );
}

/// The test cluster's CPUs (`.ci/slurm.sh start DIR CPUS` exports them).
fn cluster_cpus() -> usize {
    std::env::var("MDBATCH_SLURM_CPUS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2)
}

/// Every line of `stream` until it closes, each seen by `each` as it comes.
fn read_lines(stream: impl std::io::Read, mut each: impl FnMut(&str)) -> Vec<String> {
    BufReader::new(stream)
        .lines()
        .map_while(Result::ok)
        .inspect(|l| each(l))
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A folder with `task.md` and the stand-in agent; tasks are named after `tag`.
fn fixture(task_md: &str) -> Fixture {
    let f = Fixture::new(task_md);
    f.script(
        "agent.sh",
        r#"trap 'echo "got TERM" >> "term-$MDBATCH_TASK_ID"; exit 143' TERM
echo "on the cluster as $SLURM_JOB_NAME"
case "$MDBATCH_TASK_ID" in
  *-flaky) [ "$MDBATCH_ATTEMPT" = 1 ] && { echo "busy, try later" >&2; exit 75; } ;;
  *-bad) echo "the agent's own last words" >&2; exit 1 ;;
  *-wait) : > "waiting-$MDBATCH_TASK_ID"; while [ ! -f release ]; do sleep 0.05; done ;;
  *-hang) : > "waiting-$MDBATCH_TASK_ID"; while :; do sleep 0.05; done ;;
esac
exit 0
"#,
    );
    f
}

/// The mdbatch a test started, stopped (by its pid) if the test fails
/// before it ended, so a failed test leaves no run and no job behind.
struct Run(Child);

impl std::ops::Deref for Run {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Run {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            signal(&self.0, libc::SIGTERM);
            let _ = self.0.wait();
        }
    }
}

fn start(f: &Fixture, extra: &[&str]) -> Run {
    let mut args = vec![
        "run",
        "--cmd",
        "./agent.sh",
        "--launcher",
        "slurm",
        "--verbose",
        "--color",
        "never",
    ];
    args.extend_from_slice(extra);
    Run(f
        .command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mdbatch"))
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the pid of a child this test started.
    unsafe { libc::kill(child.id() as i32, sig) };
}

#[test]
fn a_success_a_transient_exit_retried_and_a_failure_each_run_as_a_slurm_job() {
    if !cluster() {
        return;
    }
    let f = fixture(
        "# Cluster\n\n## Wave 1\n- [ ] ok <!-- id: s1-ok -->\n- [ ] flaky <!-- id: s1-flaky -->\n- [ ] bad <!-- id: s1-bad; retries: 0 -->\n",
    );
    let out = f.mdbatch(&[
        "run",
        "--cmd",
        "./agent.sh",
        "--launcher",
        "slurm",
        "--verbose",
        "--color",
        "never",
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    // Each attempt was a job named after the run, the task and the attempt.
    assert!(all.contains("on the cluster as mdbatch-"), "{all}");
    assert!(all.contains("-s1-flaky-a2"), "{all}");
    // 75 stays 75 through srun: transient, retried.
    assert!(
        all.contains("s1-flaky retrying") && all.contains("transient"),
        "{all}"
    );
    // The failure shows the agent's own last line, not srun's summary.
    assert!(all.contains("the agent's own last words"), "{all}");
    assert!(!all.contains("srun: error"), "{all}");
    let md = f.task_md();
    assert!(md.contains("- [x] ok") && md.contains("- [x] flaky") && md.contains("- [ ] bad"));
    wait_no_jobs("s1-");
}

#[test]
fn output_lines_arrive_while_the_job_runs() {
    if !cluster() {
        return;
    }
    let f = fixture("# Live\n\n## Wave 1\n- [ ] wait <!-- id: s2-wait -->\n");
    let mut child = start(&f, &[]);
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    // The agent's first line shows up while it still waits for `release`.
    let seen = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("on the cluster as"));
    assert!(seen.is_some(), "the line never came");
    assert!(!f.file("release").exists());
    std::fs::write(f.file("release"), "").unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    wait_no_jobs("s2-");
}

#[test]
fn a_timeout_with_a_short_grace_leaves_no_job_behind() {
    if !cluster() {
        return;
    }
    let f = fixture("# Timeout\n\n## Wave 1\n- [ ] hang <!-- id: s3-hang; retries: 0 -->\n");
    let out = f.mdbatch(&[
        "run",
        "--cmd",
        "./agent.sh",
        "--launcher",
        "slurm",
        "--timeout",
        "2s",
        "--grace",
        "2s",
        "--color",
        "never",
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("timed out"), "{all}");
    // The agent got a real TERM (through scancel), not a KILL of srun.
    assert!(f.file("term-s3-hang").exists(), "{all}");
    wait_no_jobs("s3-");
}

#[test]
fn ctrl_c_and_a_double_ctrl_c_leave_no_job_behind() {
    if !cluster() {
        return;
    }
    for (tag, presses) in [("s4a-", 1), ("s4b-", 2)] {
        let f = fixture(&format!(
            "# Interrupt\n\n## Wave 1\n- [ ] one <!-- id: {tag}hang -->\n- [ ] two <!-- id: {tag}wait -->\n"
        ));
        let mut child = start(&f, &["--grace", "3s"]);
        wait_for("both agents to run", Duration::from_secs(60), || {
            f.file(&format!("waiting-{tag}hang")).exists()
                && f.file(&format!("waiting-{tag}wait")).exists()
        });
        signal(&child, libc::SIGINT);
        if presses == 2 {
            signal(&child, libc::SIGINT);
        }
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{tag}");
        wait_no_jobs(tag);
    }
}

#[test]
fn a_rerun_after_kill_9_cancels_the_killed_runs_jobs() {
    if !cluster() {
        return;
    }
    let f = fixture("# Killed\n\n## Wave 1\n- [ ] hang <!-- id: s5-hang -->\n");
    let mut child = start(&f, &[]);
    wait_for("the agent to run", Duration::from_secs(60), || {
        f.file("waiting-s5-hang").exists()
    });
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    // The rerun finds the killed run's job and ends it before anything else;
    // its own attempt then hangs too, so it is stopped by a timeout.
    let out = f.mdbatch(&[
        "run",
        "--cmd",
        "./agent.sh",
        "--launcher",
        "slurm",
        "--timeout",
        "3s",
        "--grace",
        "2s",
        "--retries",
        "0",
        "--color",
        "never",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    wait_no_jobs("s5-");
}

#[test]
fn more_tasks_than_the_cluster_has_cpus_queue_and_then_run() {
    if !cluster() {
        return;
    }
    let cpus = cluster_cpus();
    let n = cpus + 2;
    let mut md = String::from("# Queue\n\n## Wave 1\n");
    for i in 0..n {
        md.push_str(&format!("- [ ] task {i} <!-- id: s6-{i}-wait -->\n"));
    }
    let f = fixture(&md);
    let mut child = start(&f, &["-j", &n.to_string()]);
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || read_lines(stderr, |_| {}));
    // As many run as there are CPUs; the others wait in the queue.
    wait_for("the cluster to fill", Duration::from_secs(60), || {
        (0..n)
            .filter(|i| f.file(&format!("waiting-s6-{i}-wait")).exists())
            .count()
            == cpus
    });
    let pending = jobs_with("s6-")
        .iter()
        .filter(|l| l.ends_with("PENDING"))
        .count();
    assert_eq!(pending, n - cpus);
    std::fs::write(f.file("release"), "").unwrap();
    assert!(child.wait().unwrap().success());
    let lines = reader.join().unwrap();
    assert!(
        lines.iter().any(|l| l.contains("queued on the cluster")),
        "{lines:?}"
    );
    assert_eq!(f.task_md().matches("- [x]").count(), n);
    wait_no_jobs("s6-");
}

#[test]
fn time_waiting_in_the_clusters_queue_does_not_count_against_the_timeout() {
    if !cluster() {
        return;
    }
    let cpus = cluster_cpus();
    // A first run holds every slot of the cluster until released.
    let mut md = String::from("# Hold\n\n## Wave 1\n");
    for i in 0..cpus {
        md.push_str(&format!("- [ ] hold {i} <!-- id: s7-{i}-wait -->\n"));
    }
    let holders = fixture(&md);
    let mut hold = start(&holders, &["-j", &cpus.to_string()]);
    wait_for("the slots to be taken", Duration::from_secs(60), || {
        (0..cpus)
            .filter(|i| holders.file(&format!("waiting-s7-{i}-wait")).exists())
            .count()
            == cpus
    });
    // A second run's task, with a 2-second timeout, waits in the queue for
    // longer than that, then gets a slot, runs briefly and succeeds.
    let f = fixture(
        "# Quick\n\n## Wave 1\n- [ ] quick <!-- id: s7-quick; timeout: 2s; retries: 0 -->\n",
    );
    let mut child = start(&f, &[]);
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        read_lines(stderr, |line| {
            if line.contains("queued on the cluster") {
                let _ = tx.send(());
            }
        })
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the quick task queues behind the held slots");
    // Queued for longer than its timeout: this is the point of the test,
    // not a race to win.
    std::thread::sleep(Duration::from_secs(3));
    std::fs::write(holders.file("release"), "").unwrap();
    let status = child.wait().unwrap();
    let lines = reader.join().unwrap();
    assert!(status.success(), "{lines:?}");
    assert!(f.task_md().contains("- [x] quick"), "{lines:?}");
    assert!(hold.wait().unwrap().success());
    wait_no_jobs("s7-");
}
