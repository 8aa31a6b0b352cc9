//! The reaper: a small process that outlives mdbatch only to stop the
//! subagents mdbatch could not.
//!
//! When mdbatch is killed outright (`kill -9`, the OOM killer) no code of
//! ours runs, and a subagent with its children and grandchildren (the
//! agent's shell commands, test runners, servers) would live on. So the
//! first spawn starts one reaper per mdbatch process: `/bin/sh` running
//! [`SCRIPT`] (with `awk` reading the registrations where there is one), in
//! a process group of its own (Ctrl-C does not reach it),
//! ignoring SIGINT/SIGTERM/SIGHUP, reading a pipe whose only write end is
//! mdbatch's.
//!
//! ## Registration, and the window between spawn and registration
//!
//! Subagents are started with `posix_spawn` (no `pre_exec` hook: a hook
//! forces a full `fork` of mdbatch, which cost most of the per-task time at
//! `-j 8`), so the child cannot register itself; mdbatch registers it from
//! the parent side, and closes the window in which mdbatch could die
//! between the two:
//!
//! 1. Before spawning, mdbatch writes `? GRACE` (a *pending* spawn), and the
//!    child's environment gets this process's random token
//!    ([`TOKEN_VAR`]`=<token>`; the reaper has it as its argument).
//! 2. Right after the spawn returned, mdbatch writes `= PGID`: the
//!    group is registered and one pending spawn resolved (`!` resolves one
//!    whose spawn failed).
//! 3. mdbatch writes `- PGID` once it has killed a group.
//! 4. When mdbatch dies the pipe reaches end-of-file. The reaper TERMs
//!    every registered group, scans `/proc/*/environ` for the token and
//!    TERMs the group of every process that carries it (a child whose
//!    spawn was still pending, and descendants that left their group with
//!    `setsid`), again on every tick of the grace period; then it KILLs
//!    what is left (after the longest grace registered) and exits.
//!    When mdbatch ends normally nothing is registered or pending and it
//!    exits at once.
//!
//! Why the scan finds the unregistered child: the pipe's write end is
//! close-on-exec, and a child being spawned holds a copy of mdbatch's
//! descriptor table (`posix_spawn`'s `clone` shares memory, not
//! descriptors) until its `execve` closes it. So the end-of-file comes only
//! once every child being started has passed the close-on-exec step of its
//! `execve` (or died). From there its environment, which holds the token,
//! is readable in `/proc` as soon as the same `execve` call has built the
//! new stack: it maps the program and nothing else, and the scans go on
//! for the whole grace period (at least 0.1 s, 10 s by default). The token
//! is inherited, so the scan also finds descendants that left the group
//! but kept the environment.
//!
//! Where this does not hold, a `pre_exec` hook (and so a full `fork`) is
//! used instead: off Linux (no `/proc` to scan) the child registers itself
//! (`+ PGID GRACE`) before `exec`; where no reaper can be started (no
//! `/bin/sh`) the child gets `PR_SET_PDEATHSIG` (Linux), which stops the
//! direct child only, and the journal check of the next run is the only
//! cleanup for the rest.
//!
//! Pitfalls: no subagent may hold the write end (the end-of-file would never
//! come): it is close-on-exec. Lines are shorter than `PIPE_BUF`, so writes
//! from several threads and forked children never interleave. A process
//! that leaves its group (`setsid`) and clears its environment is not
//! tracked; a cgroup would be needed for that.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The variable that carries this process's token in every subagent's
/// environment (and so in their descendants' unless they clear it).
pub(crate) const TOKEN_VAR: &str = "MDBATCH_REAPER_TOKEN";

