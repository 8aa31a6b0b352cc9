//! The live display on a terminal's stderr, drawn with indicatif.
//!
//! ```text
//!   ✓ T001 Create the model                       2.1s
//!   ↻ T002 attempt 1 failed: failed: exit status 1; retrying in 1.0s
//! ⠙ T002  Parse the hints        attempt 2    3s  reading src/hints.rs
//! ⠹ T003  Write the scanner      attempt 1    5s  Write src/scan.rs
//! [####------] 1/6 done · 2 running · 0 failed · 3 left · wave 1/2 · 12.3k tokens, $0.42 · 0m06s
//! ```
//!
//! One spinner line per running subagent (id, short title, attempt, elapsed,
//! latest activity), finished tasks printed above them, and a totals line at
//! the bottom. Every line is recomposed from [`RunState`] on each tick for the
//! terminal's current width, so narrow terminals and resizes never wrap.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use batch_core::exec::{Envelope, RunEvent, RunReport};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::plain::noun;
use super::state::{Change, Live as LiveTask, Phase, RunState, first_line};
use super::style::{Paint, column, elapsed, fit, took, usage};
use super::summary;

/// How often lines are redrawn.
pub const TICK: Duration = Duration::from_millis(100);

const SPINNER: &[&str] = &["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", " "];

/// The live reporter.
pub struct Live {
    mp: MultiProgress,
    totals: ProgressBar,
    /// The totals line draws its bar (the terminal is wide enough).
    totals_bar: bool,
    bars: HashMap<String, Bar>,
    paint: Paint,
    tag_output: bool,
    started: Instant,
    width: fn() -> usize,
}

impl Live {
    /// A live display on stderr.
    pub fn stderr(paint: Paint, tag_output: bool) -> Self {
        console::set_colors_enabled_stderr(paint.on);
        Self::with_target(
            ProgressDrawTarget::stderr_with_hz(20),
            paint,
            tag_output,
            stderr_width,
        )
    }

    fn with_target(
        target: ProgressDrawTarget,
        paint: Paint,
        tag_output: bool,
        width: fn() -> usize,
    ) -> Self {
        let mp = MultiProgress::with_draw_target(target);
        let totals = mp.add(ProgressBar::new(0));
        totals.set_style(totals_style(width() >= NARROW, paint));
        Self {
            mp,
            totals,
            totals_bar: width() >= NARROW,
            bars: HashMap::new(),
            paint,
            tag_output,
            started: Instant::now(),
            width,
        }
    }

    fn println(&self, line: &str) {
        // A terminal that went away must not stop the run.
        let _ = self.mp.println(line);
    }

    /// Shows an event (after it was applied to `state`).
    pub fn event(&mut self, env: &Envelope, state: &RunState, change: &Change, now: Instant) {
        let p = self.paint;
        match &env.event {
            RunEvent::RunStarted { .. } => {
                self.totals.set_length(state.total as u64);
                if let Some(text) = super::plain::line(env, state, p) {
                    self.println(&p.dim(&text));
                }
            }
            RunEvent::TaskStarted { id, .. } if !self.bars.contains_key(id) => {
                let bar = self
                    .mp
                    .insert_before(&self.totals, ProgressBar::new_spinner());
                self.bars.insert(
                    id.clone(),
                    Bar {
                        pb: bar,
                        waiting: None,
                    },
                );
            }
            RunEvent::TaskProgress { .. } => {
                if let (Change::Output(id, line), true) = (change, self.tag_output) {
                    self.println(&format!("{} {line}", p.dim(&format!("[{id}]"))));
                }
            }
            RunEvent::TaskRetrying {
                id,
                attempt,
                kind,
                message,
                delay_ms,
                ..
            } => {
                let head = format!("  ↻ {id} attempt {attempt}: {kind}, ");
                let tail = format!("; retrying in {}", took(*delay_ms));
                let room = (self.width)()
                    .saturating_sub(
                        console::measure_text_width(&head) + console::measure_text_width(&tail),
                    )
                    .max(10);
                self.println(&format!(
                    "  {} {} attempt {attempt}: {kind}, {}{tail}",
                    p.yellow("↻"),
                    p.bold(id),
                    fit(&first_line(message), room),
                ));
            }
            RunEvent::TaskSucceeded {
                id,
                duration_ms,
                flaky,
                attempt,
                ..
            } => {
                self.remove_bar(id);
                let flaky_text = if *flaky {
                    format!(" flaky, attempt {attempt}")
                } else {
                    String::new()
                };
                // The title gives way so the line never wraps.
                let room = (self.width)().saturating_sub(
                    4 + console::measure_text_width(id)
                        + 2
                        + took(*duration_ms).len()
                        + flaky_text.len(),
                );
                let title = title_of(state, id);
                let title = if console::measure_text_width(&title) > room {
                    fit(&title, room.max(2))
                } else {
                    title
                };
                self.println(&format!(
                    "  {} {}{title}  {}{}",
                    p.green("✓"),
                    p.bold(id),
                    p.dim(&took(*duration_ms)),
                    p.yellow(&flaky_text)
                ));
            }
            RunEvent::TaskFailed {
                id,
                kind,
                message,
                duration_ms,
                attempt,
            } => {
                self.remove_bar(id);
                self.println(&format!(
                    "  {} {}{}  {}: {kind}, {} {}",
                    p.red("✗"),
                    p.bold(id),
                    title_of(state, id),
                    p.red("failed"),
                    first_line(message),
                    p.dim(&format!(
                        "({attempt} {}, {})",
                        noun(*attempt as usize, "attempt", "attempts"),
                        took(*duration_ms)
                    ))
                ));
            }
            RunEvent::TaskSkipped { id, reason } => {
                self.remove_bar(id);
                self.println(&format!(
                    "  {} {} {}",
                    p.yellow("-"),
                    p.bold(id),
                    p.yellow(&format!("skipped: {reason}"))
                ));
            }
            RunEvent::RateLimited { .. }
            | RunEvent::Warning { .. }
            | RunEvent::PlanChanged { .. }
            | RunEvent::TaskLanded { .. } => {
                if let Some(text) = super::plain::line(env, state, p) {
                    self.println(&format!("  {text}"));
                }
            }
            _ => {}
        }
        self.tick(state, now);
    }

