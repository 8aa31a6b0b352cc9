//! The dispatcher loop.
//!
//! [`Executor::run`](super::Executor::run) prepares the run off the runtime
//! (`prepare`: read, parse and plan the file or take the caller's document,
//! check that it can be written, take the lock, open the journal); only then
//! does anything run. One dispatcher (this module's `Dispatcher`) owns all
//! run state: the [`Scheduler`](super::schedule::Scheduler), the journal
//! (written by its own thread), the event callback and streams, and the
//! task-file writer (`writeback`, in `spawn_blocking`). Each attempt is
//! polled once where it is launched, on the dispatcher's thread: one done
//! there (an in-process runner, a failure found before anything starts)
//! goes straight to the completion path, with no task and no wake-up
//! between threads; any other runs on as its own tokio task and reports
//! back to the dispatcher through its join handle; runner progress
//! arrives over an unbounded channel where only output lines have a budget
//! (beyond it they are dropped and counted), so the runner never blocks and
//! nothing else is lost; lifecycle events are emitted by the dispatcher
//! alone, so they are never lost or reordered.
//!
//! Lifecycle of an attempt: launched when a slot (`--jobs`, lowered by the
//! rate-limit gate), its group limit and its resources allow, highest
//! critical path first; guarded by its deadline and the run's cancellation
//! (cooperative: the runner's token fires and it has the grace period to
//! stop its processes; a runner that ignores it keeps its slot until it
//! returns, so a retry never runs beside it; a second interrupt drops it,
//! which kills its process group); then `verify` runs if configured; then
//! the dispatcher journals the end, asks `retry::decide` what follows a
//! failure, and on success lets its dependants start at once and checks the
//! box (completions that arrive together in one write, after their journal
//! lines are durable) before emitting `task_succeeded`.
//!
//! A runner that panics is a failed attempt; an event callback that panics
//! is not called again and interrupts the run. If the whole `run` future is
//! dropped, running attempts are aborted (their process groups killed) and a
//! terminal event is still emitted for each, then `run_finished`.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::attempt::{
    AttemptEnv, AttemptFuture, AttemptResult, FirstPolls, Started, TimerFuture, joined,
    panic_message, run_attempt,
};
use super::executor::EventCallback;
use super::isolate::{CommitOnly, Isolation, short_run_id};
use super::options::{Launcher, RunOptions};
use super::retry::{self, Decision};
use super::schedule::{NodeState, Scheduler};
use super::signals::Signals;
use super::stream::EventSender;
use super::writeback::{Writing, written};
use crate::doc::{Document, ParseOptions};
use crate::error::{ErrorKind, RunError, StoreError};
use crate::events::{Envelope, Outcome, RunEvent, SCHEMA_VERSION, millis};
use crate::plan::{NodeIdx, Plan};
use crate::runner::PromptTemplate;
use crate::runner::process::group::stop_group;
use crate::runner::slurm::SlurmJob;
use crate::runner::{
    AttemptHandle, CancelReason, ContextRest, ContextSeed, LineBudget, Progress, ProgressItem,
    ProgressSink, SubagentRunner, TaskSpec, Usage,
};
use crate::store;
use crate::store::journal::{AttemptOutcome, JournalRecord, JournalWriter, text_hash};
use crate::store::lock::RunLock;

/// How many turns of the loop may handle attempts done at their first poll
/// (see [`Dispatcher::launch`]) before one waits on everything else.
const AT_ONCE_TURNS: u32 = 64;

/// Why the run stopped launching.
#[derive(Debug, Clone)]
pub(super) enum Stop {
    Interrupted,
    FailFast(String),
    Fatal(String),
    /// The spending cap was reached (what was reached, for people).
    Cap(String),
}

pub(super) struct Running {
    /// The attempt's context as the executor keeps it (to stop it).
    pub(super) ctx: AttemptHandle,
    /// Its log, if any.
    pub(super) log: Option<PathBuf>,
    pub(super) started: Instant,
    pub(super) pid: Option<u32>,
    pub(super) session: Option<String>,
}

#[derive(Default)]
pub(super) struct NodeRun {
    /// Last attempt number used (continues a journal's unfinished attempt).
    pub(super) attempt: u32,
    /// The commit its change landed as (isolation, `--commit`).
    pub(super) commit: Option<String>,
    /// Attempts started in this run.
    pub(super) attempts: u32,
    /// Failed attempts that spent the retry budget.
    pub(super) counted_failures: u32,
    /// Any failed attempt in this run (for flakiness).
    pub(super) had_failure: bool,
    /// Time spent waiting on rate limits.
    pub(super) rate_wait: Duration,
    pub(super) first_start: Option<Instant>,
    pub(super) end: Option<Instant>,
    /// Boxed, as `running`: most tasks never fail, and every task has a
    /// `NodeRun` for the whole run.
    pub(super) last_error: Option<Box<RunError>>,
    pub(super) usage: Option<Usage>,
    pub(super) outcome: Option<Outcome>,
    pub(super) message: Option<String>,
    pub(super) resume_session: Option<String>,
    pub(super) running: Option<Box<Running>>,
    /// Skipped because its box was checked by hand during the run.
    pub(super) checked_by_hand: bool,
    /// Skipped because it was removed from the file before it started.
    pub(super) removed: bool,
}

