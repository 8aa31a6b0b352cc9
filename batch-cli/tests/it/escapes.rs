//! Terminal escapes from task files and agents never reach the terminal:
//! every human-facing command shows them visibly instead (`^[`), and
//! `logs --raw` still gives the bytes.

use super::Fixture;

/// An OSC that sets the window title, a bell, a screen clear, a CSI in its
/// one-byte C1 form, and a bidi override.
const HOSTILE: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}";

/// What an id may hold of that (`;` separates hints).
const HOSTILE_ID: &str = "\u{1b}[2J\u{7}\u{9b}31m\u{202e}";

fn hostile_file() -> String {
    format!(
        "# Batch\n\n\
         - [ ] <!-- id: ev{HOSTILE_ID}il --> title{HOSTILE} task\n\
         - [ ] <!-- id: b --> second{HOSTILE}\n"
    )
}

/// Fails naming the command when `bytes` hold a control character other
/// than newline and tab, or a C1/bidi control.
fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let bad: Vec<char> = text
        .chars()
        .filter(|c| {
            (c.is_control() && *c != '\n' && *c != '\t')
                || ('\u{202a}'..='\u{202e}').contains(c)
                || ('\u{2066}'..='\u{2069}').contains(c)
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{what} printed raw control characters {bad:?}:\n{text}"
    );
}

#[test]
fn plan_check_status_run_and_logs_show_escapes_from_the_file_and_the_agent_visibly() {
    let f = Fixture::new(&hostile_file());
    // The agent prints escapes; on the first task it fails with them.
    f.script(
        "agent.sh",
        &format!(
            "printf 'out{HOSTILE}\\n'\nif [ \"$MDBATCH_TASK_ID\" != b ]; then echo 'err{HOSTILE}' >&2; exit 3; fi\n"
        ),
    );
    for args in [
        &["plan"][..],
        &["plan", "--format", "dot"],
        &["plan", "--format", "mermaid"],
        &["check"],
    ] {
        let out = f.mdbatch(args);
        assert_clean(&format!("{args:?} stdout"), &out.stdout);
        assert_clean(&format!("{args:?} stderr"), &out.stderr);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            all.contains("^[]0;pwned^G") || args == ["check"],
            "{args:?} does not show the escape visibly:\n{all}"
        );
    }
    let run = f.mdbatch(&[
        "run",
        "--cmd",
        "./agent.sh -- {task}",
        "--retries",
        "0",
        "-v",
    ]);
    assert_clean("run stderr", &run.stderr);
    assert_clean("run stdout", &run.stdout);
    let shown = String::from_utf8_lossy(&run.stderr);
    assert!(shown.contains("^[]0;pwned^G"), "{shown}");
    for args in [&["status"][..], &["logs", "b"]] {
        let out = f.mdbatch(args);
        assert_clean(&format!("{args:?} stdout"), &out.stdout);
        assert_clean(&format!("{args:?} stderr"), &out.stderr);
    }
    let raw = f.mdbatch(&["logs", "b", "--raw"]);
    assert!(
        String::from_utf8_lossy(&raw.stdout).contains(HOSTILE),
        "logs --raw lost the bytes: {:?} {:?}\nrun: {shown}",
        String::from_utf8_lossy(&raw.stdout),
        String::from_utf8_lossy(&raw.stderr)
    );
}