    fn remove_bar(&mut self, id: &str) {
        if let Some(bar) = self.bars.remove(id) {
            bar.pb.finish_and_clear();
            self.mp.remove(&bar.pb);
        }
    }

    /// Recomposes every line for the current width and advances the spinners.
    pub fn tick(&mut self, state: &RunState, now: Instant) {
        let width = (self.width)();
        let id_width = id_column(state, width);
        for l in state.live.values() {
            let Some(bar) = self.bars.get_mut(&l.id) else {
                continue;
            };
            let is_waiting = matches!(l.phase, Phase::Waiting { .. });
            if bar.waiting != Some(is_waiting) {
                bar.pb.set_style(task_style(is_waiting, self.paint));
                bar.pb.set_prefix(if is_waiting { "↻" } else { "" });
                bar.waiting = Some(is_waiting);
            }
            bar.pb
                .set_message(task_line(l, width, id_width, now, self.paint));
            if !is_waiting {
                bar.pb.tick();
            }
        }
        if (width >= NARROW) != self.totals_bar {
            self.totals_bar = width >= NARROW;
            self.totals
                .set_style(totals_style(self.totals_bar, self.paint));
        }
        self.totals.set_length(state.total as u64);
        self.totals
            .set_position((state.succeeded + state.failed + state.skipped) as u64);
        self.totals
            .set_message(totals_line(state, now - self.started, now, self.paint));
    }

    /// Prints every running task's output so far above the display.
    pub fn dump(&self, state: &RunState, now: Instant) {
        let text = summary::dump(state, now, self.paint);
        self.mp.suspend(|| {
            use std::io::Write;
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        });
    }

    /// Clears the display and prints the summary.
    pub fn finish(&mut self, report: &RunReport, state: &RunState) {
        self.clear();
        // After SIGHUP the terminal is gone: a failed write is not a panic.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            summary::render(report, state, self.paint).as_bytes(),
        );
    }

    /// Clears the display (a run that ends without a report).
    pub fn clear(&mut self) {
        for (_, bar) in self.bars.drain() {
            bar.pb.finish_and_clear();
        }
        self.totals.finish_and_clear();
        let _ = self.mp.clear();
    }
}

/// A running task's spinner line.
struct Bar {
    pb: ProgressBar,
    /// The style drawn: `None` before the first tick, then whether it is the
    /// waiting-to-retry style.
    waiting: Option<bool>,
}

fn stderr_width() -> usize {
    console::Term::stderr().size().1 as usize
}

fn title_of(state: &RunState, id: &str) -> String {
    state
        .titles
        .get(id)
        .filter(|t| !title_in_id(id, t))
        .map(|t| format!(" {}", first_line(t)))
        .unwrap_or_default()
}

/// Whether an id already says what the title says (a slug id such as
/// `wave-1/api/create-the-model` for "Create the model"): then the title is
/// not repeated.
pub fn title_in_id(id: &str, title: &str) -> bool {
    let mut slug = String::new();
    for c in first_line(title).chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 16 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    !slug.is_empty() && id.to_lowercase().contains(slug)
}

