//! Integration tests of the `mdbatch` binary: one test binary, one module per capability.

mod cap;
mod completions;
mod demo;
mod detach;
mod display;
mod doctor;
mod escapes;
mod harness;
mod init;
mod isolate;
mod junit;
mod mcp;
mod mcp_claude;
mod plan_cli;
mod pty;
mod run_claude;
mod run_e2e;
mod run_edits;
mod slurm;
mod state_safety;
mod status;
mod trust;
mod unsafe_inputs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mdbatch")
}

/// A folder with a task file and agent scripts.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    /// The user's state folder outside the project (`XDG_STATE_HOME`), where
    /// approved verify commands are kept: one per fixture.
    pub state_home: tempfile::TempDir,
}

impl Fixture {
    /// A new folder holding `task.md` with `text`.
    pub fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("task.md"), text).expect("write task.md");
        let state_home = tempfile::tempdir().expect("a temp dir");
        Self { dir, state_home }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A file in the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes an executable `sh` script.
    pub fn script(&self, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.file(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).expect("write script");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// `mdbatch ARGS` in the folder, stdin closed, with a neutral environment
    /// (no `CI`, no `NO_COLOR`), waiting for it to end.
    pub fn mdbatch(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run mdbatch")
    }

    /// The command, not started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(self.path())
            .env_remove("CI")
            .env_remove("NO_COLOR")
            .env("XDG_STATE_HOME", self.state_home.path())
            .stdin(std::process::Stdio::null());
        c
    }

    /// The task file's text.
    pub fn task_md(&self) -> String {
        std::fs::read_to_string(self.file("task.md")).expect("read task.md")
    }
}

/// Waits until `cond` holds, checking every few milliseconds; panics with
/// `what` after `limit`. Used to synchronise with other processes through
/// files and screen contents, never to let time pass.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The standard test batch: two waves; in wave 1 `alpha` and `beta` (group
/// api) and `gamma` (group db); in wave 2 `delta`. The agent script
/// (`agent.sh`) prints two lines per attempt; `beta` fails once then succeeds
/// (flaky); `gamma` always fails; `delta` depends on `gamma`, so it is skipped.
pub const BATCH: &str = "# Demo\n\nShared context.\n\n## Wave 1\n\n### api\n- [ ] Create the model <!-- id: alpha -->\n- [ ] Parse the hints <!-- id: beta -->\n\n### db\n- [ ] Write migrations <!-- id: gamma -->\n\n## Wave 2\n\n- [ ] Write the docs <!-- id: delta; after: gamma -->\n";

/// The agent for [`BATCH`].
pub const AGENT: &str = r#"echo "working on $MDBATCH_TASK_ID attempt $MDBATCH_ATTEMPT"
echo "more output from $MDBATCH_TASK_ID" >&2
case "$MDBATCH_TASK_ID" in
  beta) [ "$MDBATCH_ATTEMPT" = 1 ] && { echo "flaked: try again" >&2; exit 1; } ;;
  gamma) echo "migration failed: table exists" >&2; exit 1 ;;
esac
exit 0
"#;

/// A fixture with [`BATCH`] and [`AGENT`].
pub fn batch() -> Fixture {
    let f = Fixture::new(BATCH);
    f.script("agent.sh", AGENT);
    f
}