pub(super) struct NodeConfig {
    pub(super) spec: Arc<TaskSpec>,
    pub(super) retries: u32,
    pub(super) timeout: Option<Duration>,
    pub(super) wave: usize,
    /// Its group's title (shared by the group's tasks).
    pub(super) group: Arc<str>,
    /// The hash of its text ([`text_hash`]), made when first needed (the
    /// journal, the write-back, a re-plan): a run without them never hashes.
    pub(super) hash: OnceLock<String>,
    /// `srun` arguments with `--launcher slurm`.
    pub(super) launcher_args: Vec<String>,
}

impl NodeConfig {
    /// The hash of the task's text, as the journal holds it.
    pub(super) fn hash(&self) -> &str {
        self.hash.get_or_init(|| text_hash(self.spec.text()))
    }
}

pub(super) struct Dispatcher {
    pub(super) run_id: String,
    pub(super) task_file: PathBuf,
    pub(super) parse_options: ParseOptions,
    /// The state folder (`None`: no journal, lock or logs).
    pub(super) state_dir: Option<PathBuf>,
    /// Check boxes in the task file.
    pub(super) write_back: bool,
    pub(super) options: RunOptions,
    pub(super) runner: Arc<dyn SubagentRunner>,
    pub(super) on_event: Option<EventCallback>,
    /// Streams from [`Executor::events`](super::Executor::events).
    pub(super) streams: Vec<EventSender>,
    /// The callback panicked with this message (handled at the next turn).
    pub(super) callback_panic: Option<String>,
    pub(super) user_cancel: CancellationToken,
    pub(super) hard_kill: CancellationToken,
    pub(super) handle_signals: bool,
    /// Shared with the task-file writer's parse (one copy of the tasks).
    pub(super) doc: Arc<Document>,
    pub(super) plan: Plan,
    pub(super) nodes: Vec<NodeConfig>,
    pub(super) runs: Vec<NodeRun>,
    pub(super) sched: Scheduler,
    pub(super) jobs: u32,
    pub(super) effective: u32,
    pub(super) rate_hits: u32,
    /// What the agents reported spending in this run (for the cap).
    pub(super) spent: Usage,
    pub(super) gate_until: Option<Instant>,
    /// When the account was last found rate limited: only successes of
    /// attempts launched after it raise the concurrency again.
    pub(super) last_limit: Option<Instant>,
    pub(super) stop: Option<Stop>,
    pub(super) seq: u64,
    pub(super) journal: Option<JournalWriter>,
    pub(super) journal_warned: bool,
    pub(super) _lock: Option<RunLock>,
    pub(super) attempts: FuturesUnordered<AttemptFuture>,
    /// Attempts done at their first poll, in `launch` (handled at the next
    /// turn of the loop, in the order they were launched).
    pub(super) done_at_once: Vec<(NodeIdx, AttemptResult)>,
    /// Where new attempts are first polled.
    pub(super) first_polls: FirstPolls,
    pub(super) timers: FuturesUnordered<TimerFuture>,
    pub(super) progress_tx: mpsc::UnboundedSender<ProgressItem>,
    pub(super) progress_rx: mpsc::UnboundedReceiver<ProgressItem>,
    /// The budget of queued output lines shared by every attempt's sink.
    pub(super) progress_lines: Arc<LineBudget>,
    pub(super) pending_writes: Vec<NodeIdx>,
    pub(super) started: Instant,
    pub(super) finished: bool,
    /// `run` was called (a dispatcher dropped before it emits nothing).
    pub(super) begun: bool,
    pub(super) unfinished_ids: Vec<String>,
    /// `(task id, process group)` of subagents a previous run left running.
    pub(super) orphans: Vec<(String, u32)>,
    /// The node of each task id, once made ([`Dispatcher::id_index`]).
    pub(super) id_to_node: HashMap<Arc<str>, NodeIdx>,
    pub(super) id_indexed: bool,
    /// The task file's stamp after our last parse or write (a different
    /// one means someone else changed it).
    pub(super) file_stamp: Option<store::taskfile::Stamp>,
    /// The task-file writer (`None` while a write has it, or before the
    /// first write when none could be opened).
    pub(super) taskfile: Option<store::taskfile::TaskFile>,
    /// The write in flight and the tasks it checks.
    pub(super) writing: Option<Writing>,
    pub(super) writing_batch: Vec<NodeIdx>,
    /// Tasks added to the file during the run, already reported.
    pub(super) added_seen: std::collections::HashSet<String>,
    /// Ids checked in the task file when last parsed.
    pub(super) checked_in_file: std::collections::HashSet<String>,
    /// Worktree isolation and the merge queue, when on.
    pub(super) isolation: Option<Arc<Isolation>>,
    /// `--commit` without isolation.
    pub(super) commit_only: Option<Arc<CommitOnly>>,
    /// The prompt template (for the specs of tasks that change or are
    /// added during the run).
    pub(super) prompt: PromptTemplate,
    /// Said once the run has started (uncommitted changes the tasks don't see).
    pub(super) setup_warnings: Vec<String>,
    /// What every attempt shares (made at the first launch).
    pub(super) attempt_env: Option<Arc<AttemptEnv>>,
}
/// The node of each task id of `nodes`.
pub(super) fn id_index(nodes: &[NodeConfig]) -> HashMap<Arc<str>, NodeIdx> {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.spec.shared_id().clone(), i))
        .collect()
}

