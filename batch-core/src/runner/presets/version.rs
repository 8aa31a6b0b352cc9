//! Which CLI versions the presets were tested with, and a probe of what is
//! installed (`mdbatch doctor`).
//!
//! Each agent preset knows the oldest version of its CLI it was tested
//! against (the captures its parser was written from). [`probe`] runs
//! `PROGRAM --version` and the help text, then reports: missing, older than
//! tested (flagged), tested or newer, and any flag the preset passes that the
//! help no longer lists.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{PresetKind, find_on_path};

/// How long a `--version` or `--help` probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// The oldest CLI version a preset was tested with.
pub fn oldest_tested(kind: PresetKind) -> Option<&'static str> {
    match kind {
        PresetKind::Claude => Some("2.1.330"),
        PresetKind::Codex => Some("0.169.0"),
        PresetKind::Gemini => Some("0.61.0"),
        _ => None,
    }
}

/// The npm package of an agent CLI.
pub fn npm_package(kind: PresetKind) -> Option<&'static str> {
    match kind {
        PresetKind::Claude => Some("@anthropic-ai/claude-code"),
        PresetKind::Codex => Some("@openai/codex"),
        PresetKind::Gemini => Some("@google/gemini-cli"),
        _ => None,
    }
}

/// The flags a preset passes that its CLI's help is expected to list, and
/// the help command (arguments after the program).
fn expected_flags(kind: PresetKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        // `--max-turns` is hidden from Claude Code's help; it is tested instead.
        PresetKind::Claude => (
            &["--help"],
            &[
                "--print",
                "--output-format",
                "--verbose",
                "--session-id",
                "--resume",
                "--permission-mode",
                "--model",
            ],
        ),
        PresetKind::Codex => (
            &["exec", "--help"],
            &[
                "--json",
                "--skip-git-repo-check",
                "--sandbox",
                "--disable",
                "--model",
            ],
        ),
        PresetKind::Gemini => (
            &["--help"],
            &[
                "--prompt",
                "--output-format",
                "--skip-trust",
                "--approval-mode",
                "--session-id",
                "--resume",
                "--model",
            ],
        ),
        _ => (&[], &[]),
    }
}

/// A `major.minor.patch` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u64, pub u64, pub u64);

impl Version {
    /// The first `N.N.N` in `text` (`2.1.330 (Claude Code)`, `codex-cli 0.169.0`).
    pub fn find_in(text: &str) -> Option<Version> {
        text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter_map(|w| {
                let parts: Vec<&str> = w.trim_matches('.').split('.').collect();
                if parts.len() < 3 {
                    return None;
                }
                Some(Version(
                    parts[0].parse().ok()?,
                    parts[1].parse().ok()?,
                    parts[2].parse().ok()?,
                ))
            })
            .next()
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// How an installed CLI compares with what was tested.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VersionStatus {
    /// Not found.
    Missing,
    /// Found, but `--version` failed or printed no version.
    Unknown(String),
    /// Older than the oldest tested version.
    Untested {
        /// What is installed.
        found: Version,
        /// The oldest tested.
        oldest: Version,
    },
    /// The oldest tested version or newer.
    Tested {
        /// What is installed.
        found: Version,
    },
}

/// What [`probe`] found about one CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeReport {
    /// The preset.
    pub kind: PresetKind,
    /// Where the CLI is, when found.
    pub program: Option<PathBuf>,
    /// The version verdict.
    pub status: VersionStatus,
    /// Flags the preset passes that the CLI's help does not list.
    pub missing_flags: Vec<String>,
}

impl ProbeReport {
    /// Whether the preset can be expected to work (found, a version, no missing flags).
    pub fn ok(&self) -> bool {
        matches!(self.status, VersionStatus::Tested { .. }) && self.missing_flags.is_empty()
    }

    /// One line for people: `claude  2.1.330  ok (oldest tested 2.1.330)  /usr/bin/claude`.
    pub fn line(&self) -> String {
        let oldest = oldest_tested(self.kind).unwrap_or("-");
        let place = self
            .program
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut s = match &self.status {
            VersionStatus::Missing => format!(
                "{:<7} not found on PATH; install: npm install -g {}",
                self.kind.name(),
                npm_package(self.kind).unwrap_or("?")
            ),
            VersionStatus::Unknown(why) => format!(
                "{:<7} found at {place}, version unknown: {why}",
                self.kind.name()
            ),
            VersionStatus::Untested { found, oldest } => format!(
                "{:<7} {found}  UNTESTED: older than {oldest}, the oldest version mdbatch was tested with; upgrade  {place}",
                self.kind.name()
            ),
            VersionStatus::Tested { found } => {
                format!(
                    "{:<7} {found}  ok (tested from {oldest})  {place}",
                    self.kind.name()
                )
            }
        };
        if !self.missing_flags.is_empty() {
            s.push_str(&format!(
                "\n        its --help lacks flags the preset uses: {}",
                self.missing_flags.join(" ")
            ));
        }
        s
    }
}