/// The reaper's program (argument: the token; input: registrations).
///
/// The registrations are only acted on at end-of-file, so they are read by
/// `awk`, which reads its input in blocks: a shell's `read` takes one
/// `read` call per byte from a pipe (about 22 per task) and interprets a
/// loop per line. Without `awk`, the shell reads them itself. Either way
/// the state left at end-of-file is `GRACE PENDING PGID...`.
const SCRIPT: &str = r#"trap '' INT TERM HUP QUIT PIPE
tok=$1
if command -v awk >/dev/null 2>&1; then
  state=$(awk '
    function longer(x) { if (x ~ /^[0-9]+$/ && x + 0 > grace) grace = x + 0 }
    BEGIN { grace = 1; pending = 0 }
    $1 == "?" { pending++; longer($2); next }
    $1 == "!" { if (pending > 0) pending--; next }
    $2 !~ /^[0-9]+$/ { next }
    $1 == "+" { g[$2] = 1; longer($3); next }
    $1 == "=" { g[$2] = 1; if (pending > 0) pending--; next }
    $1 == "-" { delete g[$2]; next }
    END { s = grace " " pending; for (p in g) s = s " " p; print s }
  ') || state="100 1"
else
  grace=1
  pending=0
  longer() { case "$1" in ''|*[!0-9]*) ;; *) [ "$1" -gt "$grace" ] && grace=$1 ;; esac; }
  while read -r op pg g; do
    case "$op" in
      '?') pending=$((pending+1)); longer "$pg"; continue ;;
      '!') [ "$pending" -gt 0 ] && pending=$((pending-1)); continue ;;
    esac
    case "$pg" in ''|*[!0-9]*) continue ;; esac
    case "$op" in
      +) eval "g_$pg=1"; longer "$g" ;;
      =) eval "g_$pg=1"; [ "$pending" -gt 0 ] && pending=$((pending-1)) ;;
      -) unset "g_$pg" ;;
    esac
  done
  state="$grace $pending $(set | sed -n 's/^g_\([0-9][0-9]*\)=.*/\1/p')"
fi
set -- $state
grace=${1:-100}
pending=${2:-1}
if [ $# -ge 2 ]; then shift 2; else set --; fi
groups="$*"
# The common end: nothing registered, nothing pending.
[ -z "$groups" ] && [ "$pending" -eq 0 ] && exit 0
scan() {
  for f in $(grep -lsxzF "MDBATCH_REAPER_TOKEN=$tok" /proc/[0-9]*/environ 2>/dev/null); do
    p=${f#/proc/}; p=${p%/environ}
    { read -r s < "/proc/$p/stat"; } 2>/dev/null || continue
    set -- ${s##*) }
    case "$3" in ''|*[!0-9]*) continue ;; esac
    case " $seen " in *" $3 "*) continue ;; esac
    seen="$seen $3"; groups="$groups $3"
    kill -s TERM -- "-$3" 2>/dev/null
  done
}
seen=$groups
for x in $groups; do kill -s TERM -- "-$x" 2>/dev/null; done
scan
i=0
while [ "$i" -lt "$grace" ]; do
  alive=''
  for x in $groups; do kill -s 0 -- "-$x" 2>/dev/null && alive="$alive $x"; done
  [ -z "$alive" ] && [ "$pending" -eq 0 ] && exit 0
  groups=$alive
  sleep 0.1
  i=$((i+1))
  scan
done
for x in $groups; do kill -s KILL -- "-$x" 2>/dev/null; done
"#;

struct Reaper {
    write: OwnedFd,
    pid: u32,
    /// This process's token, in every subagent's environment.
    token: String,
}

/// The reaper of this process, started on first use (`None`: it could not be).
fn reaper() -> Option<&'static Reaper> {
    static REAPER: OnceLock<Option<Reaper>> = OnceLock::new();
    REAPER.get_or_init(start).as_ref()
}

fn start() -> Option<Reaper> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe(2) fills the two-element array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: both descriptors were just created and are owned here only.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for fd in [read.as_raw_fd(), write.as_raw_fd()] {
        // SAFETY: fcntl on a descriptor we own.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // Unpredictable, so no unrelated process carries it by chance.
    let token = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
    let child = {
        use std::os::unix::process::CommandExt;
        Command::new("/bin/sh")
            .args(["-c", SCRIPT, "mdbatch-reaper", &token])
            .stdin(Stdio::from(read))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok()?
    };
    // The reaper is never waited for: it ends after mdbatch (or with its
    // pipe's end-of-file at exit), and is then adopted and reaped by init.
    let pid = child.id();
    drop(child);
    Some(Reaper { write, pid, token })
}

/// The descriptor a child writes its registration to, starting the reaper
/// if needed (`None`: no reaper).
#[cfg_attr(
    target_os = "linux",
    expect(dead_code, reason = "children register themselves only off Linux")
)]
pub(crate) fn fd() -> Option<RawFd> {
    reaper().map(|r| r.write.as_raw_fd())
}

/// A spawn the reaper was told about before it happened (see the module
/// docs): resolved by [`Spawning::registered`], or, if dropped unresolved
/// (the spawn failed), with `!`.
pub(crate) struct Spawning {
    reaper: &'static Reaper,
    resolved: bool,
}

