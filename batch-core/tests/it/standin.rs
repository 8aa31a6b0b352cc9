//! Stand-in agent CLIs on a temporary PATH (`tests/standins/agent_standin.py`),
//! replaying the captured output shapes; each invocation's argv is logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use batch_core::SubagentRunner;
use batch_core::runner::presets::{self, PresetKind, PresetOptions};
use serde_json::Value;

/// A folder holding `claude`, `codex` and `gemini` stand-ins, their state and a work folder.
pub struct Standins {
    pub dir: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl Standins {
    /// Stand-ins that play `scenarios` in turn (the last repeats); `None`
    /// when python3 is not available (the caller skips with the reason).
    pub fn new(scenarios: &[&str]) -> Option<Standins> {
        if std::process::Command::new("python3")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("SKIPPED: python3 is not installed; the stand-in CLIs need it");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/standins/agent_standin.py");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for name in ["claude", "codex", "gemini"] {
            std::os::unix::fs::symlink(&script, bin.join(name)).unwrap();
        }
        std::fs::write(dir.path().join("scenarios"), scenarios.join(",")).unwrap();
        Some(Standins {
            dir,
            work: tempfile::tempdir().unwrap(),
        })
    }

    pub fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// The environment the stand-ins read.
    pub fn env(&self) -> Vec<(String, String)> {
        let scenarios = std::fs::read_to_string(self.dir.path().join("scenarios")).unwrap();
        let path = format!(
            "{}:{}",
            self.bin().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        vec![
            ("PATH".into(), path),
            ("STANDIN_DIR".into(), self.dir.path().display().to_string()),
            ("STANDIN_SCENARIOS".into(), scenarios),
        ]
    }

    /// A runner of `kind` found on the stand-ins' PATH.
    pub fn runner(
        &self,
        kind: PresetKind,
        tweak: impl FnOnce(&mut PresetOptions),
    ) -> Arc<dyn SubagentRunner> {
        let mut o = PresetOptions::default();
        o.env = self.env();
        tweak(&mut o);
        presets::build(kind, o).unwrap()
    }

    /// The logged invocations, in order.
    pub fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The argv (program excluded) of each invocation.
    pub fn argvs(&self) -> Vec<Vec<String>> {
        self.calls()
            .iter()
            .map(|c| {
                c["argv"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect()
            })
            .collect()
    }

    pub fn task(&self, id: &str, text: &str) -> batch_core::TaskSpec {
        let mut t = batch_core::TaskSpec::new(id, text);
        t = t.with_workdir(self.work.path().to_path_buf());
        t
    }
}

/// The value after `flag` in `argv`, if the flag is there.
pub fn flag(argv: &[String], flag: &str) -> Option<String> {
    argv.iter()
        .position(|a| a == flag)
        .and_then(|i| argv.get(i + 1).cloned())
}