fn task_style(waiting: bool, p: Paint) -> ProgressStyle {
    let template = match (waiting, p.on) {
        (false, true) => "{spinner:.cyan} {wide_msg}",
        (false, false) => "{spinner} {wide_msg}",
        (true, true) => "{prefix:.yellow} {wide_msg}",
        (true, false) => "{prefix} {wide_msg}",
    };
    let style = ProgressStyle::with_template(template).expect("a valid template");
    if waiting {
        style
    } else {
        style.tick_strings(SPINNER)
    }
}

/// The width of the id column: the longest running id, up to a share of the
/// terminal (slug ids, which carry the title, get the title's share too).
fn id_column(state: &RunState, width: usize) -> usize {
    let slugs = state.live.values().all(|l| title_in_id(&l.id, &l.title));
    let cap = if slugs {
        (width / 2).clamp(12, 48)
    } else {
        (width / 6).clamp(6, 16)
    };
    state
        .live
        .values()
        .map(|l| console::measure_text_width(&l.id))
        .max()
        .unwrap_or(0)
        .min(cap)
}

/// The widths of the columns of a task line for a terminal `width` wide.
fn title_width(width: usize) -> usize {
    match width {
        0..60 => 0,
        60..80 => 14,
        80..110 => 22,
        _ => 32,
    }
}

/// One running task's line (without the spinner): id, short title, attempt,
/// elapsed, latest activity; at most `width - 2` columns.
pub fn task_line(l: &LiveTask, width: usize, id_width: usize, now: Instant, p: Paint) -> String {
    let avail = width.saturating_sub(2);
    let mut s = format!("{} ", p.bold(&column(&l.id, id_width)));
    let tw = title_width(width);
    if tw > 0 && !title_in_id(&l.id, &l.title) {
        s.push_str(&column(&first_line(&l.title), tw));
        s.push_str("  ");
    }
    let attempt = if width >= 80 {
        format!("attempt {}", l.attempt)
    } else {
        format!("#{}", l.attempt)
    };
    match &l.phase {
        Phase::Running => {
            let retry = if l.attempt > 1 {
                p.yellow(&attempt)
            } else {
                attempt
            };
            s.push_str(&format!("{retry} {:>6}", elapsed(now - l.since)));
            if let Some(a) = &l.activity {
                s.push_str("  ");
                s.push_str(&p.dim(a));
            } else if let Some(f) = &l.last_failure {
                s.push_str("  ");
                s.push_str(&p.dim(&format!("(previous: {f})")));
            }
        }
        Phase::Waiting { until, reason } => {
            let left = until.saturating_duration_since(now);
            let when = if left.is_zero() {
                "retry queued".to_string()
            } else {
                format!("retry in {}", elapsed(left + Duration::from_millis(999)))
            };
            s.push_str(&p.yellow(&format!("{attempt} failed, {when}")));
            s.push_str("  ");
            s.push_str(&p.dim(reason));
        }
    }
    fit_styled(&s, avail)
}

/// Below this width the totals line drops its bar.
const NARROW: usize = 40;

fn totals_style(bar: bool, p: Paint) -> ProgressStyle {
    let template = match (bar, p.on) {
        (true, true) => "{bar:12.green/dim} {wide_msg}",
        (true, false) => "{bar:12} {wide_msg}",
        (false, _) => "{wide_msg}",
    };
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("█▌░")
}

/// The totals line: done / running / failed / remaining, wave, usage, elapsed.
pub fn totals_line(state: &RunState, since_start: Duration, now: Instant, p: Paint) -> String {
    let mut parts = vec![
        format!(
            "{}/{} done",
            state.succeeded + state.failed + state.skipped,
            state.total
        ),
        format!("{} running", state.running()),
    ];
    let failed = format!("{} failed", state.failed);
    parts.push(if state.failed > 0 {
        p.red(&failed)
    } else {
        failed
    });
    if state.skipped > 0 {
        parts.push(p.yellow(&format!("{} skipped", state.skipped)));
    }
    parts.push(format!("{} left", state.remaining()));
    if let Some((lo, hi)) = state.wave_span() {
        if lo == hi {
            parts.push(format!("wave {lo}/{}", state.waves));
        } else {
            parts.push(format!("waves {lo}-{hi}/{}", state.waves));
        }
    }
    if let Some(until) = state.paused_until.filter(|u| *u > now) {
        parts.push(p.yellow(&format!(
            "rate limited, paused {}",
            elapsed(until - now + Duration::from_millis(999))
        )));
    }
    if let Some(u) = state.usage() {
        parts.push(usage(&u));
    }
    parts.push(elapsed(since_start));
    parts.join(" · ")
}

