//! The live display, under a pseudo-terminal, read back through a vt100
//! emulator: a screen mid-run (several subagents working, one on its retry),
//! the dump on a key press and on SIGUSR1, narrow terminals and a resize, and
//! the screen at the end.
//!
//! Synchronisation is by files: each agent attempt creates `started-ID-N`
//! and then waits for the test to create `go`, so the mid-run screen is
//! captured while every subagent is known to be running.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

use crate::{Fixture, bin, wait_for};

const LIMIT: Duration = Duration::from_secs(30);

const TASKS: &str = "# Live\n\n## Wave 1\n\n### api\n- [ ] Create the model <!-- id: alpha -->\n- [ ] Parse the hints <!-- id: beta -->\n\n### db\n- [ ] Write migrations <!-- id: gamma -->\n- [ ] Seed the data <!-- id: delta -->\n\n## Wave 2\n\n- [ ] Write the docs <!-- id: epsilon -->\n";

/// gamma's first attempt fails at once; every other wave-1 attempt says what
/// it edits, then waits for `go`.
const AGENT: &str = r#"id=$MDBATCH_TASK_ID; n=$MDBATCH_ATTEMPT
echo "working on $id (attempt $n)"
if [ "$id" = epsilon ]; then echo "docs written"; exit 0; fi
if [ "$id" = gamma ] && [ "$n" = 1 ]; then echo "connection reset by peer" >&2; exit 1; fi
echo "editing src/$id.rs"
touch "started-$id-$n"
while [ ! -e go ]; do sleep 0.02; done
echo "finished $id"
"#;