impl Dispatcher {
    /// The node of each task id, made the first time it is asked for (a
    /// run whose runners report no progress, with no history and no
    /// changes to its file, never needs it).
    pub(super) fn id_index(&mut self) -> &HashMap<Arc<str>, NodeIdx> {
        if !self.id_indexed {
            self.id_to_node = id_index(&self.nodes);
            self.id_indexed = true;
        }
        &self.id_to_node
    }

    /// Whether anyone receives events (a callback or a stream): without,
    /// [`emit`](Self::emit) builds nothing.
    pub(super) fn listened(&self) -> bool {
        !self.streams.is_empty() || self.on_event.is_some()
    }

    pub(super) fn emit(&mut self, event: RunEvent) {
        let seq = self.seq;
        self.seq += 1;
        if !self.listened() {
            return;
        }
        let env = Envelope {
            v: SCHEMA_VERSION,
            seq,
            ts: crate::util::now_rfc3339(),
            run_id: self.run_id.clone(),
            event,
        };
        for stream in &self.streams {
            stream.send(&env);
        }
        // Never call the host's code while a panic unwinds through us: a
        // second panic there would abort the process.
        if std::thread::panicking() {
            return;
        }
        if let Some(cb) = self.on_event.as_mut()
            && let Err(p) = catch_unwind(AssertUnwindSafe(|| cb(&env)))
        {
            // A callback that panicked once (a closed stdout, a bug) is not
            // called again; the run is interrupted at the next turn.
            self.on_event = None;
            self.callback_panic = Some(panic_message(&*p));
        }
    }

    /// Interrupts the run if the event callback panicked.
    fn check_callback(&mut self) {
        if let Some(msg) = self.callback_panic.take() {
            self.emit(RunEvent::Warning {
                message: format!(
                    "the event callback panicked: {msg}; it is no longer called and the run is interrupted"
                ),
            });
            self.interrupt();
        }
    }

    /// Queues a journal record (written by the journal's own thread).
    pub(super) fn journal(&mut self, record: JournalRecord) {
        if let Some(j) = self.journal.as_ref() {
            j.append(record);
        }
        self.check_journal();
    }

    /// Reports the journal's first write error, once.
    fn check_journal(&mut self) {
        let e = match self.journal.as_ref().and_then(|j| j.take_error()) {
            Some(e) => e,
            None => return,
        };
        self.journal_error(e);
    }

    fn journal_error(&mut self, e: StoreError) {
        if !self.journal_warned {
            self.journal_warned = true;
            self.emit(RunEvent::Warning {
                message: format!("{e}; the run goes on without a journal"),
            });
        }
    }

