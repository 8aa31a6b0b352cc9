//! Shell completions and the help text of every subcommand.

use std::process::Command;

use crate::bin;

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    for (shell, checker) in [
        ("bash", &["bash", "-n"][..]),
        ("zsh", &["zsh", "-n"]),
        ("fish", &["fish", "--no-execute"]),
    ] {
        let out = Command::new(bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for word in [
            "mdbatch",
            "status",
            "logs",
            "reset",
            "completions",
            "json",
            "junit",
        ] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
        // When the shell is installed, it must accept the script's syntax.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("completions");
        std::fs::write(&path, &script).unwrap();
        match Command::new(checker[0])
            .args(&checker[1..])
            .arg(&path)
            .output()
        {
            Ok(check) => assert!(
                check.status.success(),
                "{shell} rejects its completions: {}",
                String::from_utf8_lossy(&check.stderr)
            ),
            Err(_) => println!(
                "{} not installed: syntax of its completions not checked",
                checker[0]
            ),
        }
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = Command::new(bin())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_subcommand_help_has_examples() {
    for sub in [
        "plan",
        "run",
        "status",
        "check",
        "logs",
        "reset",
        "init",
        "doctor",
        "demo",
        "completions",
    ] {
        let out = Command::new(bin()).args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub} --help");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("Examples:\n  mdbatch "),
            "{sub} --help has no examples:\n{text}"
        );
    }
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("mdbatch ")
    );
}