impl Spawning {
    /// Tells the reaper a child is about to be started (`? GRACE`), starting
    /// the reaper if needed (`None`: no reaper, or no `/proc` to find an
    /// unregistered child in).
    pub(crate) fn begin(grace: Duration) -> Option<Self> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let reaper = reaper()?;
        let grace = tenths(grace);
        send(reaper, &format!("? {grace}\n"));
        Some(Self {
            reaper,
            resolved: false,
        })
    }

    /// The environment variable the child must carry: `(name, token)`.
    pub(crate) fn env(&self) -> (&'static str, &'static str) {
        (TOKEN_VAR, self.reaper.token.as_str())
    }

    /// Registers the started child's group (`= PGID`).
    pub(crate) fn registered(mut self, pgid: u32) {
        // The grace came with `?`.
        send(self.reaper, &format!("= {pgid}\n"));
        self.resolved = true;
    }
}

impl Drop for Spawning {
    fn drop(&mut self) {
        if !self.resolved {
            send(self.reaper, "!\n");
        }
    }
}

/// One line to the reaper; short (under `PIPE_BUF`), so written whole.
fn send(reaper: &Reaper, line: &str) {
    // SAFETY: writes the bytes of a live string to our own pipe.
    unsafe { libc::write(reaper.write.as_raw_fd(), line.as_ptr().cast(), line.len()) };
}

/// The reaper's pid, if it runs (for tests and diagnostics).
#[cfg_attr(not(test), expect(dead_code, reason = "used by tests"))]
pub(crate) fn pid() -> Option<u32> {
    reaper().map(|r| r.pid)
}

/// Grace periods are sent in tenths of a second (at least one).
pub(crate) fn tenths(grace: Duration) -> u64 {
    u64::try_from(grace.as_millis() / 100)
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Registers the calling process's group. Only async-signal-safe calls: it
/// runs in the forked child before `exec` (getpid, write; no allocation).
#[cfg_attr(
    target_os = "linux",
    expect(dead_code, reason = "children register themselves only off Linux")
)]
pub(crate) fn register_self(fd: RawFd, grace_tenths: u64) {
    let mut line = [0u8; 64];
    let mut n = 0;
    line[n] = b'+';
    line[n + 1] = b' ';
    n += 2;
    // SAFETY: getpid(2) has no preconditions.
    let pid = unsafe { libc::getpid() };
    n += put_number(&mut line[n..], u64::try_from(pid).unwrap_or(0));
    line[n] = b' ';
    n += 1;
    n += put_number(&mut line[n..], grace_tenths);
    line[n] = b'\n';
    n += 1;
    // SAFETY: writes `n` initialised bytes of a live stack buffer.
    unsafe { libc::write(fd, line.as_ptr().cast(), n) };
}

/// Tells the reaper that group `pgid` is over (killed and being reaped).
pub(crate) fn unregister(pgid: u32) {
    if let Some(r) = reaper() {
        send(r, &format!("- {pgid}\n"));
    }
}