    pub(super) async fn run(&mut self) {
        self.begun = true;
        self.started = Instant::now();
        self.emit(RunEvent::RunStarted {
            file: self.task_file.display().to_string(),
            total: self.plan.nodes.len(),
            waves: self.doc.waves.len(),
            jobs: self.jobs,
            runner: self.runner.name().to_string(),
            unfinished: self.unfinished_ids.clone(),
        });
        for message in std::mem::take(&mut self.setup_warnings) {
            self.emit(RunEvent::Warning { message });
        }
        // Subagents of a killed run still working on a task are stopped
        // before the task is launched again, so two never edit the same files.
        // All at once: the wait is one grace period, not one per group.
        let orphans = std::mem::take(&mut self.orphans);
        let grace = self.options.grace;
        let stopped =
            futures::future::join_all(orphans.iter().map(|(_, pgid)| stop_group(*pgid, grace)))
                .await;
        for ((id, pgid), gone) in orphans.into_iter().zip(stopped) {
            self.emit(RunEvent::Warning {
                message: if gone {
                    format!(
                        "task `{id}`: a subagent of a previous run (process group {pgid}) \
                         was still running; stopped it before running the task again"
                    )
                } else {
                    format!(
                        "task `{id}`: a subagent of a previous run (process group {pgid}) \
                         is still running and could not be stopped"
                    )
                },
            });
        }
        self.journal(JournalRecord::RunStart {
            file: self.task_file.display().to_string(),
            pid: std::process::id(),
            runner: self.runner.name().to_string(),
            total: self.plan.nodes.len(),
        });

        let mut signals = Signals::new(self.handle_signals);
        if let Some(msg) = signals.error.take() {
            self.emit(RunEvent::Warning { message: msg });
        }
        let far = Instant::now() + Duration::from_secs(86400 * 365 * 10);
        // A token cancelled before the run launches nothing.
        if self.user_cancel.is_cancelled() {
            self.interrupt();
        }
        self.check_callback();
        self.fill().await;
        let mut at_once_turns = 0;
        loop {
            if self.attempts.is_empty()
                && self.done_at_once.is_empty()
                && self.timers.is_empty()
                && self.writing.is_none()
                && self.pending_writes.is_empty()
                && (self.stop.is_some() || !self.sched.has_ready())
            {
                break;
            }
            if !self.done_at_once.is_empty()
                && at_once_turns < AT_ONCE_TURNS
                && !self.user_cancel.is_cancelled()
            {
                // Attempts done at their first poll, and those they let
                // start, are handled without a turn through the select
                // below (its futures cost more than these attempts), for
                // a bounded number of turns: signals and the caller's
                // cancellation are still looked at regularly.
                at_once_turns += 1;
                self.on_done_at_once();
                self.end_turn().await;
                continue;
            }
            at_once_turns = 0;
            let gate = self.gate_until;
            let interrupted = matches!(self.stop, Some(Stop::Interrupted));
            tokio::select! {
                biased;
                _ = signals.recv() => {
                    // The second Ctrl-C kills at once; the first one stops
                    // gracefully, even when fail-fast already stopped launching.
                    if interrupted {
                        self.hard_kill.cancel();
                    } else {
                        self.interrupt();
                    }
                }
                _ = self.user_cancel.cancelled(), if !matches!(self.stop, Some(Stop::Interrupted)) => {
                    self.interrupt();
                }
                Some(item) = self.progress_rx.recv() => self.on_progress(item),
                () = std::future::ready(()), if !self.done_at_once.is_empty() => {
                    self.on_done_at_once();
                }
                Some((i, res)) = self.attempts.next(), if !self.attempts.is_empty() => {
                    self.drain_progress();
                    self.on_attempt_done(i, joined(res));
                    // Completions that arrived together are written in one go.
                    while let Some(Some((i, res))) = self.attempts.next().now_or_never() {
                        self.drain_progress();
                        self.on_attempt_done(i, joined(res));
                    }
                }
                done = written(&mut self.writing), if self.writing.is_some() => {
                    self.on_written(done);
                }
                Some(i) = self.timers.next(), if !self.timers.is_empty() => {
                    self.sched.retry_due(i);
                }
                _ = sleep_until(gate.unwrap_or(far)), if gate.is_some() => {
                    self.gate_until = None;
                }
            }
            self.end_turn().await;
        }
        self.drain_progress();
        if let Some(iso) = self.isolation.clone() {
            // The last fast-forward of the user's checkout (or the command
            // that brings the work in), then the run ends.
            match tokio::task::spawn_blocking(move || iso.finish()).await {
                Ok(Some(message)) => self.emit(RunEvent::Warning { message }),
                Ok(None) => {}
                Err(e) => self.emit(RunEvent::Warning {
                    message: format!("landing the run's work: {e}"),
                }),
            }
        }
        self.finish().await;
    }

    /// What every turn of the loop ends with: the boxes to write, the
    /// journal's and the callback's state, and the next launches.
    async fn end_turn(&mut self) {
        self.flush_writes();
        self.check_journal();
        self.check_callback();
        self.fill().await;
    }

    /// Handles the attempts done at their first poll, in launch order.
    fn on_done_at_once(&mut self) {
        // Their progress, sent during the poll, comes first.
        self.drain_progress();
        // The vector is kept for the next ones.
        let mut done = std::mem::take(&mut self.done_at_once);
        for (i, res) in done.drain(..) {
            self.on_attempt_done(i, res);
        }
        let meanwhile = std::mem::replace(&mut self.done_at_once, done);
        self.done_at_once.extend(meanwhile);
    }

    pub(super) fn drain_progress(&mut self) {
        while let Ok(item) = self.progress_rx.try_recv() {
            self.on_progress(item);
        }
    }

    pub(super) fn on_progress(&mut self, item: ProgressItem) {
        if matches!(item.progress, Progress::Output { .. }) {
            self.progress_lines.release();
        }
        let Some(&i) = self.id_index().get(item.task_id.as_str()) else {
            return;
        };
        let mut info = None;
        let current = self.runs[i].attempt;
        if let Some(r) = self.runs[i].running.as_mut()
            && item.attempt == current
        {
            match &item.progress {
                Progress::Spawned { pid } => {
                    r.pid = Some(*pid);
                    info = Some((Some(*pid), None, None));
                }
                Progress::Session { id } => {
                    r.session = Some(id.clone());
                    info = Some((None, Some(id.clone()), None));
                }
                Progress::Adjusted { what } => info = Some((None, None, Some(what.clone()))),
                _ => {}
            }
        }
        if let Some((pid, session_id, adjusted)) = info {
            self.journal(JournalRecord::AttemptInfo {
                id: item.task_id.clone(),
                attempt: item.attempt,
                pid,
                session_id,
                adjusted,
            });
        }
        self.emit(RunEvent::TaskProgress {
            id: item.task_id,
            attempt: item.attempt,
            progress: item.progress,
        });
    }