/// A running `mdbatch run` on a pseudo-terminal.
struct Session {
    screen: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
    master: Box<dyn portable_pty::MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Session {
    fn start(f: &Fixture, cols: u16, rows: u16, args: &[&str]) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut cmd = CommandBuilder::new(bin());
        cmd.args(args);
        cmd.cwd(f.path());
        cmd.env_remove("CI");
        cmd.env("NO_COLOR", "1");
        cmd.env("TERM", "xterm-256color");
        let child = pair.slave.spawn_command(cmd).expect("spawn mdbatch");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        let writer = pair.master.take_writer().expect("pty writer");
        let screen = Arc::new(Mutex::new(vt100::Parser::new(nz(rows), nz(cols), 0)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let screen = Arc::clone(&screen);
            let raw = Arc::clone(&raw);
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    screen.lock().unwrap().process(&buf[..n]);
                    raw.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            })
        };
        Self {
            screen,
            raw,
            master: pair.master,
            writer,
            child,
            reader: Some(reader),
        }
    }

    /// The screen, one line per row, trailing blanks removed.
    fn text(&self) -> String {
        screen_text(&self.rows())
    }

    fn rows(&self) -> Vec<String> {
        let p = self.screen.lock().unwrap();
        let (_, cols) = p.screen().size();
        p.screen().rows(0, cols.get()).collect()
    }

    fn raw_text(&self) -> String {
        String::from_utf8_lossy(&self.raw.lock().unwrap()).into_owned()
    }

    fn wait_screen(&self, what: &str, cond: impl Fn(&str) -> bool) {
        let start = std::time::Instant::now();
        loop {
            let t = self.text();
            if cond(&t) {
                return;
            }
            assert!(
                start.elapsed() < LIMIT,
                "timed out waiting for {what}; screen:\n{t}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn resize(&self, cols: u16, rows: u16) {
        self.screen
            .lock()
            .unwrap()
            .screen_mut()
            .set_size(nz(rows), nz(cols));
        self.master
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("resize");
    }

    fn finish(mut self) -> (u32, String) {
        let status = self.child.wait().expect("wait for mdbatch");
        drop(self.writer);
        drop(self.master);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let p = self.screen.lock().unwrap();
        let (_, cols) = p.screen().size();
        let rows: Vec<String> = p.screen().rows(0, cols.get()).collect();
        (status.exit_code(), screen_text(&rows))
    }
}

fn fixture() -> Fixture {
    let f = Fixture::new(TASKS);
    f.script("agent.sh", AGENT);
    f
}

fn wait_started(f: &Fixture) {
    for file in [
        "started-alpha-1",
        "started-beta-1",
        "started-delta-1",
        "started-gamma-2",
    ] {
        wait_for(file, LIMIT, || f.file(file).exists());
    }
}

/// The rows of the live area: spinner lines and the totals line.
fn live_rows(rows: &[String]) -> Vec<&String> {
    rows.iter()
        .filter(|r| {
            let first = r.chars().next().unwrap_or(' ');
            "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏↻█▌░".contains(first) || r.starts_with("  ") && r.contains(" running ·")
        })
        .collect()
}

#[test]
fn the_live_display_mid_run_shows_each_subagent_a_retry_and_the_totals_then_a_summary() {
    let f = fixture();
    let s = Session::start(&f, 110, 30, &["run", "--cmd", "./agent.sh", "-j", "4"]);
    wait_started(&f);
    s.wait_screen("every running subagent and the totals", |t| {
        ["alpha", "beta", "gamma", "delta"]
            .iter()
            .all(|id| t.contains(&format!("editing src/{id}.rs")))
            && t.contains("4 running")
    });
    let mid = s.text();
    println!("--- screen mid-run ---\n{mid}--- end ---");
    insta::with_settings!({filters => screen_filters()}, {
        insta::assert_snapshot!("live_display_mid_run", mid);
    });

    let line = |id: &str| {
        mid.lines()
            .find(|l| l.contains(&format!(" {id} ")) && l.contains("editing"))
            .unwrap_or_else(|| panic!("no live line for {id}:\n{mid}"))
            .to_string()
    };
    for (id, title, attempt) in [
        ("alpha", "Create the model", 1),
        ("beta", "Parse the hints", 1),
        ("gamma", "Write migrations", 2),
        ("delta", "Seed the data", 1),
    ] {
        let l = line(id);
        assert!(
            "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏".contains(l.chars().next().unwrap()),
            "spinner first: {l}"
        );
        assert!(l.contains(title), "short title: {l}");
        assert!(l.contains(&format!("attempt {attempt}")), "attempt: {l}");
        assert!(
            l.contains(&format!("editing src/{id}.rs")),
            "latest activity: {l}"
        );
        // elapsed: a number of seconds between the attempt and the activity
        let after = &l[l.find(&format!("attempt {attempt}")).unwrap() + 9..];
        assert!(
            after
                .trim_start()
                .split('s')
                .next()
                .unwrap()
                .parse::<u32>()
                .is_ok(),
            "elapsed: {l}"
        );
    }
    // gamma's failed first attempt scrolled above the live lines.
    assert!(
        mid.contains("↻ gamma attempt 1: failed, ") && mid.contains("connection reset by p"),
        "{mid}"
    );
    let totals = mid.lines().find(|l| l.contains(" running ·")).unwrap();
    assert!(
        totals.contains("/5 done · 4 running · 0 failed"),
        "{totals}"
    );
    assert!(totals.contains("wave"), "{totals}");

    // The tasks may finish now.
    std::fs::write(f.file("go"), "").unwrap();
    let (code, end) = s.finish();
    println!("--- screen at the end ---\n{end}--- end ---");
    assert_eq!(code, 0, "{end}");
    for id in ["alpha", "beta", "gamma", "delta", "epsilon"] {
        assert!(
            end.contains(&format!("✓ {id} ")),
            "{id} finished above:\n{end}"
        );
    }
    assert!(
        end.contains("✓ gamma Write migrations") && end.contains("flaky, attempt 2"),
        "{end}"
    );
    // Tasks released together finish in any order; the summary below them is fixed.
    let summary = &end[end.find("summary:").expect("a summary")..];
    insta::with_settings!({filters => screen_filters()}, {
        insta::assert_snapshot!("live_display_summary", summary);
    });
    assert!(end.contains("summary: 5 tasks in "), "{end}");
    assert!(end.contains("5 succeeded (1 flaky)"), "{end}");
    assert!(
        end.contains("flaky   gamma Write migrations (succeeded on attempt 2)"),
        "{end}"
    );
    // The live lines are gone: no spinner and no totals line remain.
    assert!(
        live_rows(&end.lines().map(str::to_string).collect::<Vec<_>>()).is_empty(),
        "{end}"
    );
    assert_eq!(f.task_md().matches("[x]").count(), 5);
}

#[test]
fn a_key_press_or_sigusr1_prints_each_running_subagent_output_so_far() {
    let f = fixture();
    let mut s = Session::start(&f, 110, 40, &["run", "--cmd", "./agent.sh", "-j", "4"]);
    wait_started(&f);
    s.wait_screen("the live lines", |t| t.contains("editing src/delta.rs"));
    let header = "── alpha Create the model · attempt 1, ";
    assert_eq!(s.raw_text().matches(header).count(), 0);

    s.writer.write_all(b"t").unwrap();
    s.writer.flush().unwrap();
    s.wait_screen("the dump after a key press", |t| t.contains(header));
    let t = s.text();
    assert!(
        t.contains("   working on alpha (attempt 1)\n   editing src/alpha.rs"),
        "{t}"
    );
    // The first attempt's output of a retried task is kept too.
    assert!(t.contains("── gamma Write migrations · attempt 2, "), "{t}");
    assert!(t.contains("   connection reset by peer"), "{t}");
    // The key is not echoed into the display.
    assert!(!t.lines().any(|l| l.trim() == "t"), "{t}");

    let pid = s.child.process_id().expect("a pid") as libc::pid_t;
    // SAFETY: sending a signal to the child we spawned.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
    wait_for("the dump after SIGUSR1", LIMIT, || {
        s.raw_text().matches(header).count() == 2
    });

    std::fs::write(f.file("go"), "").unwrap();
    let (code, _) = s.finish();
    assert_eq!(code, 0);
}

#[test]
fn narrow_terminals_and_a_resize_never_wrap_the_live_lines() {
    let f = fixture();
    let s = Session::start(&f, 100, 30, &["run", "--cmd", "./agent.sh", "-j", "4"]);
    wait_started(&f);
    s.wait_screen("the live lines", |t| t.contains("4 running"));
    for cols in [60u16, 40, 24] {
        s.resize(cols, 30);
        // The next redraw happens at the new width: five live rows (four
        // tasks, totals), each starting with its glyph, none wrapped.
        let start = std::time::Instant::now();
        loop {
            let rows = s.rows();
            let live = live_rows(&rows);
            let bottom: Vec<&String> = rows
                .iter()
                .rev()
                .skip_while(|r| r.trim().is_empty())
                .take(5)
                .collect();
            let redrawn = bottom.len() == 5
                && bottom.iter().all(|r| {
                    let first = r.chars().next().unwrap_or(' ');
                    "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏↻█▌░".contains(first)
                })
                && live.len() >= 5;
            if redrawn {
                for r in &bottom {
                    assert!(console_width(r) <= cols as usize, "{cols} cols: {r:?}");
                }
                break;
            }
            assert!(
                start.elapsed() < LIMIT,
                "no clean redraw at {cols} columns:\n{}",
                rows.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    std::fs::write(f.file("go"), "").unwrap();
    let (code, _) = s.finish();
    assert_eq!(code, 0);
}

/// Redactions for screen snapshots: spinner frames, durations, the bar.
fn screen_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        ("[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]", "⠿"),
        (r"\b\d+m\d+s\b", "[t]"),
        (r"\b\d+(\.\d+)?(ms|s)\b", "[t]"),
        ("[█▌░]+", "[bar]"),
        (r"\d+/5 done", "[n]/5 done"),
    ]
}

fn screen_text(rows: &[String]) -> String {
    let mut out: String = rows.iter().map(|r| format!("{}\n", r.trim_end())).collect();
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

fn nz(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).expect("a terminal is at least one cell")
}

fn console_width(s: &str) -> usize {
    s.trim_end().chars().count()
}

#[test]
fn verbose_on_a_terminal_prints_tagged_output_lines_above_the_live_lines() {
    let f = fixture();
    let s = Session::start(
        &f,
        110,
        40,
        &["run", "--cmd", "./agent.sh", "-j", "4", "-v"],
    );
    wait_started(&f);
    s.wait_screen("tagged output lines", |t| {
        t.contains("[alpha] working on alpha (attempt 1)")
            && t.contains("[gamma] connection reset by peer")
            && t.contains("[delta] editing src/delta.rs")
    });
    // The live lines stay below the tagged lines.
    let t = s.text();
    let tagged = t.find("[delta] editing src/delta.rs").unwrap();
    let totals = t.find(" running ·").unwrap();
    assert!(tagged < totals, "{t}");
    std::fs::write(f.file("go"), "").unwrap();
    let (code, end) = s.finish();
    assert_eq!(code, 0);
    assert!(end.contains("[alpha] finished alpha"), "{end}");
}

/// `(ICANON, ECHO)` of the terminal behind the pty master.
fn line_mode(s: &Session) -> (bool, bool) {
    let fd = s.master.as_raw_fd().expect("a unix pty");
    // SAFETY: tcgetattr fills a termios we own from a descriptor we hold.
    let t = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd, &mut t), 0);
        t
    };
    (t.c_lflag & libc::ICANON != 0, t.c_lflag & libc::ECHO != 0)
}

