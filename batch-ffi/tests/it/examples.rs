//! The C and Python examples, built and run against the library of this build.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{TaskFile, library_dir, repo_root};

const TASKS: &str = "\
# Example

## Wave 1: build
- [ ] write the parser
- [ ] write the printer (flaky)

## Wave 2: ship
- [ ] publish the crate
";

fn assert_example_output(what: &str, output: &Output, file: &TaskFile) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains(&format!("mdbatch {}", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );

    let plan = stdout
        .split_once("--- plan ---\n")
        .and_then(|(_, rest)| rest.split_once("\n--- end of plan ---"))
        .map(|(plan, _)| plan)
        .expect("the plan between its markers");
    let plan: serde_json::Value = serde_json::from_str(plan).expect("the plan is JSON");
    for task in [
        "write the parser",
        "write the printer (flaky)",
        "publish the crate",
    ] {
        assert!(
            plan.to_string().contains(task),
            "the plan shows `{task}`: {plan}"
        );
    }

    let events: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .map(|l| serde_json::from_str(l).expect("each event is JSON"))
        .collect();
    let of_type = |t: &str| events.iter().filter(|e| e["type"] == t).count();
    assert_eq!(of_type("run_started"), 1, "{stdout}");
    assert_eq!(of_type("task_succeeded"), 3, "{stdout}");
    assert_eq!(
        of_type("task_retrying"),
        1,
        "the flaky task is retried: {stdout}"
    );
    assert_eq!(of_type("run_finished"), 1, "{stdout}");
    assert!(
        events.iter().any(|e| e["type"] == "task_progress"
            && e["data"]["progress"]["line"]
                .as_str()
                .is_some_and(|l| l.contains("runner: task"))),
        "the runner's progress lines arrive as events: {stdout}"
    );
    assert!(
        stdout.contains(&format!("events received: {}", events.len())),
        "{stdout}"
    );
    assert!(stdout.contains("run: MDBATCH_STATUS_OK"), "{stdout}");
    assert_eq!(
        file.read(),
        TASKS.replace("- [ ]", "- [x]"),
        "every box checked, nothing else changed"
    );
}

/// Compiles examples/c/mdbatch_example.c into `out` with the flags CI uses.
pub fn compile_c_example(out: &Path) -> Result<(), String> {
    let root = repo_root();
    let lib = library_dir();
    let output = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root.join("batch-ffi/include"))
        .arg(root.join("examples/c/mdbatch_example.c"))
        .arg("-L")
        .arg(&lib)
        .arg("-lmdbatch")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(out)
        .output()
        .map_err(|e| format!("cannot run gcc: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "gcc failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

#[test]
fn the_c_example_compiles_warning_free_and_runs_a_task_file() {
    if Command::new("gcc").arg("--version").output().is_err() {
        eprintln!("skipped: gcc is not installed");
        return;
    }
    let file = TaskFile::new(TASKS);
    let exe = file.dir.path().join("mdbatch_example");
    compile_c_example(&exe).unwrap();
    // `cargo test` puts target/<profile> on LD_LIBRARY_PATH, which beats the
    // rpath; make sure the library just compiled against is the one loaded.
    let output = Command::new(&exe)
        .arg(&file.path)
        .env("LD_LIBRARY_PATH", library_dir())
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the C example");
    assert_example_output("the C example", &output, &file);
}

/// The system libraries a Rust static library needs on Linux
/// (`--print native-static-libs`).
const NATIVE_STATIC_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

#[test]
fn the_c_example_also_links_against_the_static_library() {
    if !cfg!(target_os = "linux") || Command::new("gcc").arg("--version").output().is_err() {
        eprintln!("skipped: needs gcc on Linux");
        return;
    }
    let root = repo_root();
    let file = TaskFile::new(TASKS);
    let exe = file.dir.path().join("mdbatch_example_static");
    let output = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root.join("batch-ffi/include"))
        .arg(root.join("examples/c/mdbatch_example.c"))
        .arg(library_dir().join("libmdbatch.a"))
        .args(NATIVE_STATIC_LIBS)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run gcc");
    assert!(
        output.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // No libmdbatch.so may be needed at run time.
    let output = Command::new(&exe)
        .arg(&file.path)
        .env_remove("LD_LIBRARY_PATH")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the static C example");
    assert_example_output("the static C example", &output, &file);
}

#[test]
fn the_python_example_runs_a_task_file_through_ctypes() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let file = TaskFile::new(TASKS);
    let output = Command::new("python3")
        .arg(repo_root().join("examples/python/mdbatch_example.py"))
        .arg(&file.path)
        .env("MDBATCH_LIB", library_dir().join("libmdbatch.so"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the Python example");
    assert_example_output("the Python example", &output, &file);
}