/// Cuts a possibly coloured line to `width` columns.
fn fit_styled(s: &str, width: usize) -> String {
    if console::measure_text_width(s) <= width {
        s.to_string()
    } else {
        let cut = console::truncate_str(s, width, "…").into_owned();
        if cut.contains('\x1b') {
            format!("{cut}\x1b[0m")
        } else {
            fit(&cut, width)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn task(id: &str, attempt: u32, since: Instant) -> LiveTask {
        LiveTask {
            id: id.into(),
            title: "Write the scanner for every kind of list item".into(),
            attempt,
            wave: 0,
            since,
            phase: Phase::Running,
            activity: Some("Write src/doc/scan.rs".into()),
            tail: VecDeque::new(),
            usage: None,
            last_failure: None,
            usage_before: None,
        }
    }

    #[test]
    fn a_task_line_shows_id_title_attempt_elapsed_and_activity() {
        let t0 = Instant::now();
        let l = task("T003", 1, t0);
        let line = task_line(
            &l,
            120,
            4,
            t0 + Duration::from_secs(12),
            Paint { on: false },
        );
        assert!(
            line.starts_with("T003 Write the scanner for every kin…  "),
            "{line}"
        );
        assert!(
            line.contains("attempt 1    12s  Write src/doc/scan.rs"),
            "{line}"
        );
    }

    #[test]
    fn task_lines_fit_every_terminal_width() {
        let t0 = Instant::now();
        let mut l = task("a-very-long-task-id-from-a-slug", 3, t0);
        l.activity = Some("x".repeat(500));
        for width in [10, 20, 40, 59, 60, 79, 80, 120, 300] {
            for paint in [Paint { on: false }, Paint { on: true }] {
                let line = task_line(&l, width, 16, t0 + Duration::from_secs(75), paint);
                assert!(
                    console::measure_text_width(&line) <= width.saturating_sub(2),
                    "width {width}: {line:?}"
                );
            }
        }
    }

    #[test]
    fn a_task_waiting_to_retry_shows_the_countdown_and_the_reason() {
        let t0 = Instant::now();
        let mut l = task("T002", 1, t0);
        l.phase = Phase::Waiting {
            until: t0 + Duration::from_secs(4),
            reason: "failed: exit status 1".into(),
        };
        let line = task_line(
            &l,
            100,
            4,
            t0 + Duration::from_millis(1500),
            Paint { on: false },
        );
        assert!(
            line.contains("attempt 1 failed, retry in 3s  failed: exit status 1"),
            "{line}"
        );
    }

    #[test]
    fn a_rate_limit_pause_shows_its_countdown_on_the_totals_line() {
        let t0 = Instant::now();
        let mut st = RunState::new();
        st.apply(
            &crate::output::testing::env(
                0,
                "run_started",
                serde_json::json!({"file":"t.md","total":2,"waves":1,"jobs":2,"runner":"claude","unfinished":[]}),
            ),
            t0,
        );
        st.apply(
            &crate::output::testing::env(
                1,
                "rate_limited",
                serde_json::json!({"pause_ms":30000,"concurrency":1,"id":"a"}),
            ),
            t0,
        );
        let p = Paint { on: false };
        let line = totals_line(&st, Duration::from_secs(5), t0 + Duration::from_secs(5), p);
        assert!(line.contains("rate limited, paused 25s"), "{line}");
        let later = totals_line(
            &st,
            Duration::from_secs(31),
            t0 + Duration::from_secs(31),
            p,
        );
        assert!(!later.contains("rate limited"), "{later}");
    }

    #[test]
    fn the_totals_line_counts_done_running_failed_left_wave_and_usage() {
        use batch_core::exec::{Envelope, RunEvent};
        let mut st = RunState::new();
        let t0 = Instant::now();
        let evs: Vec<RunEvent> = serde_json::from_value(serde_json::json!([
            {"type":"run_started","data":{"file":"t.md","total":5,"waves":2,"jobs":2,"runner":"command","unfinished":[]}},
            {"type":"task_started","data":{"id":"a","title":"A","attempt":1,"wave":0,"group":"g"}},
            {"type":"task_started","data":{"id":"b","title":"B","attempt":1,"wave":0,"group":"g"}},
            {"type":"task_failed","data":{"id":"b","attempt":1,"kind":"fatal","message":"no","duration_ms":5}},
            {"type":"task_progress","data":{"id":"a","attempt":1,"progress":{"kind":"usage","usage":{"input_tokens":1200,"output_tokens":34,"cost_usd":0.5,"turns":null}}}},
        ]))
        .unwrap();
        for (i, e) in evs.into_iter().enumerate() {
            let env: Envelope = serde_json::from_value(serde_json::json!({
                "v":1,"seq":i,"ts":"t","run_id":"r","type":e.type_name(),
                "data": serde_json::to_value(&e).unwrap()["data"].clone()
            }))
            .unwrap();
            st.apply(&env, t0);
        }
        let line = totals_line(&st, Duration::from_secs(61), t0, Paint { on: false });
        assert_eq!(
            line,
            "1/5 done · 1 running · 1 failed · 3 left · wave 1/2 · 1.2k tokens, $0.50 · 1m01s"
        );
    }
}