/// Probes one agent CLI: `program` (default: the preset's name on `PATH`).
pub fn probe(kind: PresetKind, program: Option<&Path>) -> ProbeReport {
    let mut report = ProbeReport {
        kind,
        program: None,
        status: VersionStatus::Missing,
        missing_flags: Vec::new(),
    };
    let Some(name) = kind.program() else {
        return report;
    };
    let found = match program {
        Some(p) if p.components().count() > 1 => p.is_file().then(|| p.to_path_buf()),
        Some(p) => find_on_path(&p.to_string_lossy(), std::env::var_os("PATH").as_deref()),
        None => find_on_path(name, std::env::var_os("PATH").as_deref()),
    };
    let Some(path) = found else {
        return report;
    };
    report.program = Some(path.clone());
    report.status = match run_capture(&path, &["--version"]) {
        Err(e) => VersionStatus::Unknown(e),
        Ok(out) => match Version::find_in(&out) {
            None => VersionStatus::Unknown(format!(
                "`--version` printed {:?}",
                super::summary_line(&out, 80)
            )),
            Some(found) => {
                let oldest = oldest_tested(kind)
                    .and_then(Version::find_in)
                    .unwrap_or(Version(0, 0, 0));
                if found < oldest {
                    VersionStatus::Untested { found, oldest }
                } else {
                    VersionStatus::Tested { found }
                }
            }
        },
    };
    let (help_args, flags) = expected_flags(kind);
    if let Ok(help) = run_capture(&path, help_args) {
        report.missing_flags = flags
            .iter()
            .filter(|f| !help.contains(*f))
            .map(|f| f.to_string())
            .collect();
    }
    report
}

/// A one-line warning when the installed CLI is older than the oldest tested
/// version or prints no version (only `--version` runs: cheap enough for the
/// start of every `mdbatch run`). `None` when it is fine or not installed
/// (a missing CLI is [`build`](super::build)'s error).
pub fn untested_warning(kind: PresetKind, program: Option<&Path>) -> Option<String> {
    let name = kind.program()?;
    let path = match program {
        Some(p) if p.components().count() > 1 => p.to_path_buf(),
        Some(p) => find_on_path(&p.to_string_lossy(), std::env::var_os("PATH").as_deref())?,
        None => find_on_path(name, std::env::var_os("PATH").as_deref())?,
    };
    let oldest = oldest_tested(kind)?;
    match run_capture(&path, &["--version"])
        .ok()
        .as_deref()
        .and_then(Version::find_in)
    {
        None => Some(format!(
            "`{name} --version` printed no version; mdbatch was tested with {name} {oldest} and later (see `mdbatch doctor`)"
        )),
        Some(found) if Some(found) < Version::find_in(oldest) => Some(format!(
            "{name} {found} is older than {oldest}, the oldest version mdbatch was tested with; upgrade it ({})",
            npm_package(kind)
                .map(|p| format!("npm install -g {p}"))
                .unwrap_or_default()
        )),
        Some(_) => None,
    }
}

/// Runs `program args…` with stdin closed; stdout and stderr together.
fn run_capture(program: &Path, args: &[&str]) -> Result<String, String> {
    run_capture_within(program, args, PROBE_TIMEOUT)
}

/// How long output is still read after the probe ended (a process that left
/// the probe's group may hold its pipes open; it is not waited for).
const PROBE_DRAIN: Duration = Duration::from_secs(2);