    pub(super) fn gate_open(&self) -> bool {
        self.gate_until.is_none_or(|g| Instant::now() >= g)
    }

    pub(super) async fn fill(&mut self) {
        if self.stop.is_none()
            && self.gate_open()
            && (self.sched.running() as u32) < self.effective
            && self.sched.has_ready()
            && !self.refresh_checked().await
        {
            return;
        }
        while self.stop.is_none()
            && self.gate_open()
            && (self.sched.running() as u32) < self.effective
        {
            let Some(i) = self.sched.pick() else { break };
            if self.runs[i].attempts == 0 && self.checked_by_hand(i) {
                // Done by the user: dependants go on as after a success.
                self.sched.start(i);
                self.runs[i].checked_by_hand = true;
                self.skip(i, "checked by hand during the run".into());
                self.sched.succeed(i);
                continue;
            }
            self.launch(i);
        }
    }

    /// Re-reads which boxes are checked in the file, off the runtime, when
    /// someone else changed it since our last parse or write (one `stat`
    /// otherwise). The parse is the writer's, so the next write does not
    /// parse again.
    ///
    /// Returns whether tasks may start: not while the task file is missing.
    /// Then the write in flight decides (a save by rename that had moved
    /// the file away for a moment is over by then); with none in flight,
    /// the run stops launching.
    async fn refresh_checked(&mut self) -> bool {
        if !self.write_back {
            return true;
        }
        let stamp = store::taskfile::Stamp::at(&self.task_file);
        if stamp.is_none() {
            if self.writing.is_none() && self.stop.is_none() && !self.task_file.exists() {
                self.stop_run(Stop::Fatal(format!(
                    "{} was deleted or moved; no further task starts",
                    self.task_file.display()
                )));
            }
            return false;
        }
        if stamp == self.file_stamp {
            return true;
        }
        if self.writing.is_some() {
            // Changed by someone else while a write is in flight: the write
            // parses it; nothing starts before the run has followed the edit.
            return false;
        }
        let (file, path, options) = (
            self.taskfile.take(),
            self.task_file.clone(),
            self.parse_options.clone(),
        );
        let read = tokio::task::spawn_blocking(move || {
            let mut file = match file {
                Some(f) => f,
                None => store::taskfile::TaskFile::open(&path, &options).ok()?,
            };
            // A file that no longer parses is reported when boxes are written.
            let checked = file.refresh().ok().flatten();
            // Someone else changed the file: the run follows the new text.
            let doc = checked.as_ref().map(|_| file.shared_document());
            Some((file, checked, doc))
        })
        .await;
        if let Ok(Some((file, checked, doc))) = read {
            self.file_stamp = file.stamp().or(stamp);
            self.taskfile = Some(file);
            if let Some(checked) = checked {
                self.checked_in_file = checked.into_iter().collect();
            }
            if let Some(doc) = doc {
                self.replan(&doc);
            }
        } else {
            self.file_stamp = stamp;
        }
        true
    }

    /// Whether task `i`'s box was checked in the file at the last look.
    pub(super) fn checked_by_hand(&self, i: NodeIdx) -> bool {
        self.checked_in_file.contains(self.nodes[i].spec.id())
    }

    pub(super) fn launch(&mut self, i: NodeIdx) {
        self.sched.start(i);
        let now = Instant::now();
        let cfg = &self.nodes[i];
        let spec = cfg.spec.clone();
        let r = &mut self.runs[i];
        r.attempt += 1;
        r.attempts += 1;
        r.first_start.get_or_insert(now);
        let attempt = r.attempt;
        let sink = ProgressSink::for_run(
            spec.shared_id().clone(),
            attempt,
            self.progress_tx.clone(),
            self.progress_lines.clone(),
        );
        let mut rest = ContextRest {
            previous_error: r.last_error.as_deref().cloned(),
            ..ContextRest::default()
        };
        if self.options.launcher == Launcher::Slurm {
            let run = short_run_id(&self.run_id);
            rest.launcher = Some(SlurmJob::new(
                &run,
                spec.id(),
                attempt,
                cfg.launcher_args.clone(),
            ));
        }
        // The attempt removes a stale log of the same number before it runs.
        rest.log_path = self
            .state_dir
            .as_ref()
            .map(|d| store::log_path(d, spec.id(), attempt));
        if r.attempts == 1 {
            rest.resume_session = r.resume_session.clone();
        }
        let handle = AttemptHandle::for_run(
            sink,
            CancellationToken::new(),
            cfg.timeout.map(|t| now + t),
            self.options.grace,
            rest.launcher.is_none(),
        );
        r.running = Some(Box::new(Running {
            ctx: handle.clone(),
            log: rest.log_path.clone(),
            started: now,
            pid: None,
            session: None,
        }));
        let seed = ContextSeed {
            attempt,
            handle,
            rest: rest.boxed(),
        };
        // Records and events are built only for a journal and listeners.
        if self.journal.is_some() {
            let text_hash = self.nodes[i].hash().to_string();
            self.journal(JournalRecord::AttemptStart {
                id: spec.id().to_string(),
                attempt,
                text_hash,
            });
        }
        if self.listened() {
            let cfg = &self.nodes[i];
            let (wave, group) = (cfg.wave, cfg.group.to_string());
            self.emit(RunEvent::TaskStarted {
                id: spec.id().to_string(),
                title: spec.text().to_string(),
                attempt,
                wave,
                group,
            });
        }
        let env = self
            .attempt_env
            .get_or_insert_with(|| {
                Arc::new(AttemptEnv {
                    runner: self.runner.clone(),
                    hard: self.hard_kill.clone(),
                    isolation: self.isolation.clone().map(|iso| (iso, self.run_id.clone())),
                    commit: self.commit_only.clone().map(|c| (c, self.run_id.clone())),
                })
            })
            .clone();
        match self.first_polls.start(run_attempt(env, spec, seed)) {
            Started::Done(result) => self.done_at_once.push((i, result)),
            Started::Spawned(handle) => self.attempts.push(AttemptFuture::new(i, handle)),
        }
    }

