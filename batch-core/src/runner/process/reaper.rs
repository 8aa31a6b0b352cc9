//! The reaper: a small process that outlives mdbatch only to stop the
//! subagents mdbatch could not.
//!
//! When mdbatch is killed outright (`kill -9`, the OOM killer) no code of
//! ours runs: `PR_SET_PDEATHSIG` ends each subagent's direct child, but its
//! children and grandchildren (the agent's shell commands, test runners,
//! servers) live on. So the first spawn starts one reaper per mdbatch
//! process: `/bin/sh` running [`SCRIPT`], in a process group of its own
//! (Ctrl-C does not reach it), ignoring SIGINT/SIGTERM/SIGHUP, reading a
//! pipe whose only write end is mdbatch's.
//!
//! - Every subagent registers its process group itself, in the forked child
//!   before `exec` (`+ PGID GRACE`), so no window exists in which a group
//!   runs unknown to the reaper (a pid that had not reached the journal yet
//!   was never found).
//! - mdbatch unregisters a group once it has killed it (`- PGID`).
//! - When mdbatch dies the pipe reaches end-of-file: the reaper TERMs every
//!   group still registered, gives them the longest grace period registered,
//!   KILLs what is left, and exits. When mdbatch ends normally nothing is
//!   registered and it exits at once.
//!
//! Pitfalls: the write end is close-on-exec, so no subagent holds it (the
//! end-of-file would never come). Lines are shorter than `PIPE_BUF`, so
//! writes from several threads and forked children never interleave. A
//! process that leaves its group (`setsid`) is not tracked; a cgroup would be
//! needed for that. Without `/bin/sh` there is no reaper and the journal
//! check of the next run is the only cleanup.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The reaper's program (arguments: none; input: registrations).
const SCRIPT: &str = r#"trap '' INT TERM HUP QUIT PIPE
grace=1
while read -r op pg g; do
  case "$pg" in ''|*[!0-9]*) continue ;; esac
  case "$op" in
    +) eval "g_$pg=1"
       case "$g" in ''|*[!0-9]*) ;; *) [ "$g" -gt "$grace" ] && grace=$g ;; esac ;;
    -) unset "g_$pg" ;;
  esac
done
groups=$(set | sed -n 's/^g_\([0-9][0-9]*\)=.*/\1/p')
[ -z "$groups" ] && exit 0
for x in $groups; do kill -s TERM -- "-$x" 2>/dev/null; done
i=0
while [ "$i" -lt "$grace" ]; do
  alive=''
  for x in $groups; do kill -s 0 -- "-$x" 2>/dev/null && alive="$alive $x"; done
  [ -z "$alive" ] && exit 0
  groups=$alive
  sleep 0.1
  i=$((i+1))
done
for x in $groups; do kill -s KILL -- "-$x" 2>/dev/null; done
"#;

struct Reaper {
    write: OwnedFd,
    pid: u32,
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
    let child = {
        use std::os::unix::process::CommandExt;
        Command::new("/bin/sh")
            .args(["-c", SCRIPT, "mdbatch-reaper"])
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
    Some(Reaper { write, pid })
}

/// The descriptor a child writes its registration to, starting the reaper
/// if needed (`None`: no reaper).
pub(crate) fn fd() -> Option<RawFd> {
    reaper().map(|r| r.write.as_raw_fd())
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
    let Some(fd) = reaper().map(|r| r.write.as_raw_fd()) else {
        return;
    };
    let line = format!("- {pgid}\n");
    // SAFETY: writes the bytes of a live String to our own pipe.
    unsafe { libc::write(fd, line.as_ptr().cast(), line.len()) };
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
