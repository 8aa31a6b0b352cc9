//! The executor with in-process fake runners under tokio's paused clock.
//!
//! Each fake attempt "works" by sleeping in virtual time, so every start and
//! end time below is exact and the tests are deterministic.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use batch_core::exec::{Outcome, RunEvent};
use batch_core::{
    Envelope, ErrorKind, ExecutorBuilder, RunContext, RunError, RunOptions, RunReport,
    RunSetupError, SubagentRunner, TaskOutput, TaskSpec,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What one fake attempt does.
#[derive(Debug, Clone)]
enum Step {
    /// Works this many seconds, then succeeds.
    Ok(u64),
    /// Works, then fails with this kind.
    Fail(u64, ErrorKind),
    /// Works, then reports a rate limit with an optional retry-after.
    RateLimited(u64, Option<u64>),
    /// Fails with a retry-after.
    FailAfter(u64, u64),
    /// Panics.
    Panic,
    /// Works until cancelled.
    Hang,
    /// Hands this many seconds of work to another task and awaits it,
    /// ignoring cancellation (as a runner over a C callback or a thread does).
    Detached(u64),
    /// Sends this many usage items and as many output lines at once, then succeeds.
    Flood(usize),
}

#[derive(Debug, Clone)]
struct Rec {
    id: String,
    attempt: u32,
    start: Duration,
    end: Duration,
    previous: Option<String>,
    resume: Option<String>,
}

struct Fake {
    t0: Instant,
    steps: HashMap<String, Vec<Step>>,
    default: Step,
    recs: Mutex<Vec<Rec>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

impl Fake {
    fn new(default: Step) -> Self {
        Self {
            t0: Instant::now(),
            steps: HashMap::new(),
            default,
            recs: Mutex::new(Vec::new()),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
        }
    }

    fn with(mut self, id: &str, steps: Vec<Step>) -> Self {
        self.steps.insert(id.to_string(), steps);
        self
    }

    fn recs(&self) -> Vec<Rec> {
        self.recs.lock().unwrap().clone()
    }

    fn of(&self, id: &str) -> Vec<Rec> {
        self.recs().into_iter().filter(|r| r.id == id).collect()
    }
}

#[async_trait::async_trait]
impl SubagentRunner for Fake {
    async fn run(&self, task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError> {
        let start = self.t0.elapsed();
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let step = self
            .steps
            .get(task.id())
            .and_then(|s| s.get(ctx.attempt as usize - 1).or(s.last()))
            .cloned()
            .unwrap_or_else(|| self.default.clone());
        let work = |secs: u64| {
            let cancel = ctx.cancel.clone();
            async move {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(secs)) => true,
                    _ = cancel.cancelled() => false,
                }
            }
        };
        let result = match step {
            Step::Ok(s) => match work(s).await {
                true => Ok(TaskOutput::default()),
                false => Err(RunError::new(ErrorKind::Cancelled, "stopped")),
            },
            Step::Fail(s, kind) => {
                work(s).await;
                Err(RunError::new(kind, format!("{} broke", task.id())))
            }
            Step::RateLimited(s, after) => {
                work(s).await;
                Err(RunError::new(ErrorKind::Transient, "429 too many requests")
                    .rate_limited(true)
                    .with_retry_after(after.map(Duration::from_secs)))
            }
            Step::FailAfter(s, after) => {
                work(s).await;
                Err(RunError::new(ErrorKind::Transient, "overloaded")
                    .with_retry_after(Some(Duration::from_secs(after))))
            }
            Step::Panic => panic!("fake runner exploded"),
            Step::Detached(s) => {
                let work = tokio::spawn(tokio::time::sleep(Duration::from_secs(s)));
                let _ = work.await;
                Err(RunError::new(ErrorKind::Failed, "came back late"))
            }
            Step::Flood(n) => {
                for i in 0..n {
                    ctx.progress.send(batch_core::Progress::Usage {
                        usage: batch_core::Usage::default(),
                    });
                    ctx.progress.line(format!("line {i}"));
                }
                Ok(TaskOutput::default())
            }
            Step::Hang => {
                work(1_000_000).await;
                let kind = match ctx.cancel_reason() {
                    Some(batch_core::runner::CancelReason::Timeout) => ErrorKind::Timeout,
                    _ => ErrorKind::Cancelled,
                };
                Err(RunError::new(kind, "stopped"))
            }
        };
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.recs.lock().unwrap().push(Rec {
            id: task.id().to_string(),
            attempt: ctx.attempt,
            start,
            end: self.t0.elapsed(),
            previous: ctx.previous_error.as_ref().map(|e| e.message.clone()),
            resume: ctx.resume_session.clone(),
        });
        result
    }

    fn name(&self) -> &str {
        "fake"
    }
}

struct Run {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Run {
    fn file(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task.md");
        std::fs::write(&path, text).unwrap();
        Self { _dir: dir, path }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap()
    }

    async fn go(
        &self,
        fake: &Arc<Fake>,
        options: RunOptions,
        cancel: Option<CancellationToken>,
    ) -> (RunReport, Vec<Envelope>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let mut b = ExecutorBuilder::new(&self.path)
            .options(options)
            .runner(fake.clone())
            .on_event(move |e| sink.lock().unwrap().push(e.clone()));
        if let Some(c) = cancel {
            b = b.cancel_token(c);
        }
        let report = b.build().unwrap().run().await.unwrap();
        let events = events.lock().unwrap().clone();
        (report, events)
    }
}

fn opts() -> RunOptions {
    RunOptions::default()
}

fn outcome(report: &RunReport, id: &str) -> Outcome {
    report.tasks.iter().find(|t| t.id == id).unwrap().outcome
}

/// The largest number of attempts (among `ids`, or all) running at one instant.
fn max_overlap(recs: &[Rec], ids: Option<&[&str]>) -> usize {
    let recs: Vec<&Rec> = recs
        .iter()
        .filter(|r| ids.is_none_or(|ids| ids.contains(&r.id.as_str())))
        .collect();
    recs.iter()
        .map(|r| {
            recs.iter()
                .filter(|o| o.start <= r.start && r.start < o.end)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const TWO_WAVES: &str = "# Batch

## Wave 1

- [ ] <!-- id: a --> task a
- [ ] <!-- id: b --> task b

## Wave 2

- [ ] <!-- id: c --> task c
- [ ] <!-- id: d --> task d
";

#[tokio::test(start_paused = true)]
async fn waves_run_in_order_and_every_box_is_checked() {
    let run = Run::file(TWO_WAVES);
    let fake = Arc::new(Fake::new(Step::Ok(5)).with("a", vec![Step::Ok(10)]));
    let (report, events) = run.go(&fake, opts(), None).await;
    let a = &fake.of("a")[0];
    for id in ["c", "d"] {
        assert_eq!(
            fake.of(id)[0].start,
            a.end,
            "{id} started before wave 1 ended"
        );
    }
    assert_eq!(fake.of("b")[0].start, secs(0));
    assert_eq!(run.text(), TWO_WAVES.replace("[ ]", "[x]"));
    assert_eq!(report.summary.succeeded, 4);
    // Events: numbered from 0, bracketed by run_started and run_finished.
    assert!(events.iter().enumerate().all(|(i, e)| e.seq == i as u64));
    assert!(matches!(
        events[0].event,
        RunEvent::RunStarted { total: 4, .. }
    ));
    assert!(matches!(
        events.last().unwrap().event,
        RunEvent::RunFinished { .. }
    ));
    assert!(events.iter().all(|e| e.run_id == report.run_id && e.v == 1));
}

#[tokio::test(start_paused = true)]
async fn jobs_and_group_limits_are_never_exceeded() {
    let mut text = String::from("# Batch\n\n## Wave 1\n\n### One\n\n<!-- parallel: 2 -->\n\n");
    for i in 0..6 {
        text.push_str(&format!("- [ ] <!-- id: g{i} --> grouped {i}\n"));
    }
    text.push_str("\n### Two\n\n");
    for i in 0..6 {
        text.push_str(&format!("- [ ] <!-- id: f{i} --> free {i}\n"));
    }
    text.push_str("\n## Wave 2\n\n- [ ] <!-- id: last --> last\n");
    let run = Run::file(&text);
    let fake = Arc::new(Fake::new(Step::Ok(3)));
    let mut o = opts();
    o.jobs = Some(3);
    let (report, _) = run.go(&fake, o, None).await;
    assert_eq!(report.summary.succeeded, 13);
    let recs = fake.recs();
    assert!(fake.max_running.load(Ordering::SeqCst) <= 3);
    assert_eq!(max_overlap(&recs, None), 3, "--jobs 3 was not used fully");
    let grouped = ["g0", "g1", "g2", "g3", "g4", "g5"];
    assert_eq!(max_overlap(&recs, Some(&grouped)), 2);
}

#[tokio::test(start_paused = true)]
async fn the_documents_jobs_hint_applies_when_no_jobs_option_is_given() {
    let mut text = String::from("<!-- jobs: 2 -->\n\n");
    for i in 0..5 {
        text.push_str(&format!("- [ ] <!-- id: t{i} --> task {i}\n"));
    }
    let run = Run::file(&text);
    let fake = Arc::new(Fake::new(Step::Ok(1)));
    run.go(&fake, opts(), None).await;
    assert_eq!(max_overlap(&fake.recs(), None), 2);
}

const MODULES: &str = "# Batch

## Wave 1

### Backend

- [ ] <!-- id: b1 --> slow backend work

### Frontend

- [ ] <!-- id: f1 --> quick frontend work

## Wave 2

### Frontend

- [ ] <!-- id: f2 --> more frontend work
";

#[tokio::test(start_paused = true)]
async fn cross_wave_lets_a_module_go_on_without_waiting_for_the_whole_wave() {
    let fake = |_: ()| Arc::new(Fake::new(Step::Ok(1)).with("b1", vec![Step::Ok(100)]));
    let strict = fake(());
    Run::file(MODULES).go(&strict, opts(), None).await;
    assert_eq!(strict.of("f2")[0].start, secs(100));

    let cross = fake(());
    let mut o = opts();
    o.cross_wave = Some(true);
    Run::file(MODULES).go(&cross, o, None).await;
    assert_eq!(cross.of("f2")[0].start, secs(1));
}

#[tokio::test(start_paused = true)]
async fn the_task_heading_the_longest_chain_starts_first_when_slots_are_short() {
    let text = "- [ ] <!-- id: lone --> a lone task
- [ ] <!-- id: head --> heads a chain
- [ ] <!-- id: mid; after: head --> middle of the chain
- [ ] <!-- id: tail; after: mid --> end of the chain
";
    let run = Run::file(text);
    let fake = Arc::new(Fake::new(Step::Ok(1)));
    let mut o = opts();
    o.jobs = Some(1);
    run.go(&fake, o, None).await;
    let order: Vec<String> = fake.recs().into_iter().map(|r| r.id).collect();
    assert_eq!(order[0], "head");
}

#[tokio::test(start_paused = true)]
async fn failed_attempts_are_retried_after_doubling_jittered_delays() {
    let run = Run::file("- [ ] <!-- id: a --> flaky task\n");
    let fake = Arc::new(Fake::new(Step::Ok(1)).with(
        "a",
        vec![
            Step::Fail(1, ErrorKind::Failed),
            Step::Fail(1, ErrorKind::Timeout),
            Step::Ok(1),
        ],
    ));
    let mut o = opts();
    o.backoff_base = secs(10);
    let (report, events) = run.go(&fake, o, None).await;
    let recs = fake.of("a");
    assert_eq!(recs.len(), 3);
    let gap1 = recs[1].start - recs[0].end;
    let gap2 = recs[2].start - recs[1].end;
    assert!(gap1 > secs(5) && gap1 <= secs(10), "{gap1:?}");
    assert!(gap2 > secs(10) && gap2 <= secs(20), "{gap2:?}");
    // The runner sees the attempt number and the previous error.
    assert_eq!(recs[1].previous.as_deref(), Some("a broke"));
    let retrying: Vec<u64> = events
        .iter()
        .filter_map(|e| match &e.event {
            RunEvent::TaskRetrying {
                delay_ms,
                counts: true,
                ..
            } => Some(*delay_ms),
            _ => None,
        })
        .collect();
    assert_eq!(retrying.len(), 2);
    // Timers fire on whole milliseconds.
    assert!(
        retrying[0].abs_diff(gap1.as_millis() as u64) <= 1,
        "{retrying:?} {gap1:?}"
    );
    assert!(
        retrying[1].abs_diff(gap2.as_millis() as u64) <= 1,
        "{retrying:?} {gap2:?}"
    );
    let t = &report.tasks[0];
    assert_eq!(
        (t.outcome, t.attempts, t.flaky),
        (Outcome::Succeeded, 3, true)
    );
    assert_eq!(report.summary.flaky, 1);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_from_the_provider_wins_over_the_backoff() {
    let run = Run::file("- [ ] <!-- id: a --> task\n");
    let fake =
        Arc::new(Fake::new(Step::Ok(1)).with("a", vec![Step::FailAfter(1, 42), Step::Ok(1)]));
    run.go(&fake, opts(), None).await;
    let recs = fake.of("a");
    assert_eq!(recs[1].start - recs[0].end, secs(42));
}

#[tokio::test(start_paused = true)]
async fn when_retries_run_out_dependants_are_skipped_and_independent_work_goes_on() {
    let text = "- [ ] <!-- id: bad --> always fails
- [ ] <!-- id: child; after: bad --> needs bad
- [ ] <!-- id: grandchild; after: child --> needs child
- [ ] <!-- id: other --> independent
";
    let run = Run::file(text);
    let fake = Arc::new(Fake::new(Step::Ok(1)).with("bad", vec![Step::Fail(1, ErrorKind::Failed)]));
    let mut o = opts();
    o.retries = 1;
    let (report, events) = run.go(&fake, o, None).await;
    assert_eq!(fake.of("bad").len(), 2);
    assert_eq!(outcome(&report, "bad"), Outcome::Failed);
    assert_eq!(outcome(&report, "other"), Outcome::Succeeded);
    for id in ["child", "grandchild"] {
        assert_eq!(outcome(&report, id), Outcome::Skipped);
        assert!(fake.of(id).is_empty());
        assert!(events.iter().any(|e| matches!(&e.event,
            RunEvent::TaskSkipped { id: i, reason } if i == id && reason == "dependency `bad` failed")));
    }
    assert_eq!(
        run.text(),
        text.replace("- [ ] <!-- id: other", "- [x] <!-- id: other")
    );
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_pauses_every_launch_halves_concurrency_and_keeps_the_retry_budget() {
    let mut text = String::new();
    for i in 0..12 {
        text.push_str(&format!("- [ ] <!-- id: t{i:02} --> task {i}\n"));
    }
    let run = Run::file(&text);
    // t00 is rate limited twice (at 1 s and again at 32 s), with no retry budget.
    let fake = Arc::new(Fake::new(Step::Ok(10)).with(
        "t00",
        vec![
            Step::RateLimited(1, Some(30)),
            Step::RateLimited(1, Some(30)),
            Step::Ok(10),
        ],
    ));
    let mut o = opts();
    o.jobs = Some(4);
    o.retries = 0;
    let (report, events) = run.go(&fake, o, None).await;
    assert_eq!(outcome(&report, "t00"), Outcome::Succeeded);
    assert_eq!(report.summary.succeeded, 12);
    let recs = fake.recs();
    let starts_at = |s: u64| recs.iter().filter(|r| r.start == secs(s)).count();
    // Nothing starts while the gate is closed (1 s .. 31 s, 32 s .. 62 s).
    assert!(
        !recs
            .iter()
            .any(|r| (r.start > secs(1) && r.start < secs(31))
                || (r.start > secs(32) && r.start < secs(62))),
        "a task started while launches were paused: {recs:?}"
    );
    let limited: Vec<(u64, u32)> = events
        .iter()
        .filter_map(|e| match &e.event {
            RunEvent::RateLimited {
                pause_ms,
                concurrency,
                ..
            } => Some((*pause_ms, *concurrency)),
            _ => None,
        })
        .collect();
    assert_eq!(limited, [(30_000, 2), (30_000, 1)]);
    // Halved at each limit; raised by one per success of a later launch, up to --jobs.
    assert_eq!(
        [
            starts_at(0),
            starts_at(31),
            starts_at(62),
            starts_at(72),
            starts_at(82)
        ],
        [4, 2, 1, 2, 4]
    );
    assert!(fake.max_running.load(Ordering::SeqCst) <= 4);
    let retries: Vec<bool> = events
        .iter()
        .filter_map(|e| match &e.event {
            RunEvent::TaskRetrying { counts, .. } => Some(*counts),
            _ => None,
        })
        .collect();
    assert_eq!(
        retries,
        [false, false],
        "rate-limit retries spent the budget"
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_waits_are_bounded_by_max_wait() {
    let run = Run::file("- [ ] <!-- id: a --> task\n");
    let fake = Arc::new(Fake::new(Step::RateLimited(1, Some(60))));
    let mut o = opts();
    o.max_wait = secs(150);
    let (report, _) = run.go(&fake, o, None).await;
    assert_eq!(
        fake.of("a").len(),
        3,
        "two 60 s waits fit in 150 s, a third does not"
    );
    let t = &report.tasks[0];
    assert_eq!(
        (t.outcome, t.kind),
        (Outcome::Failed, Some(ErrorKind::Transient))
    );
    assert!(t.message.as_deref().unwrap().contains("--max-wait"));
}

#[tokio::test(start_paused = true)]
async fn tasks_that_share_a_resource_never_run_at_the_same_time() {
    let text = "# Batch

## Wave

### Api

- [ ] <!-- id: a1; resource: db --> migrate
- [ ] <!-- id: a2 --> free api work

### Web

- [ ] <!-- id: w1; resource: db --> seed

## Wave 2

- [ ] <!-- id: z --> after all
";
    let run = Run::file(text);
    let fake = Arc::new(Fake::new(Step::Ok(5)));
    run.go(&fake, opts(), None).await;
    let recs = fake.recs();
    assert_eq!(max_overlap(&recs, Some(&["a1", "w1"])), 1);
    assert_eq!(max_overlap(&recs, None), 2);
}

#[tokio::test(start_paused = true)]
async fn fail_fast_stops_launching_after_the_first_failure() {
    let mut text = String::from("- [ ] <!-- id: bad --> fails\n");
    for i in 0..5 {
        text.push_str(&format!("- [ ] <!-- id: t{i} --> task {i}\n"));
    }
    let run = Run::file(&text);
    let fake =
        Arc::new(Fake::new(Step::Ok(10)).with("bad", vec![Step::Fail(1, ErrorKind::Failed)]));
    let mut o = opts();
    o.jobs = Some(2);
    o.retries = 0;
    o.fail_fast = true;
    let (report, _) = run.go(&fake, o, None).await;
    // `bad` and one other started together; nothing started after the failure.
    assert_eq!(fake.recs().len(), 2);
    assert_eq!(report.summary.failed, 1);
    assert_eq!(
        report.summary.succeeded, 1,
        "the running task was allowed to finish"
    );
    assert_eq!(report.summary.skipped, 4);
    let skipped = report
        .tasks
        .iter()
        .find(|t| t.outcome == Outcome::Skipped)
        .unwrap();
    assert_eq!(
        skipped.message.as_deref(),
        Some("--fail-fast: `bad` failed")
    );
}

#[tokio::test(start_paused = true)]
async fn a_fatal_error_stops_the_whole_run_without_retrying() {
    let mut text = String::from("- [ ] <!-- id: bad --> fails\n");
    for i in 0..4 {
        text.push_str(&format!("- [ ] <!-- id: t{i} --> task {i}\n"));
    }
    let run = Run::file(&text);
    let fake = Arc::new(Fake::new(Step::Hang).with("bad", vec![Step::Fail(1, ErrorKind::Fatal)]));
    let mut o = opts();
    o.jobs = Some(2);
    let (report, _) = run.go(&fake, o, None).await;
    assert_eq!(fake.of("bad").len(), 1, "a fatal error was retried");
    assert_eq!(
        fake.recs().len(),
        2,
        "tasks were launched after the fatal error"
    );
    assert_eq!(outcome(&report, "bad"), Outcome::Failed);
    let skipped: Vec<_> = report
        .tasks
        .iter()
        .filter(|t| t.outcome == Outcome::Skipped)
        .collect();
    assert_eq!(skipped.len(), 3);
    assert_eq!(
        skipped[0].message.as_deref(),
        Some("run stopped: `bad` hit a fatal error: bad broke")
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_runner_is_a_failed_attempt_not_a_crash() {
    let run = Run::file("- [ ] <!-- id: a --> task\n- [ ] <!-- id: b --> task\n");
    let fake = Arc::new(Fake::new(Step::Ok(1)).with("a", vec![Step::Panic, Step::Ok(1)]));
    let (report, events) = run.go(&fake, opts(), None).await;
    assert_eq!(outcome(&report, "a"), Outcome::Succeeded);
    assert!(events.iter().any(|e| matches!(&e.event,
        RunEvent::TaskRetrying { message, .. } if message.contains("fake runner exploded"))));
}

#[tokio::test(start_paused = true)]
async fn cancelling_during_a_backoff_starts_no_further_attempt() {
    let run = Run::file("- [ ] <!-- id: a --> task\n- [ ] <!-- id: b; after: a --> later\n");
    let fake = Arc::new(Fake::new(Step::Ok(1)).with("a", vec![Step::Fail(1, ErrorKind::Failed)]));
    let mut o = opts();
    o.backoff_base = secs(60);
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(secs(20)).await;
        c.cancel();
    });
    let t0 = Instant::now();
    let (report, _) = run.go(&fake, o, Some(cancel)).await;
    assert_eq!(t0.elapsed(), secs(20), "the run waited out the backoff");
    assert_eq!(fake.of("a").len(), 1);
    assert!(report.summary.cancelled);
    assert_eq!(outcome(&report, "a"), Outcome::Interrupted);
    assert_eq!(outcome(&report, "b"), Outcome::Skipped);
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_running_attempts_through_their_token() {
    let run = Run::file(
        "- [ ] <!-- id: a --> task\n- [ ] <!-- id: b --> task\n- [ ] <!-- id: c --> task\n",
    );
    let fake = Arc::new(Fake::new(Step::Hang));
    let mut o = opts();
    o.jobs = Some(2);
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(secs(5)).await;
        c.cancel();
    });
    let (report, _) = run.go(&fake, o, Some(cancel)).await;
    let recs = fake.recs();
    assert_eq!(recs.len(), 2);
    assert!(recs.iter().all(|r| r.end == secs(5)));
    assert_eq!(report.summary.interrupted, 2);
    assert_eq!(report.summary.skipped, 1);
    assert!(report.summary.cancelled);
    assert_eq!(
        run.text(),
        "- [ ] <!-- id: a --> task\n- [ ] <!-- id: b --> task\n- [ ] <!-- id: c --> task\n"
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_stops_the_attempt_and_it_is_retried() {
    let run = Run::file("- [ ] <!-- id: a; timeout: 30s --> task\n");
    let fake = Arc::new(Fake::new(Step::Ok(1)).with("a", vec![Step::Hang, Step::Ok(1)]));
    let (report, events) = run.go(&fake, opts(), None).await;
    let recs = fake.of("a");
    assert_eq!(recs[0].end - recs[0].start, secs(30));
    assert!(events.iter().any(|e| matches!(
        e.event,
        RunEvent::TaskRetrying {
            kind: ErrorKind::Timeout,
            ..
        }
    )));
    assert_eq!(outcome(&report, "a"), Outcome::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_rerun_runs_only_unchecked_tasks_and_retries_unfinished_attempts() {
    let run = Run::file(TWO_WAVES);
    // A previous run was killed during `b`'s first attempt, after `a` succeeded.
    std::fs::write(&run.path, TWO_WAVES.replacen("[ ]", "[x]", 1)).unwrap();
    let state = batch_core::store::state_dir(&run.path);
    std::fs::create_dir_all(&state).unwrap();
    let doc =
        batch_core::Document::read(&run.path, &batch_core::ParseOptions::with_path(&run.path))
            .unwrap();
    let hash = batch_core::store::journal::text_hash(&doc.task_by_id("b").unwrap().text);
    std::fs::write(
        state.join("journal.jsonl"),
        concat!(
            r#"{"v":1,"ts":"t","run_id":"old","type":"run_start","file":"task.md","pid":1,"runner":"fake","total":4}"#,
            "\n",
            r#"{"v":1,"ts":"t","run_id":"old","type":"attempt_start","id":"b","attempt":1,"text_hash":"HASH"}"#,
            "\n",
            r#"{"v":1,"ts":"t","run_id":"old","type":"attempt_info","id":"b","attempt":1,"session_id":"sess-9"}"#,
            "\n",
            r#"{"v":1,"ts":"t","run_id":"old","type":"attempt_e"#,
        )
        .replace("HASH", &hash),
    )
    .unwrap();
    let fake = Arc::new(Fake::new(Step::Ok(1)));
    let mut o = opts();
    o.resume_sessions = true;
    let (report, events) = run.go(&fake, o, None).await;
    assert!(fake.of("a").is_empty(), "a checked task ran again");
    let b = &fake.of("b")[0];
    assert_eq!(b.attempt, 2);
    assert_eq!(
        b.previous.as_deref(),
        Some("the previous run stopped during attempt 1")
    );
    assert_eq!(b.resume.as_deref(), Some("sess-9"));
    assert!(
        matches!(&events[0].event, RunEvent::RunStarted { unfinished, total: 3, .. } if unfinished == &["b"])
    );
    assert_eq!(report.summary.succeeded, 3);
    assert_eq!(run.text(), TWO_WAVES.replace("[ ]", "[x]"));

    // A third run has nothing to do.
    let fake = Arc::new(Fake::new(Step::Ok(1)));
    let (report, _) = run.go(&fake, opts(), None).await;
    assert!(fake.recs().is_empty());
    assert_eq!(report.summary.total, 0);
}

#[tokio::test(start_paused = true)]
async fn a_second_run_on_a_locked_file_is_refused_before_anything_runs() {
    let run = Run::file("- [ ] <!-- id: a --> task\n");
    let state = batch_core::store::state_dir(&run.path);
    let _held = batch_core::store::lock::RunLock::acquire(&state, &run.path).unwrap();
    let fake = Arc::new(Fake::new(Step::Ok(1)));
    let err = ExecutorBuilder::new(&run.path)
        .runner(fake.clone())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, RunSetupError::Locked { pid, .. } if pid == std::process::id()));
    assert!(fake.recs().is_empty());
}

#[test]
fn a_zero_timeout_is_refused_before_anything_runs() {
    let run = Run::file("- [ ] <!-- id: a --> task\n");
    let fake = Arc::new(Fake::new(Step::Ok(1)));
    let mut options = opts();
    options.timeout = Some(Duration::ZERO);
    let err = ExecutorBuilder::new(&run.path)
        .options(options)
        .runner(fake.clone())
        .build()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            RunSetupError::Options(batch_core::OptionsError::ZeroTimeout)
        ),
        "{err}"
    );
    // A zero grace period is fine: the subagent is killed at once.
    let mut options = opts();
    options.grace = Duration::ZERO;
    assert!(
        ExecutorBuilder::new(&run.path)
            .options(options)
            .runner(fake.clone())
            .build()
            .is_ok()
    );
    assert!(fake.recs().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_journal_records_every_attempt_with_its_outcome() {
    let run = Run::file("- [ ] <!-- id: a --> task\n");
    let fake = Arc::new(
        Fake::new(Step::Ok(1)).with("a", vec![Step::Fail(1, ErrorKind::Failed), Step::Ok(2)]),
    );
    run.go(&fake, opts(), None).await;
    let state = batch_core::store::state_dir(&run.path);
    let summary = batch_core::store::journal::JournalSummary::load(&state).unwrap();
    let a = &summary.tasks["a"];
    assert_eq!(a.attempts, 2);
    assert!(a.flaky);
    assert!(summary.unfinished.is_empty());
    let last = summary.last_run().unwrap();
    assert!(last.ended.is_some());
    assert_eq!(last.summary.as_ref().unwrap().succeeded, 1);
}

/// Creates `done.txt` in the task's folder on its second attempt.
struct SecondTimeLucky;

#[async_trait::async_trait]
impl SubagentRunner for SecondTimeLucky {
    async fn run(&self, task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError> {
        if ctx.attempt == 2 {
            let prev = ctx.previous_error.map(|e| e.message).unwrap_or_default();
            std::fs::write(task.workdir().join("done.txt"), prev).unwrap();
        }
        Ok(TaskOutput::default())
    }
}

#[tokio::test]
async fn a_failing_verify_is_a_failed_attempt_and_its_output_reaches_the_next_attempt() {
    let run = Run::file("- [ ] <!-- id: a --> task\n");
    let mut o = opts();
    o.verify = Some(
        "test -f done.txt || { echo \"missing done.txt for $MDBATCH_TASK_ID\"; exit 1; }".into(),
    );
    o.backoff_base = Duration::from_millis(10);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let report = ExecutorBuilder::new(&run.path)
        .options(o)
        .runner(Arc::new(SecondTimeLucky))
        .on_event(move |e: &Envelope| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let t = &report.tasks[0];
    assert_eq!((t.outcome, t.attempts), (Outcome::Succeeded, 2));
    let seen = std::fs::read_to_string(run.path.parent().unwrap().join("done.txt")).unwrap();
    assert!(
        seen.contains("verify") && seen.contains("missing done.txt for a"),
        "{seen}"
    );
    assert_eq!(run.text(), "- [x] <!-- id: a --> task\n");
}

#[tokio::test(start_paused = true)]
async fn dropping_a_run_midway_still_ends_every_started_task_and_the_run_with_an_event() {
    let run = Run::file("- [ ] <!-- id: a --> task\n- [ ] <!-- id: b --> task\n");
    let fake = Arc::new(Fake::new(Step::Hang));
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let exec = ExecutorBuilder::new(&run.path)
        .runner(fake.clone())
        .on_event(move |e: &Envelope| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    assert!(tokio::time::timeout(secs(5), exec.run()).await.is_err());
    let events = events.lock().unwrap().clone();
    let ended: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.event {
            RunEvent::TaskFailed {
                id,
                kind: ErrorKind::Cancelled,
                ..
            } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 2, "{events:?}");
    assert!(matches!(
        events.last().unwrap().event,
        RunEvent::RunFinished { .. }
    ));
    // The lock went with the run: a new run may start.
    let fake = Arc::new(Fake::new(Step::Ok(1)));
    let (report, _) = run.go(&fake, opts(), None).await;
    assert_eq!(report.summary.succeeded, 2);
}

#[tokio::test(start_paused = true)]
async fn a_subagent_left_running_by_a_killed_run_is_stopped_and_reported() {
    let run = Run::file("- [ ] <!-- id: a --> task\n- [ ] <!-- id: b --> other\n");
    // A "subagent" of a previous run for `a`, still alive in its own process
    // group; and, under the pid recorded for `b`, a process that is not ours
    // (the pid was reused).
    let spawn = |task: Option<&str>| {
        let mut c = std::process::Command::new("sleep");
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        if let Some(t) = task {
            c.env("MDBATCH_TASK_ID", t);
        }
        c.arg("1000").spawn().unwrap()
    };
    let mut orphan = spawn(Some("a"));
    let mut stranger = spawn(None);
    let state = batch_core::store::state_dir(&run.path);
    std::fs::create_dir_all(&state).unwrap();
    let mut journal = String::new();
    for (id, pid) in [("a", orphan.id()), ("b", stranger.id())] {
        journal.push_str(&format!(
            "{{\"v\":1,\"ts\":\"t\",\"run_id\":\"old\",\"type\":\"attempt_start\",\"id\":\"{id}\",\"attempt\":1,\"text_hash\":\"x\"}}\n\
             {{\"v\":1,\"ts\":\"t\",\"run_id\":\"old\",\"type\":\"attempt_info\",\"id\":\"{id}\",\"attempt\":1,\"pid\":{pid}}}\n"
        ));
    }
    std::fs::write(state.join("journal.jsonl"), journal).unwrap();
    let fake = Arc::new(Fake::new(Step::Ok(1)));
    let (_, events) = run.go(&fake, opts(), None).await;
    let orphan_status = orphan.try_wait().unwrap();
    let stranger_status = stranger.try_wait().unwrap();
    let _ = orphan.kill();
    let _ = stranger.kill();
    orphan.wait().unwrap();
    stranger.wait().unwrap();
    let orphan_warning = events
        .iter()
        .position(|e| matches!(&e.event,
        RunEvent::Warning { message } if message.contains("`a`") && message.contains(&format!("process group {}", orphan.id())) && message.contains("stopped it")))
        .unwrap_or_else(|| panic!("{events:?}"));
    let a_started = events
        .iter()
        .position(|e| matches!(&e.event, RunEvent::TaskStarted { id, .. } if id == "a"))
        .unwrap();
    assert!(orphan_warning < a_started);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(
            &orphan_status.expect("the orphan was stopped")
        ),
        Some(libc::SIGTERM)
    );
    assert!(
        stranger_status.is_none(),
        "a process that is not ours was signalled"
    );
    assert!(!events.iter().any(|e| matches!(&e.event,
        RunEvent::Warning { message } if message.contains(&format!("process group {}", stranger.id())))));
}

/// A runner that edits the task file while running chosen tasks (as a user
/// would), then does what the fake says.
struct Editing {
    fake: Arc<Fake>,
    path: PathBuf,
    /// Task id → (text to find, replacement) applied when it starts.
    edits: HashMap<String, (String, String)>,
}

#[async_trait::async_trait]
impl SubagentRunner for Editing {
    async fn run(&self, task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError> {
        if let Some((from, to)) = self.edits.get(task.id()) {
            let text = std::fs::read_to_string(&self.path).unwrap();
            assert!(text.contains(from.as_str()), "{text}");
            std::fs::write(&self.path, text.replace(from.as_str(), to)).unwrap();
        }
        self.fake.run(task, ctx).await
    }

    fn name(&self) -> &str {
        "editing"
    }
}

impl Run {
    async fn go_editing(
        &self,
        edits: &[(&str, &str, &str)],
    ) -> (Arc<Fake>, RunReport, Vec<Envelope>) {
        self.go_editing_with(edits, opts()).await
    }

    /// Runs one task at a time with `options`; each task in `edits` edits
    /// the file (find, replace) when it starts.
    async fn go_editing_with(
        &self,
        edits: &[(&str, &str, &str)],
        mut options: RunOptions,
    ) -> (Arc<Fake>, RunReport, Vec<Envelope>) {
        let fake = Arc::new(Fake::new(Step::Ok(1)));
        let runner = Arc::new(Editing {
            fake: fake.clone(),
            path: self.path.clone(),
            edits: edits
                .iter()
                .map(|(id, from, to)| (id.to_string(), (from.to_string(), to.to_string())))
                .collect(),
        });
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        options.jobs = Some(1);
        let report = ExecutorBuilder::new(&self.path)
            .options(options)
            .runner(runner)
            .on_event(move |e| sink.lock().unwrap().push(e.clone()))
            .build()
            .unwrap()
            .run()
            .await
            .unwrap();
        let events = events.lock().unwrap().clone();
        (fake, report, events)
    }
}

#[tokio::test(start_paused = true)]
async fn launcher_arg_hints_an_agent_writes_during_a_run_are_refused_for_changed_and_added_tasks() {
    let run = Run::file(TWO_WAVES);
    // While `a` runs, its agent gives `c` a prolog and adds `e` that writes a file.
    let mut options = opts();
    options.launcher = batch_core::Launcher::Slurm;
    let (fake, report, events) = run
        .go_editing_with(
            &[(
                "a",
                "- [ ] <!-- id: c --> task c\n- [ ] <!-- id: d --> task d\n",
                "- [ ] <!-- id: c; launcher-arg: --prolog=/tmp/evil --> task c, now\n\
                 - [ ] <!-- id: d --> task d\n\
                 - [ ] <!-- id: e; launcher-arg: --output=/tmp/pwned --> task e\n",
            )],
            options,
        )
        .await;
    let ran: Vec<String> = fake.recs().iter().map(|r| r.id.clone()).collect();
    assert_eq!(ran, ["a", "b", "d"], "{report:?}");
    assert_eq!(outcome(&report, "c"), Outcome::Skipped);
    assert!(
        events.iter().any(|e| matches!(&e.event,
            RunEvent::Warning { message } if message.contains("`e`") && message.contains("--output=/tmp/pwned"))),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_box_checked_by_hand_during_the_run_is_not_run_and_is_not_a_failure() {
    let run = Run::file(TWO_WAVES);
    // While `a` runs, the user checks `c` (wave 2) by hand.
    let (fake, report, events) = run
        .go_editing(&[("a", "- [ ] <!-- id: c -->", "- [x] <!-- id: c -->")])
        .await;
    let ran: Vec<String> = fake.recs().iter().map(|r| r.id.clone()).collect();
    assert!(!ran.contains(&"c".to_string()), "{ran:?}");
    assert_eq!(ran.len(), 3, "{ran:?}");
    let c = report.tasks.iter().find(|t| t.id == "c").unwrap();
    assert_eq!(c.outcome, Outcome::Skipped);
    assert!(c.checked_by_hand);
    assert!(events.iter().any(|e| matches!(&e.event,
        RunEvent::TaskSkipped { id, reason } if id == "c" && reason == "checked by hand during the run")));
    assert_eq!(report.summary.failed, 0);
    assert!(
        !report
            .tasks
            .iter()
            .any(|t| t.id != "c" && t.checked_by_hand)
    );
    assert_eq!(run.text(), TWO_WAVES.replace("[ ]", "[x]"));
}

#[tokio::test(start_paused = true)]
async fn a_task_edited_during_its_run_is_not_a_plain_success_when_its_box_cannot_be_checked() {
    let run = Run::file(TWO_WAVES);
    // While `c` runs, the user rewrites its line (its id is gone).
    let (_, report, events) = run
        .go_editing(&[("c", "- [ ] <!-- id: c --> task c", "- [ ] task c, reworded")])
        .await;
    let c = report.tasks.iter().find(|t| t.id == "c").unwrap();
    assert_eq!(c.outcome, Outcome::Failed);
    assert_eq!(c.kind, Some(ErrorKind::Failed));
    let message = c.message.as_deref().unwrap();
    assert!(
        message.starts_with("succeeded, but its box could not be checked: ")
            && message.contains("no longer in the file"),
        "{message}"
    );
    assert_eq!(report.summary.failed, 1);
    assert!(events.iter().any(|e| matches!(&e.event,
        RunEvent::Warning { message } if message.contains("`c` is no longer in the file"))));
    assert!(events.iter().any(|e| matches!(&e.event,
        RunEvent::TaskFailed { id, message, .. } if id == "c" && message.starts_with("succeeded, but"))));
    assert_eq!(outcome(&report, "d"), Outcome::Succeeded);
    let state = batch_core::store::state_dir(&run.path);
    let journal = std::fs::read_to_string(state.join("journal.jsonl")).unwrap();
    let last_c = journal
        .lines()
        .rfind(|l| l.contains(r#""type":"attempt_end""#) && l.contains(r#""id":"c""#))
        .unwrap();
    assert!(last_c.contains(r#""outcome":"failed""#), "{last_c}");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_event_callback_interrupts_the_run_and_is_not_called_again() {
    let run = Run::file("- [ ] <!-- id: a --> task\n- [ ] <!-- id: b; after: a --> later\n");
    let fake = Arc::new(Fake::new(Step::Hang));
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let report = ExecutorBuilder::new(&run.path)
        .runner(fake.clone())
        .on_event(move |e: &Envelope| {
            seen.fetch_add(1, Ordering::SeqCst);
            // As `println!` does when stdout is a closed pipe.
            if matches!(e.event, RunEvent::TaskStarted { .. }) {
                panic!("failed printing to stdout: Broken pipe (os error 32)");
            }
        })
        .build()
        .unwrap()
        .run()
        .await
        .expect("the run ends normally");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "called after it panicked");
    assert!(report.summary.cancelled);
    assert_eq!(outcome(&report, "a"), Outcome::Interrupted);
    assert_eq!(outcome(&report, "b"), Outcome::Skipped);
    assert_eq!(
        run.text(),
        "- [ ] <!-- id: a --> task\n- [ ] <!-- id: b; after: a --> later\n"
    );
}

#[tokio::test(start_paused = true)]
async fn a_token_cancelled_before_the_run_launches_nothing() {
    let run = Run::file(TWO_WAVES);
    let fake = Arc::new(Fake::new(Step::Ok(1)));
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (report, events) = run.go(&fake, opts(), Some(cancel)).await;
    assert_eq!(fake.recs().len(), 0);
    assert_eq!(
        fake.max_running.load(Ordering::SeqCst),
        0,
        "the runner was called"
    );
    assert!(report.summary.cancelled);
    assert_eq!(report.summary.skipped, 4);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.event, RunEvent::TaskStarted { .. }))
    );
    let journal =
        batch_core::store::journal::read(&batch_core::store::state_dir(&run.path)).unwrap();
    assert!(
        !journal.entries.iter().any(|e| matches!(
            e.record,
            batch_core::store::journal::JournalRecord::AttemptStart { .. }
        )),
        "the journal records an attempt"
    );
    assert_eq!(run.text(), TWO_WAVES);
}

#[tokio::test(start_paused = true)]
async fn only_output_lines_are_dropped_when_the_consumer_falls_behind_and_they_are_counted() {
    let run = Run::file("- [ ] <!-- id: a --> task\n");
    let fake = Arc::new(Fake::new(Step::Flood(15_000)));
    let (report, events) = run.go(&fake, opts(), None).await;
    assert_eq!(outcome(&report, "a"), Outcome::Succeeded);
    let count = |want_line: bool| {
        events
            .iter()
            .filter(|e| match &e.event {
                RunEvent::TaskProgress { progress, .. } => {
                    matches!(progress, batch_core::Progress::Output { .. }) == want_line
                }
                _ => false,
            })
            .count()
    };
    assert_eq!(count(false), 15_000, "usage items were dropped");
    let shown = count(true);
    let dropped: usize = events
        .iter()
        .find_map(|e| match &e.event {
            RunEvent::Warning { message } if message.contains("output lines were not shown") => {
                message.split(": ").nth(1)?.split(' ').next()?.parse().ok()
            }
            _ => None,
        })
        .expect("a warning counts the dropped lines");
    assert!(shown < 15_000 && dropped > 0);
    assert_eq!(shown + dropped, 15_000);
}

#[tokio::test(start_paused = true)]
async fn a_runner_that_ignores_its_timeout_keeps_its_slot_until_it_returns() {
    let run = Run::file("- [ ] <!-- id: a; timeout: 1s --> task\n- [ ] <!-- id: b --> other\n");
    let fake = Arc::new(Fake::new(Step::Ok(1)).with("a", vec![Step::Detached(100), Step::Ok(1)]));
    let mut o = opts();
    o.jobs = Some(1);
    o.grace = secs(1);
    o.retries = 1;
    let (report, events) = run.go(&fake, o, None).await;
    assert_eq!(
        fake.max_running.load(Ordering::SeqCst),
        1,
        "--jobs 1 was exceeded"
    );
    let a = fake.of("a");
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].end, secs(100));
    assert!(
        a[1].start >= a[0].end,
        "a retry ran beside the late attempt"
    );
    assert!(events.iter().any(|e| matches!(
        e.event,
        RunEvent::TaskRetrying {
            kind: ErrorKind::Timeout,
            ..
        }
    )));
    assert_eq!(outcome(&report, "a"), Outcome::Succeeded);
}

/// The handler installed for `signal` now (`SIG_DFL` is 0).
fn disposition(signal: libc::c_int) -> libc::sighandler_t {
    // SAFETY: sigaction(2) with no new action only reads the current one.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old);
        old.sa_sigaction
    }
}

/// Records the SIGINT disposition while it runs, raises SIGINT, then waits
/// to be cancelled.
struct RaisesSigint(Mutex<Option<libc::sighandler_t>>);

#[async_trait::async_trait]
impl SubagentRunner for RaisesSigint {
    async fn run(&self, _task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError> {
        *self.0.lock().unwrap() = Some(disposition(libc::SIGINT));
        // SAFETY: raise(3) on our own process; mdbatch's handler is installed.
        unsafe { libc::raise(libc::SIGINT) };
        ctx.cancel.cancelled().await;
        Err(RunError::new(ErrorKind::Cancelled, "stopped"))
    }
}

#[tokio::test]
async fn handled_signals_interrupt_the_run_and_the_previous_handlers_are_back_after_it() {
    let run = Run::file("- [ ] <!-- id: a --> task\n");
    let before = [
        disposition(libc::SIGINT),
        disposition(libc::SIGTERM),
        disposition(libc::SIGHUP),
    ];
    let runner = Arc::new(RaisesSigint(Mutex::new(None)));
    let report = ExecutorBuilder::new(&run.path)
        .runner(runner.clone())
        .handle_signals(true)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(report.summary.cancelled, "SIGINT did not interrupt the run");
    let during = runner.0.lock().unwrap().expect("the runner ran");
    assert_ne!(during, before[0], "no handler was installed during the run");
    assert_eq!(
        [
            disposition(libc::SIGINT),
            disposition(libc::SIGTERM),
            disposition(libc::SIGHUP)
        ],
        before,
        "the run left its signal handlers installed"
    );
}

#[test]
fn the_task_file_is_read_off_the_runtimes_threads() {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // The task file is a FIFO: reading it blocks until a writer comes. On a
    // runtime with one thread, the writer task below only ever runs if the
    // executor reads the file somewhere else.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("task.md");
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let total = rt.block_on(async {
            let writer = async {
                loop {
                    // Non-blocking: fails until the executor opened it to read.
                    let opened = std::fs::OpenOptions::new()
                        .write(true)
                        .custom_flags(libc::O_NONBLOCK)
                        .open(&path);
                    match opened {
                        Ok(mut f) => {
                            f.write_all(
                                b"- [x] <!-- id: a --> done\n- [x] <!-- id: b --> done too\n",
                            )
                            .unwrap();
                            break;
                        }
                        Err(_) => tokio::task::yield_now().await,
                    }
                }
            };
            // Without write-back: a FIFO is not a file boxes can be written
            // into (with it, the run is refused before anything is read).
            let run = ExecutorBuilder::new(&path)
                .runner(Arc::new(Fake::new(Step::Ok(0))))
                .write_back(false)
                .build()
                .unwrap()
                .run();
            let (report, ()) = tokio::join!(run, writer);
            report.map(|r| r.summary.total)
        });
        let _ = tx.send(total.ok());
    });
    let total = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("reading the task file blocked the runtime's only thread");
    // Parsed and planned: both tasks are done, so nothing is left to write back.
    assert_eq!(total, Some(0));
}

#[tokio::test(start_paused = true)]
async fn two_task_files_of_one_folder_run_at_once_with_separate_histories() {
    let run = Run::file("- [ ] <!-- id: a --> task a\n");
    let other = run.path.with_file_name("tasks.md");
    std::fs::write(&other, "- [ ] <!-- id: b --> task b\n").unwrap();
    let fake = Arc::new(Fake::new(Step::Ok(10)));
    let go = |path: PathBuf| {
        ExecutorBuilder::new(path)
            .runner(fake.clone())
            .build()
            .unwrap()
            .run()
    };
    let (one, two) = tokio::join!(go(run.path.clone()), go(other.clone()));
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!((one.summary.succeeded, two.summary.succeeded), (1, 1));
    // Side by side, not one after the other.
    assert_eq!(fake.of("a")[0].start, fake.of("b")[0].start);
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        "- [x] <!-- id: b --> task b\n"
    );
    let ids = |path: &std::path::Path| {
        let state = batch_core::store::state_dir(path);
        batch_core::store::journal::JournalSummary::load(&state)
            .unwrap()
            .tasks
            .into_keys()
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&run.path), ["a"]);
    assert_eq!(ids(&other), ["b"]);
}

#[tokio::test(start_paused = true)]
async fn a_symlink_to_a_running_task_file_shares_its_lock() {
    let run = Run::file("- [ ] <!-- id: a --> task\n");
    let sub = run.path.parent().unwrap().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let link = sub.join("task.md");
    std::os::unix::fs::symlink("../task.md", &link).unwrap();
    assert_eq!(
        batch_core::store::state_dir(&link),
        batch_core::store::state_dir(&run.path)
    );
    let state = batch_core::store::state_dir(&run.path);
    let _held = batch_core::store::lock::RunLock::acquire(&state, &run.path).unwrap();
    let err = ExecutorBuilder::new(&link)
        .runner(Arc::new(Fake::new(Step::Ok(1))))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, RunSetupError::Locked { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_stream_consumer_that_reads_nothing_until_the_end_never_stalls_the_run() {
    use futures::StreamExt;
    let run = Run::file(TWO_WAVES);
    let fake = Arc::new(
        Fake::new(Step::Ok(5))
            .with("a", vec![Step::Flood(10_000)])
            .with("c", vec![Step::Flood(10_000)]),
    );
    let mut exec = ExecutorBuilder::new(&run.path)
        .runner(fake.clone())
        .build()
        .unwrap();
    let mut stream = exec.events();
    let t0 = Instant::now();
    let report = exec.run().await.unwrap();
    // The same timing as with nobody listening: 5 s per wave (`b`, `d`).
    assert_eq!(t0.elapsed(), secs(10));
    assert_eq!(report.summary.succeeded, 4);
    let dropped = stream.dropped() as usize;
    let events: Vec<Envelope> = (&mut stream).collect().await;
    assert!(matches!(events[0].event, RunEvent::RunStarted { .. }));
    assert!(matches!(
        events.last().unwrap().event,
        RunEvent::RunFinished { .. }
    ));
    let progress = |line: bool| {
        events
            .iter()
            .filter(|e| {
                matches!(&e.event, RunEvent::TaskProgress { progress, .. }
                if matches!(progress, batch_core::Progress::Output { .. }) == line)
            })
            .count()
    };
    assert_eq!(progress(false), 20_000, "a usage item was lost");
    // Lines are lost in two places, each counted: the run's progress queue
    // (a warning per attempt) and this stream.
    let warned: usize = events
        .iter()
        .filter_map(|e| match &e.event {
            RunEvent::Warning { message } if message.contains("output lines were not shown") => {
                message
                    .split(": ")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .parse::<usize>()
                    .ok()
            }
            _ => None,
        })
        .sum();
    assert!(dropped > 0);
    assert_eq!(progress(true) + warned + dropped, 20_000);
    let succeeded = events
        .iter()
        .filter(|e| matches!(e.event, RunEvent::TaskSucceeded { .. }))
        .count();
    assert_eq!(succeeded, 4);
}

#[tokio::test(start_paused = true)]
async fn a_document_in_memory_runs_without_touching_any_file_when_write_back_and_state_are_off() {
    use batch_core::exec::StateDir;
    use batch_core::{Document, ParseOptions, Plan, PlanOptions};
    let doc = Document::parse(TWO_WAVES, &ParseOptions::default()).unwrap();
    // Without a path there is nothing to write back to or keep state beside.
    let err = ExecutorBuilder::from_document(doc.clone())
        .runner(Arc::new(Fake::new(Step::Ok(1))))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("write-back off"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::new(Step::Ok(1)));
    let mut only = PlanOptions::default();
    only.only = vec!["c".into()];
    let plan = Plan::build(&doc, &only).unwrap();
    let mut exec = ExecutorBuilder::from_plan(doc, plan)
        .runner(fake.clone())
        .write_back(false)
        .state_dir(StateDir::Off)
        .build()
        .unwrap();
    let events = exec.events();
    let report = exec.run().await.unwrap();
    // The plan given: `c` and what it needs (wave 1).
    assert_eq!(report.summary.succeeded, 3);
    assert!(fake.of("d").is_empty());
    let events: Vec<Envelope> = futures::StreamExt::collect(events).await;
    assert!(events.iter().any(|e| matches!(&e.event,
        RunEvent::TaskSucceeded { id, parents_checked, .. } if id == "c" && parents_checked.is_empty())));
    // Nothing was written anywhere: not in the current folder, not in a temp one.
    assert!(!std::path::Path::new(".mdbatch").exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_parsed_document_with_a_path_keeps_its_state_where_the_caller_says() {
    use batch_core::exec::StateDir;
    use batch_core::{Document, ParseOptions};
    let run = Run::file(TWO_WAVES);
    let doc = Document::read(&run.path, &ParseOptions::with_path(&run.path)).unwrap();
    let state = run.path.with_file_name("elsewhere");
    let report = ExecutorBuilder::from_document(doc)
        .runner(Arc::new(Fake::new(Step::Ok(1))))
        .state_dir(StateDir::At(state.clone()))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.summary.succeeded, 4);
    assert_eq!(run.text(), TWO_WAVES.replace("[ ]", "[x]"));
    assert!(state.join("journal.jsonl").exists());
    assert!(!batch_core::store::state_dir(&run.path).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn run_blocking_inside_a_runtime_runs_on_a_thread_of_its_own() {
    let run = Run::file("- [ ] <!-- id: a --> task\n");
    let report = ExecutorBuilder::new(&run.path)
        .runner(Arc::new(Fake::new(Step::Ok(0))))
        .build()
        .unwrap()
        .run_blocking()
        .unwrap();
    assert_eq!(report.summary.succeeded, 1);
}

/// A runner that finishes its work and, as it returns, the user presses
/// Ctrl-C (the cancel token fires).
struct CancelsAsItSucceeds(CancellationToken);

#[async_trait::async_trait]
impl SubagentRunner for CancelsAsItSucceeds {
    async fn run(&self, _task: &TaskSpec, _ctx: RunContext) -> Result<TaskOutput, RunError> {
        self.0.cancel();
        Ok(TaskOutput::default())
    }
    fn name(&self) -> &str {
        "cancels-as-it-succeeds"
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancel_that_arrives_after_every_box_is_checked_does_not_report_the_run_cancelled() {
    let run = Run::file("- [ ] <!-- id: a --> only task\n");
    let token = CancellationToken::new();
    let report = ExecutorBuilder::new(&run.path)
        .runner(Arc::new(CancelsAsItSucceeds(token.clone())))
        .cancel_token(token)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(run.text(), "- [x] <!-- id: a --> only task\n");
    assert_eq!(outcome(&report, "a"), Outcome::Succeeded);
    assert!(
        !report.summary.cancelled,
        "every task finished and its box is checked, yet the run says CANCELLED"
    );
}

#[tokio::test]
async fn the_subagents_a_killed_run_left_behind_are_stopped_together_not_one_grace_period_each() {
    let run = Run::file("- [ ] <!-- id: a --> task\n- [ ] <!-- id: b --> other\n");
    let dir = run.path.parent().unwrap().to_path_buf();
    // Each orphan, on TERM, waits for the other's TERM before it exits. Had
    // they been stopped one after the other, the first would wait in vain
    // and be KILLed at the end of its grace period.
    let spawn = |task: &str, other: &str| {
        let mut c = std::process::Command::new("sh");
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        c.current_dir(&dir).env("MDBATCH_TASK_ID", task).args([
            "-c",
            &format!(
                "trap 'touch term-{task}; while [ ! -f term-{other} ]; do sleep 0.02; done; touch clean-{task}; exit 0' TERM; \
                 touch up-{task}; while :; do sleep 0.02; done"
            ),
        ]);
        c.spawn().unwrap()
    };
    let mut orphans = [spawn("a", "b"), spawn("b", "a")];
    for t in ["a", "b"] {
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while !dir.join(format!("up-{t}")).exists() {
            assert!(
                std::time::Instant::now() < until,
                "orphan {t} did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let state = batch_core::store::state_dir(&run.path);
    std::fs::create_dir_all(&state).unwrap();
    let mut journal = String::new();
    for (id, pid) in [("a", orphans[0].id()), ("b", orphans[1].id())] {
        journal.push_str(&format!(
            "{{\"v\":1,\"ts\":\"t\",\"run_id\":\"old\",\"type\":\"attempt_start\",\"id\":\"{id}\",\"attempt\":1,\"text_hash\":\"x\"}}\n\
             {{\"v\":1,\"ts\":\"t\",\"run_id\":\"old\",\"type\":\"attempt_info\",\"id\":\"{id}\",\"attempt\":1,\"pid\":{pid}}}\n"
        ));
    }
    std::fs::write(state.join("journal.jsonl"), journal).unwrap();
    let fake = Arc::new(Fake::new(Step::Ok(1)));
    let mut options = opts();
    options.grace = Duration::from_secs(30);
    let (report, _) = run.go(&fake, options, None).await;
    for o in &mut orphans {
        let _ = o.kill();
        o.wait().unwrap();
    }
    assert_eq!(report.summary.succeeded, 2);
    for t in ["a", "b"] {
        assert!(
            dir.join(format!("clean-{t}")).exists(),
            "orphan {t} was not TERMed while the other was: the cleanup is serial"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn edits_made_during_the_run_are_followed_for_tasks_not_started_yet() {
    let run = Run::file(
        "- [ ] <!-- id: a --> task a\n- [ ] <!-- id: b --> old text of b\n- [ ] <!-- id: c --> task c\n- [ ] <!-- id: e --> task e\n",
    );
    // While `a` runs (one at a time): b is reworded, c removed, d added.
    let (fake, report, events) = run
        .go_editing(&[(
            "a",
            "- [ ] <!-- id: b --> old text of b\n- [ ] <!-- id: c --> task c\n",
            "- [ ] <!-- id: b --> new text of b\n- [ ] <!-- id: d --> task d, added\n",
        )])
        .await;
    let ran: Vec<String> = fake.recs().iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        ran,
        ["a", "b", "e", "d"],
        "c was removed before it started; d, added, runs after the planned tasks"
    );
    let b_title = events
        .iter()
        .find_map(|e| match &e.event {
            RunEvent::TaskStarted { id, title, .. } if id == "b" => Some(title.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(b_title, "new text of b", "b ran with its old text");
    let changed = events
        .iter()
        .find_map(|e| match &e.event {
            RunEvent::PlanChanged {
                changed,
                dropped,
                added,
            } => Some((changed.clone(), dropped.clone(), added.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no plan_changed event: {events:?}"));
    assert_eq!(
        changed,
        (
            vec!["b".to_string()],
            vec!["c".to_string()],
            vec!["d".to_string()]
        )
    );
    // The boxes of what ran are checked, for the text that ran; removing c
    // is not a failure.
    assert_eq!(
        run.text(),
        "- [x] <!-- id: a --> task a\n- [x] <!-- id: b --> new text of b\n- [x] <!-- id: d --> task d, added\n- [x] <!-- id: e --> task e\n"
    );
    assert_eq!(report.summary.succeeded, 4);
    let c = report.tasks.iter().find(|t| t.id == "c").unwrap();
    assert_eq!(c.outcome, Outcome::Skipped);
    assert!(c.removed);
}

#[tokio::test(start_paused = true)]
async fn a_task_added_during_the_run_waits_for_its_wave_and_its_after_and_is_skipped_when_they_fail()
 {
    let run = Run::file(
        "## W1\n- [ ] <!-- id: a --> task a\n- [ ] <!-- id: f --> fails\n## W2\n- [ ] <!-- id: b --> task b\n",
    );
    // While `a` runs, x is added to wave 2: it waits for wave 1, where f
    // fails, so it is skipped like the rest of wave 2.
    let fake = Arc::new(Fake::new(Step::Ok(1)).with("f", vec![Step::Fail(1, ErrorKind::Failed)]));
    let runner = Arc::new(Editing {
        fake: fake.clone(),
        path: run.path.clone(),
        edits: [(
            "a".to_string(),
            (
                "- [ ] <!-- id: b --> task b\n".to_string(),
                "- [ ] <!-- id: b --> task b\n- [ ] <!-- id: x --> added to wave 2\n".to_string(),
            ),
        )]
        .into_iter()
        .collect(),
    });
    let mut options = opts();
    options.jobs = Some(1);
    options.retries = 0;
    let report = ExecutorBuilder::new(&run.path)
        .options(options)
        .runner(runner)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let ran: Vec<String> = fake.recs().iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        ran,
        ["a", "f"],
        "wave 2 (b and the added x) waits for f, which failed"
    );
    let x = report
        .tasks
        .iter()
        .find(|t| t.id == "x")
        .expect("x is in the run");
    assert_eq!(x.outcome, Outcome::Skipped);
    assert!(run.text().contains("- [ ] <!-- id: x -->"));
}

/// Deletes the task file when task `a` starts.
struct Deleting {
    fake: Arc<Fake>,
    path: PathBuf,
}

#[async_trait::async_trait]
impl SubagentRunner for Deleting {
    async fn run(&self, task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError> {
        if task.id() == "a" {
            std::fs::remove_file(&self.path).unwrap();
        }
        self.fake.run(task, ctx).await
    }
}

/// Deletes the state folder (`rm -rf .mdbatch`) while task `c` runs, then
/// tries to take the file's lock as a second run would.
struct RemovingState {
    fake: Arc<Fake>,
    path: PathBuf,
    second: Mutex<Option<Result<(), RunSetupError>>>,
}

#[async_trait::async_trait]
impl SubagentRunner for RemovingState {
    async fn run(&self, task: &TaskSpec, ctx: RunContext) -> Result<TaskOutput, RunError> {
        if task.id() == "c" {
            let state = batch_core::store::state_dir(&self.path);
            std::fs::remove_dir_all(state.parent().unwrap()).unwrap();
            let second = batch_core::store::lock::RunLock::acquire(&state, &self.path).map(drop);
            *self.second.lock().unwrap() = Some(second);
        }
        self.fake.run(task, ctx).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_state_folder_deleted_during_the_run_neither_lets_a_second_run_in_nor_loses_the_journal()
{
    let run = Run::file(TWO_WAVES);
    // A first run leaves history: `c` fails.
    let fake = Arc::new(Fake::new(Step::Ok(1)).with("c", vec![Step::Fail(1, ErrorKind::Failed)]));
    let mut o = opts();
    o.retries = 0;
    run.go(&fake, o, None).await;
    let runner = Arc::new(RemovingState {
        fake: Arc::new(Fake::new(Step::Ok(1))),
        path: run.path.clone(),
        second: Mutex::new(None),
    });
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let mut options = opts();
    options.jobs = Some(1);
    let report = ExecutorBuilder::new(&run.path)
        .options(options)
        .runner(runner.clone())
        .on_event(move |e| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.summary.succeeded, 1, "{report:?}");
    match runner.second.lock().unwrap().take() {
        Some(Err(RunSetupError::Locked { pid, .. })) => assert_eq!(pid, std::process::id()),
        other => panic!("a second run could start on the file: {other:?}"),
    }
    let events = events.lock().unwrap();
    assert!(
        events.iter().any(|e| matches!(&e.event,
            RunEvent::Warning { message } if message.contains("state folder was deleted"))),
        "{events:?}"
    );
    // The journal has the first run's history and all of this run.
    let journal =
        batch_core::store::journal::read(&batch_core::store::state_dir(&run.path)).unwrap();
    let runs: std::collections::HashSet<&str> =
        journal.entries.iter().map(|e| e.run_id.as_str()).collect();
    assert_eq!(runs.len(), 2, "{journal:?}");
    let ended = |id: &str, this_run: bool| {
        journal.entries.iter().any(|e| {
            (e.run_id == report.run_id) == this_run
                && matches!(&e.record,
                    batch_core::store::journal::JournalRecord::AttemptEnd { id: i, .. } if i == id)
        })
    };
    for id in ["a", "b", "c", "d"] {
        assert!(
            ended(id, false),
            "the first run's `{id}` is missing from the journal"
        );
    }
    assert!(
        ended("c", true),
        "this run's `c` is missing from the journal"
    );
    assert!(run.text().contains("- [x] <!-- id: c -->"));
}

#[tokio::test(start_paused = true)]
async fn a_task_file_deleted_during_the_run_stops_later_waves_from_launching() {
    let run = Run::file(TWO_WAVES);
    let fake = Arc::new(Fake::new(Step::Ok(1)));
    let mut options = opts();
    options.jobs = Some(1);
    let report = ExecutorBuilder::new(&run.path)
        .options(options)
        .runner(Arc::new(Deleting {
            fake: fake.clone(),
            path: run.path.clone(),
        }))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let ran: Vec<String> = fake.recs().iter().map(|r| r.id.clone()).collect();
    assert_eq!(ran, ["a"], "nothing starts once the file is gone");
    assert_eq!(outcome(&report, "a"), Outcome::Failed);
    assert!(
        report
            .tasks
            .iter()
            .filter(|t| t.id != "a")
            .all(|t| t.outcome == Outcome::Skipped)
    );
    assert!(!run.path.exists(), "the file is not recreated");
}

/// Keeps the spec each task's runner got, and the prompt when it asks.
struct Keeping {
    specs: Mutex<Vec<TaskSpec>>,
}

#[async_trait::async_trait]
impl SubagentRunner for Keeping {
    async fn run(&self, task: &TaskSpec, _ctx: RunContext) -> Result<TaskOutput, RunError> {
        self.specs.lock().unwrap().push(task.clone());
        Ok(TaskOutput::default())
    }
}

#[tokio::test]
async fn a_runner_that_asks_for_the_prompt_gets_the_template_rendered_over_its_task() {
    let text = "# Shop\n\nA React shop.\n\n## Wave 1\n\n### Frontend\n\n- [ ] <!-- id: a --> Add the form\n  - email\n  - password\n- [ ] <!-- id: b --> Style it\n\n## Wave 2\n\n- [ ] <!-- id: c --> Ship {it} }} {{\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.md");
    std::fs::write(&path, text).unwrap();
    let doc =
        batch_core::Document::read(&path, &batch_core::ParseOptions::with_path(&path)).unwrap();
    for template in [
        batch_core::PromptTemplate::default(),
        batch_core::PromptTemplate::parse(
            "{id}|{section}|{task}\n\n\n{details}|{file}|{workdir}\n{preamble}",
        )
        .unwrap(),
    ] {
        let runner = Arc::new(Keeping {
            specs: Mutex::new(Vec::new()),
        });
        let report = ExecutorBuilder::new(&path)
            .runner(runner.clone())
            .prompt_template(template.clone())
            .state_dir(batch_core::StateDir::Off)
            .write_back(false)
            .build()
            .unwrap()
            .run()
            .await
            .unwrap();
        assert_eq!(report.summary.succeeded, 3);
        let specs = runner.specs.lock().unwrap();
        assert_eq!(specs.len(), 3);
        for spec in specs.iter() {
            let task = doc.task_by_id(spec.id()).unwrap();
            let want =
                batch_core::task_spec(&doc, task, &batch_core::SpecPlace::new(&path), &template);
            // The same spec `plan --show-prompt` shows, field by field.
            assert_eq!(spec, &want);
            // And the prompt the template renders over the same fields.
            let owned = TaskSpec::new(spec.id(), spec.text())
                .with_details(spec.details())
                .with_section_path(spec.section_path().to_vec())
                .with_preamble(spec.preamble())
                .with_task_file(spec.task_file())
                .with_workdir(spec.workdir());
            assert_eq!(spec.prompt(), template.render(&owned), "{}", spec.id());
        }
    }
}