#[test]
fn ctrl_c_interrupts_with_a_summary_and_gives_the_terminal_back_as_it_was() {
    let f = fixture();
    let mut s = Session::start(&f, 110, 30, &["run", "--cmd", "./agent.sh", "-j", "4"]);
    wait_started(&f);
    s.wait_screen("the live lines", |t| t.contains("4 running"));
    assert_eq!(
        line_mode(&s),
        (false, false),
        "keys are read one at a time, unechoed, during the run"
    );
    s.writer.write_all(b"\x03").unwrap();
    s.writer.flush().unwrap();
    let line_mode_after = {
        let status = s.child.wait().expect("wait");
        assert_eq!(status.exit_code(), 130, "interrupted");
        line_mode(&s)
    };
    assert_eq!(line_mode_after, (true, true), "line mode and echo restored");
    let (_, end) = s.finish();
    assert!(end.contains("interrupted: 5 tasks in "), "{end}");
    assert!(!f.task_md().contains("[x] Create the model"), "{end}");
}

#[test]
fn the_live_display_shows_escapes_from_ids_task_text_and_agent_output_without_obeying_them() {
    let f = Fixture::new(
        "# Hostile\n\n- [ ] <!-- id: ev\u{1b}[2J\u{7}il --> title\u{1b}]0;pwned\u{7} task\n",
    );
    f.script(
        "agent.sh",
        "printf 'said \\033]0;pwned-too\\007 \\033]52;c;eA==\\007\\n'\nsleep 0.2\n",
    );
    let s = Session::start(&f, 160, 30, &["run", "--cmd", "./agent.sh", "-v"]);
    let (code, end) = s_finish_raw(s);
    assert_eq!(code.0, 0, "{end}");
    let raw = code.1;
    assert!(
        !raw.contains("]0;pwned") || raw.contains("^[]0;pwned"),
        "an OSC reached the terminal:\n{raw:?}"
    );
    assert!(
        !raw.contains('\u{7}'),
        "a bell (OSC terminator) reached the terminal:\n{raw:?}"
    );
    assert!(
        !raw.contains("\u{1b}]52"),
        "a clipboard write reached the terminal"
    );
    assert!(
        !raw.contains("\u{1b}[2J"),
        "a screen clear reached the terminal"
    );
    assert!(end.contains("^[]0;pwned^G"), "{end}");
}

/// Waits for the run to end; ((exit code, raw bytes), screen).
fn s_finish_raw(s: Session) -> ((u32, String), String) {
    let raw = s.raw.clone();
    let (code, end) = s.finish();
    let raw = String::from_utf8_lossy(&raw.lock().unwrap()).into_owned();
    ((code, raw), end)
}
