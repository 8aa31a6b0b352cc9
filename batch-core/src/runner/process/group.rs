//! Process groups a previous run left behind: find them (Linux `/proc`) and
//! stop them (SIGTERM, the grace period, SIGKILL).
//!
//! A pid from the journal may have been reused by an unrelated process, so a
//! group is only signalled when one of its live members carries the task's
//! `MDBATCH_TASK_ID` in its environment.

use std::time::Duration;

/// Whether a process group still has a live member.
pub(crate) fn group_alive(pgid: u32) -> bool {
    let Ok(p) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    if p <= 1 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks for existence; no memory effects.
    unsafe { libc::kill(-p, 0) == 0 }
}

/// Whether some live member of process group `pgid` is a subagent started
/// for task `id` (its environment holds `MDBATCH_TASK_ID=<id>`), so a pid
/// reused by an unrelated process is never signalled.
pub(crate) fn group_runs_task(pgid: u32, id: &str) -> bool {
    let want = format!("MDBATCH_TASK_ID={id}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| process_group_of(*pid) == Some(pgid))
        .any(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == want.as_bytes()))
        })
}

/// The process group of `pid`, from `/proc/<pid>/stat`.
fn process_group_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces and parentheses):
    // state ppid pgrp ...
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// Whether process group `pgid` has a member that is not a zombie.
fn group_has_live_member(pgid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return group_alive(pgid);
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let mut f = stat
                .rsplit_once(')')
                .map(|r| r.1)
                .unwrap_or("")
                .split_whitespace();
            let state = f.next();
            let pgrp = f.nth(1).and_then(|p| p.parse::<u32>().ok());
            pgrp == Some(pgid) && !matches!(state, Some("Z") | Some("X") | None)
        })
}

/// SIGTERMs process group `pgid`, waits up to `grace` (real time) for it to
/// go, then SIGKILLs it. Returns whether the group is gone.
pub(crate) async fn stop_group(pgid: u32, grace: Duration) -> bool {
    let Ok(p) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    if p <= 1 {
        return false;
    }
    let wait = move |limit: Duration| {
        let until = std::time::Instant::now() + limit;
        while group_has_live_member(pgid) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        !group_has_live_member(pgid)
    };
    // SAFETY: kill(2) on a process group checked to run one of our tasks.
    unsafe { libc::kill(-p, libc::SIGTERM) };
    if tokio::task::spawn_blocking(move || wait(grace))
        .await
        .unwrap_or(false)
    {
        return true;
    }
    // SAFETY: as above.
    unsafe { libc::kill(-p, libc::SIGKILL) };
    tokio::task::spawn_blocking(move || wait(Duration::from_secs(1)))
        .await
        .unwrap_or(false)
}