    pub(super) fn on_attempt_done(&mut self, i: NodeIdx, result: AttemptResult) {
        let now = Instant::now();
        // The attempt let go of its spec: its prompt need not stay composed.
        if let Some(spec) = Arc::get_mut(&mut self.nodes[i].spec) {
            spec.forget_composed_prompt();
        }
        let r = &mut self.runs[i];
        let running = r.running.take();
        let dropped = running.as_ref().map_or(0, |x| x.ctx.progress.dropped());
        let log = running.as_ref().and_then(|x| x.log.clone());
        let (started, pid, session) = running
            .map(|x| (x.started, x.pid, x.session))
            .unwrap_or((now, None, None));
        let attempt = r.attempt;
        if let Ok((_, Some(landing))) = &result
            && let Some(commit) = &landing.commit
        {
            // Before the attempt's end: a crash between the two still finds
            // the landing on the next run, which then checks the box.
            self.journal(JournalRecord::Landed {
                id: self.nodes[i].spec.id().to_string(),
                attempt,
                commit: commit.clone(),
            });
        }
        let usage = match &result {
            Ok((out, _)) => out.usage,
            Err(e) => e.usage.as_deref().copied(),
        };
        if let Some(u) = &usage {
            self.spent.add(u);
        }
        if self.journal.is_some() {
            let (outcome, kind, message, session_id) = match &result {
                Ok((out, _)) => (
                    AttemptOutcome::Succeeded,
                    None,
                    None,
                    out.session_id.clone().or(session),
                ),
                Err(e) => (
                    if e.kind == ErrorKind::Cancelled {
                        AttemptOutcome::Interrupted
                    } else {
                        AttemptOutcome::Failed
                    },
                    Some(e.kind),
                    Some(e.message.clone()),
                    e.session_id.clone().or(session),
                ),
            };
            self.journal(JournalRecord::AttemptEnd {
                id: self.nodes[i].spec.id().to_string(),
                attempt,
                outcome,
                kind,
                message,
                duration_ms: millis(now - started),
                pid,
                session_id,
                usage,
                text_hash: self.nodes[i].hash().to_string(),
            });
        }
        self.check_cap();

        if dropped > 0 {
            let whole = log.map(|l| format!("; the whole output is in {}", l.display()));
            let id = self.nodes[i].spec.id();
            self.emit(RunEvent::Warning {
                message: format!(
                    "`{id}` attempt {attempt}: {dropped} output lines were not shown (the display fell behind){}",
                    whole.unwrap_or_default()
                ),
            });
        }
        match result {
            Ok((out, landing)) => {
                if let Some(landing) = landing {
                    self.runs[i].commit.clone_from(&landing.commit);
                    self.emit(RunEvent::TaskLanded {
                        id: self.nodes[i].spec.id().to_string(),
                        attempt,
                        commit: landing.commit.clone(),
                        branch: match (&self.isolation, &self.commit_only) {
                            (Some(iso), _) => iso.integration.clone(),
                            (None, Some(c)) => c.branch().to_string(),
                            (None, None) => String::new(),
                        },
                        checkout_updated: landing.checkout_updated,
                    });
                }
                let r = &mut self.runs[i];
                if let Some(u) = &out.usage {
                    r.usage.get_or_insert_with(Usage::default).add(u);
                }
                self.rate_hits = 0;
                if self.last_limit.is_none_or(|at| started >= at) {
                    self.effective = (self.effective + 1).min(self.jobs);
                }
                // Its slot and its dependants go on while its box is written:
                // their boxes are written in a later batch (writes are in
                // order), so a dependant's box is never checked before its
                // prerequisite's; the write's outcome does not change who
                // may start (a box that could not be checked lets them go
                // too, its work being done).
                self.sched.succeed(i);
                self.pending_writes.push(i);
            }
            Err(e) => self.on_failure(i, e),
        }
    }