/// Writes `v` in decimal at the start of `buf`; returns how many bytes.
fn put_number(buf: &mut [u8], mut v: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (v % 10) as u8;
        len += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[i] = digits[len - 1 - i];
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_in_decimal_without_allocating() {
        let mut buf = [0u8; 20];
        let n = put_number(&mut buf, 0);
        assert_eq!(&buf[..n], b"0");
        let n = put_number(&mut buf, 4_194_304);
        assert_eq!(&buf[..n], b"4194304");
        let n = put_number(&mut buf, u64::MAX);
        assert_eq!(&buf[..n], u64::MAX.to_string().as_bytes());
    }

    #[test]
    fn grace_is_sent_in_tenths_of_a_second_and_never_zero() {
        assert_eq!(tenths(Duration::from_secs(10)), 100);
        assert_eq!(tenths(Duration::from_millis(50)), 1);
    }

    /// The child a helper process starts and never registers: it ignores
    /// TERM (so only the KILL after the grace ends it), starts a grandchild,
    /// prints both pids and blocks.
    const UNREGISTERED_CHILD: &str = r#"trap '' TERM
sh -c 'while :; do sleep 1; done' &
echo "$$ $!"
while :; do sleep 1; done
"#;

    /// Not a test of its own: run in a process of its own by the test
    /// below. Tells its reaper a spawn is coming, starts the child, and dies
    /// by SIGKILL before registering it — the window between spawn and
    /// registration, held open as long as it takes the child to report.
    #[test]
    #[ignore = "a helper, run by a_child_started_but_not_registered_is_stopped_when_its_parent_dies"]
    #[expect(
        clippy::zombie_processes,
        reason = "this process dies with its child unwaited: that is the test"
    )]
    fn helper_dies_between_spawn_and_registration() {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let Some(dir) = std::env::var_os("MDBATCH_TEST_WINDOW_DIR") else {
            return;
        };
        let spawning = Spawning::begin(Duration::from_millis(300)).expect("a reaper");
        let (k, v) = spawning.env();
        let mut child = Command::new("/bin/sh")
            .args(["-c", UNREGISTERED_CHILD])
            .env(k, v)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pids = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut pids)
            .unwrap();
        std::fs::write(std::path::Path::new(&dir).join("pids"), pids).unwrap();
        // SAFETY: kill(2) on this process: it dies with `spawning` unresolved.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        unreachable!("killed");
    }

    #[test]
    fn a_child_started_but_not_registered_is_stopped_when_its_parent_dies() {
        use std::os::unix::process::ExitStatusExt;
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "runner::process::reaper::tests::helper_dies_between_spawn_and_registration",
                "--ignored",
                "--nocapture",
            ])
            .env("MDBATCH_TEST_WINDOW_DIR", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        let pids: Vec<i32> = std::fs::read_to_string(dir.path().join("pids"))
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 2, "the child and its grandchild");
        let alive = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                !matches!(
                    s.rsplit_once(')')
                        .and_then(|r| r.1.split_whitespace().next()),
                    Some("Z" | "X") | None
                )
            })
        };
        // The grace is 0.3 s; the limit only bounds a failing test.
        let until = std::time::Instant::now() + Duration::from_secs(30);
        while pids.iter().any(|p| alive(*p)) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let survivors: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        for p in &survivors {
            // SAFETY: kill(2) on a process this test's helper started.
            unsafe { libc::kill(*p, libc::SIGKILL) };
        }
        assert!(
            survivors.is_empty(),
            "outlived their parent, which died before registering them: {survivors:?}"
        );
    }

    /// Runs [`SCRIPT`] with `path` as its PATH, registers one group and
    /// unregisters another, closes its input as a dying mdbatch would, and
    /// returns how the two groups' leaders fared.
    fn reap_with_path(path: &std::ffi::OsStr) -> (Option<i32>, bool) {
        use std::io::Write;
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        let victim = || {
            Command::new("sleep")
                .arg("1000")
                .process_group(0)
                .stdin(Stdio::null())
                .spawn()
                .unwrap()
        };
        let (mut registered, mut unregistered) = (victim(), victim());
        let (read, mut write) = std::io::pipe().unwrap();
        let mut reaper = Command::new("/bin/sh")
            .args(["-c", SCRIPT, "mdbatch-reaper", "test-token"])
            .env_clear()
            .env("PATH", path)
            .stdin(read)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (a, b) = (registered.id(), unregistered.id());
        write
            .write_all(format!("? 1\n= {a}\n? 1\n= {b}\n- {b}\n? 1\n!\n").as_bytes())
            .unwrap();
        drop(write);
        assert!(reaper.wait().unwrap().success());
        // The registered leader was signalled before the reaper ended (it
        // then waits out the grace on the zombie, which only its parent —
        // this test — can reap); the limit only bounds a failing test.
        let (tx, rx) = std::sync::mpsc::channel();
        let pid = registered.id();
        std::thread::spawn(move || {
            let _ = tx.send(registered.wait().map(|s| s.signal()));
        });
        let signal = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(s) => s.unwrap(),
            Err(_) => {
                // SAFETY: kill(2) on the process this test started.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                None
            }
        };
        let spared = unregistered.try_wait().unwrap().is_none();
        let _ = unregistered.kill();
        let _ = unregistered.wait();
        (signal, spared)
    }

    #[test]
    fn the_reaper_stops_registered_groups_only_whether_awk_reads_its_input_or_the_shell() {
        let system = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
        // Without awk: a folder with only the other tools the program uses.
        let bare = tempfile::tempdir().unwrap();
        for tool in ["sed", "grep", "sleep"] {
            let found = std::env::split_paths(&system)
                .map(|d| d.join(tool))
                .find(|p| p.is_file())
                .unwrap_or_else(|| panic!("{tool} is not on PATH"));
            std::os::unix::fs::symlink(found, bare.path().join(tool)).unwrap();
        }
        for path in [system.as_os_str(), bare.path().as_os_str()] {
            assert_eq!(
                reap_with_path(path),
                (Some(libc::SIGTERM), true),
                "PATH={path:?}"
            );
        }
    }

    #[test]
    fn the_reaper_runs_in_a_group_of_its_own() {
        let pid = pid().expect("a reaper (is /bin/sh there?)");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let pgrp: u32 = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .nth(2)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            pgrp, pid,
            "Ctrl-C to mdbatch's group would reach the reaper"
        );
    }
}