/// [`run_capture`] with a time limit.
///
/// The probe runs in a process group of its own. Its pipes are read while it
/// runs (a chatty `--help` cannot fill them and stall), and the group is
/// killed both when the limit passes and once the probe has exited, before it
/// is reaped: a `--version` that leaves a background process holding stdout
/// (an updater, a daemon) neither keeps mdbatch waiting nor outlives it.
fn run_capture_within(program: &Path, args: &[&str], limit: Duration) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::sync::mpsc;

    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let pid = libc::pid_t::try_from(child.id()).map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel::<(usize, Vec<u8>)>();
    let readers: Vec<Box<dyn Read + Send>> = vec![
        Box::new(child.stdout.take().expect("stdout was piped")),
        Box::new(child.stderr.take().expect("stderr was piped")),
    ];
    for (i, mut r) in readers.into_iter().enumerate() {
        let tx = tx.clone();
        // A reader blocked by an escaped holder of the pipe is left behind
        // (detached), never joined.
        let _ = std::thread::Builder::new()
            .name("mdbatch-probe".into())
            .spawn(move || {
                let mut buf = Vec::new();
                let _ = r.by_ref().take(1 << 20).read_to_end(&mut buf);
                let _ = tx.send((i, buf));
            });
    }
    drop(tx);
    let kill_group = || {
        // SAFETY: kill(2) on the group we created; its leader is not reaped
        // yet, so the id cannot have been reused.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    };
    let start = Instant::now();
    let timed_out = loop {
        // Wait for an exit without reaping it (WNOWAIT), so the group id stays ours.
        // SAFETY: waitid(2) fills a zeroed siginfo_t we own.
        let exited = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            r != 0 || info.si_pid() != 0
        };
        if exited {
            break false;
        }
        if start.elapsed() > limit {
            break true;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    kill_group();
    let status = child.wait().map_err(|e| e.to_string())?;
    if timed_out {
        return Err(format!(
            "`{}` did not answer within {}s",
            args.join(" "),
            limit.as_secs()
        ));
    }
    let mut outs = [Vec::new(), Vec::new()];
    let until = Instant::now() + PROBE_DRAIN;
    for _ in 0..2 {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok((i, buf)) => outs[i] = buf,
            Err(_) => break,
        }
    }
    let mut text = String::from_utf8_lossy(&outs[0]).into_owned();
    text.push_str(&String::from_utf8_lossy(&outs[1]));
    if !status.success() && text.trim().is_empty() {
        return Err(format!("`{}` failed with {}", args.join(" "), status));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_found_in_each_clis_version_line() {
        assert_eq!(
            Version::find_in("2.1.330 (Claude Code)"),
            Some(Version(2, 1, 330))
        );
        assert_eq!(
            Version::find_in("codex-cli 0.169.0"),
            Some(Version(0, 169, 0))
        );
        assert_eq!(Version::find_in("0.61.0\n"), Some(Version(0, 61, 0)));
        assert_eq!(Version::find_in("no version"), None);
        assert!(Version(2, 1, 99) < Version(2, 1, 330));
    }

    #[test]
    fn a_missing_cli_reports_missing_with_the_install_command() {
        let r = probe(PresetKind::Codex, Some(Path::new("/nonexistent/codex")));
        assert_eq!(r.status, VersionStatus::Missing);
        assert!(r.line().contains("npm install -g @openai/codex"));
    }

    /// Whether `pid` is still a live process 10 s from now (SIGKILL is
    /// delivered asynchronously; the wait ends as soon as it is gone).
    fn survives(pid: i32) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while alive(pid) {
            if Instant::now() > until {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
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

    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("cli");
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_version_probe_that_leaves_a_process_holding_stdout_returns_and_the_process_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let bg = dir.path().join("bg");
        let cli = script(
            dir.path(),
            &format!(
                "echo 2.1.400; sleep 300 & echo $! > {}; exit 0\n",
                bg.display()
            ),
        );
        // Before: `wait_with_output` waited for the background `sleep` (300 s).
        let out = run_capture(&cli, &["--version"]).unwrap();
        assert_eq!(Version::find_in(&out), Some(Version(2, 1, 400)));
        let pid: i32 = std::fs::read_to_string(&bg)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(!survives(pid), "the probe's background process outlived it");
    }

    #[test]
    fn a_hung_probe_is_killed_with_its_children_when_the_limit_passes() {
        let dir = tempfile::tempdir().unwrap();
        let bg = dir.path().join("bg");
        let ready = dir.path().join("ready");
        let cli = script(
            dir.path(),
            &format!(
                "sleep 300 & echo $! > {}; touch {}; wait\n",
                bg.display(),
                ready.display()
            ),
        );
        let err = run_capture_within(&cli, &["--version"], Duration::from_secs(3)).unwrap_err();
        assert!(err.contains("did not answer within 3s"), "{err}");
        if !ready.exists() {
            // The machine was too slow for the script to start its child: nothing to check.
            eprintln!("skipped: the probe did not start its child within the limit");
            return;
        }
        let pid: i32 = std::fs::read_to_string(&bg)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(!survives(pid), "the hung probe's child outlived it");
    }
}