    pub(super) fn on_failure(&mut self, i: NodeIdx, mut e: RunError) {
        let id = self.nodes[i].spec.id().to_string();
        let now = Instant::now();
        self.runs[i].had_failure = true;
        // A failed attempt's tokens were spent too: they count in the task's
        // and the run's totals.
        if let Some(u) = e.usage.as_deref() {
            self.runs[i].usage.get_or_insert_with(Usage::default).add(u);
        }
        let r = &self.runs[i];
        let budget = retry::Budget {
            retries: self.nodes[i].retries,
            spent: r.counted_failures,
            rate_wait: r.rate_wait,
            max_wait: self.options.max_wait,
            base: self.options.backoff_base,
            cap: self.options.backoff_cap,
            jitter: retry::jitter(),
        };
        let gate = retry::Gate {
            hits: self.rate_hits,
        };
        let stopping = match self.stop {
            None => retry::Stopping::No,
            Some(Stop::Interrupted) => retry::Stopping::Interrupted,
            Some(_) => retry::Stopping::NoNewWork,
        };
        match retry::decide(&e, &budget, &gate, stopping) {
            Decision::Interrupted => {
                self.end_task(i, Outcome::Interrupted, Some(e.kind), e.message.clone());
                self.emit(RunEvent::TaskFailed {
                    id,
                    attempt: self.runs[i].attempt,
                    kind: ErrorKind::Cancelled,
                    message: e.message.clone(),
                    duration_ms: self.task_ms(i),
                });
                self.runs[i].last_error = Some(Box::new(e));
                self.fail_node(i, "interrupted".into());
            }
            Decision::FailAndStop => {
                let message = e.message.clone();
                self.final_failure(i, e);
                self.stop_run(Stop::Fatal(format!("`{id}` hit a fatal error: {message}")));
            }
            Decision::Fail => self.final_failure(i, e),
            Decision::FailMaxWait => {
                // The rate limit counts as hit even though the task gives up.
                self.rate_hits += 1;
                e.message = format!(
                    "rate limited for longer than --max-wait ({}): {}",
                    crate::util::format_duration(self.options.max_wait),
                    e.message
                );
                self.final_failure(i, e);
            }
            Decision::RateLimited { pause } => {
                self.rate_hits += 1;
                self.runs[i].rate_wait += pause;
                self.last_limit = Some(now);
                let until = now + pause;
                let gate_was_open = self.gate_open();
                self.gate_until = Some(self.gate_until.map_or(until, |g| g.max(until)));
                if gate_was_open {
                    self.effective = (self.effective / 2).max(1);
                }
                self.emit(RunEvent::RateLimited {
                    pause_ms: millis(pause),
                    concurrency: self.effective,
                    id: id.clone(),
                });
                self.schedule_retry(i, e, pause, false);
            }
            Decision::Retry { delay } => {
                self.runs[i].counted_failures += 1;
                self.schedule_retry(i, e, delay, true);
            }
        }
    }

    pub(super) fn schedule_retry(
        &mut self,
        i: NodeIdx,
        e: RunError,
        delay: Duration,
        counts: bool,
    ) {
        self.emit(RunEvent::TaskRetrying {
            id: self.nodes[i].spec.id().to_string(),
            attempt: self.runs[i].attempt,
            kind: e.kind,
            message: e.message.clone(),
            delay_ms: millis(delay),
            counts,
        });
        self.runs[i].last_error = Some(Box::new(e));
        self.sched.backoff(i);
        let at = Instant::now() + delay;
        self.timers.push(Box::pin(async move {
            sleep_until(at).await;
            i
        }));
    }

    pub(super) fn final_failure(&mut self, i: NodeIdx, e: RunError) {
        let id = self.nodes[i].spec.id().to_string();
        self.end_task(i, Outcome::Failed, Some(e.kind), e.message.clone());
        self.emit(RunEvent::TaskFailed {
            id: id.clone(),
            attempt: self.runs[i].attempt,
            kind: e.kind,
            message: e.message.clone(),
            duration_ms: self.task_ms(i),
        });
        self.runs[i].last_error = Some(Box::new(e));
        self.fail_node(i, format!("dependency `{id}` failed"));
        if self.options.fail_fast && self.stop.is_none() {
            self.stop_run(Stop::FailFast(id));
        }
    }

    /// Ends a node that did not succeed and skips everything waiting for it.
    pub(super) fn fail_node(&mut self, i: NodeIdx, reason: String) {
        for d in self.sched.fail(i) {
            self.skip(d, reason.clone());
        }
    }

    pub(super) fn skip(&mut self, i: NodeIdx, reason: String) {
        self.end_task(i, Outcome::Skipped, None, reason.clone());
        self.journal(JournalRecord::TaskSkipped {
            id: self.nodes[i].spec.id().to_string(),
            reason: reason.clone(),
        });
        self.emit(RunEvent::TaskSkipped {
            id: self.nodes[i].spec.id().to_string(),
            reason,
        });
    }

    pub(super) fn end_task(
        &mut self,
        i: NodeIdx,
        outcome: Outcome,
        _kind: Option<ErrorKind>,
        message: String,
    ) {
        let r = &mut self.runs[i];
        r.outcome = Some(outcome);
        r.message = Some(message);
        r.end = Some(Instant::now());
    }

    pub(super) fn task_ms(&self, i: NodeIdx) -> u64 {
        let r = &self.runs[i];
        match (r.first_start, r.end) {
            (Some(s), Some(e)) => millis(e - s),
            (Some(s), None) => millis(Instant::now() - s),
            _ => 0,
        }
    }

    pub(super) fn interrupt(&mut self) {
        if matches!(self.stop, Some(Stop::Interrupted)) {
            return;
        }
        self.stop_run(Stop::Interrupted);
    }

    /// Stops launching once what the agents reported reaches a cap; stops
    /// running tasks too with `--at-cap stop`.
    fn check_cap(&mut self) {
        if self.stop.is_some() {
            return;
        }
        let tokens = self.spent.input_tokens + self.spent.output_tokens;
        let cost = self.spent.cost_usd.unwrap_or(0.0);
        let what = match (self.options.max_cost_usd, self.options.max_tokens) {
            (Some(max), _) if cost >= max => {
                format!("spending cap reached: ${cost:.2} of ${max:.2} spent")
            }
            (_, Some(max)) if tokens >= max => {
                format!("token cap reached: {tokens} of {max} tokens used")
            }
            _ => return,
        };
        let running = self.runs.iter().filter(|r| r.running.is_some()).count();
        let message = match (self.options.at_cap, running) {
            (_, 0) => format!("{what}; no new task is launched"),
            (super::options::AtCap::Finish, n) => {
                format!("{what}; no new task is launched, {n} running finish")
            }
            (super::options::AtCap::Stop, n) => {
                format!("{what}; no new task is launched, {n} running are stopped")
            }
        };
        self.emit(RunEvent::Warning { message });
        self.stop_run(Stop::Cap(what));
    }

    /// Stops launching; cancels running attempts unless only fail-fast (or
    /// the cap with `--at-cap finish`); ends tasks waiting for a retry.
    pub(super) fn stop_run(&mut self, stop: Stop) {
        let cancel_running = match stop {
            Stop::FailFast(_) => false,
            Stop::Cap(_) => self.options.at_cap == super::options::AtCap::Stop,
            _ => true,
        };
        self.stop = Some(stop);
        if cancel_running {
            for r in &self.runs {
                if let Some(x) = &r.running {
                    x.ctx.cancel_with(CancelReason::Interrupted);
                }
            }
        }
        self.timers.clear();
        for i in 0..self.runs.len() {
            if self.sched.state(i) == NodeState::Backoff {
                let e = self.runs[i]
                    .last_error
                    .as_deref()
                    .cloned()
                    .unwrap_or_else(|| RunError::new(ErrorKind::Failed, "stopped"));
                if matches!(self.stop, Some(Stop::Interrupted)) {
                    let id = self.nodes[i].spec.id().to_string();
                    self.end_task(
                        i,
                        Outcome::Interrupted,
                        Some(ErrorKind::Cancelled),
                        "interrupted before its retry".into(),
                    );
                    self.emit(RunEvent::TaskFailed {
                        id,
                        attempt: self.runs[i].attempt,
                        kind: ErrorKind::Cancelled,
                        message: "interrupted before its retry".into(),
                        duration_ms: self.task_ms(i),
                    });
                    self.fail_node(i, "interrupted".into());
                } else {
                    self.final_failure(i, e);
                }
            }
        }
    }

    pub(super) async fn finish(&mut self) {
        let reason = match &self.stop {
            Some(Stop::Interrupted) => super::report::INTERRUPTED_SKIP.to_string(),
            Some(Stop::FailFast(id)) => format!("--fail-fast: `{id}` failed"),
            Some(Stop::Fatal(msg)) => format!("run stopped: {msg}"),
            Some(Stop::Cap(what)) => format!("not run: {what}"),
            None => "not run".to_string(),
        };
        for i in self.sched.unfinished() {
            self.sched.finish(i);
            self.skip(i, reason.clone());
        }
        self.recheck_at_end().await;
        let summary = self.summary();
        self.journal(JournalRecord::RunEnd {
            summary: summary.clone(),
        });
        if let Some(j) = self.journal.take() {
            // Everything queued is written and synced before the run returns.
            if let Ok(Some(e)) = tokio::task::spawn_blocking(move || j.close()).await {
                self.journal_error(e);
            }
        }
        self.finished = true;
        self.emit(RunEvent::RunFinished { summary });
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        if self.finished || !self.begun {
            return;
        }
        // The run future was dropped mid-run: attempts are aborted with the
        // FuturesUnordered (killing their process groups); still end every
        // started task and the run with a terminal event.
        self.hard_kill.cancel();
        for i in 0..self.runs.len() {
            if self.runs[i].running.take().is_some() {
                let id = self.nodes[i].spec.id().to_string();
                self.emit(RunEvent::TaskFailed {
                    id,
                    attempt: self.runs[i].attempt,
                    kind: ErrorKind::Cancelled,
                    message: "the run was abandoned".into(),
                    duration_ms: self.task_ms(i),
                });
            }
        }
        self.stop = Some(Stop::Interrupted);
        let summary = self.summary();
        self.emit(RunEvent::RunFinished { summary });
    }
}
