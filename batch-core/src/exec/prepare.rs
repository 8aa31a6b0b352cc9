//! Before anything runs: read, parse and plan the task file, check that it can
//! be written, take the lock, open the journal, build each task's spec, and
//! read what previous runs left (unfinished attempts, orphaned subagents,
//! sessions to resume).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::dispatcher::{Dispatcher, NodeConfig, NodeRun};
use super::executor::{Executor, Source, StateDir};
use super::isolate::{CommitOnly, Isolate, Isolation, RecoverCandidate, short_run_id};
use super::options::{DEFAULT_JOBS, Launcher};
use super::schedule::Scheduler;
use super::spec::{Resolved, SpecPlace};
use crate::doc::{Document, ParseOptions};
use crate::error::{ErrorKind, RunError, RunSetupError};
use crate::plan::{NodeIdx, Plan, PlanOptions};
use crate::runner::LineBudget;
use crate::runner::process::group::{group_alive, group_runs_task};
use crate::runner::slurm;
use crate::store::journal::{AttemptOutcome, Journal, JournalSummary, JournalWriter};
use crate::store::lock::RunLock;
use crate::store::{self, taskfile};

/// How many output lines may wait for the dispatcher; more are dropped
/// (counted). Other progress items are never dropped.
const PROGRESS_LINES: usize = 1024;

impl Dispatcher {
    pub(super) fn prepare(ex: Executor) -> Result<Dispatcher, RunSetupError> {
        let mut ex = ex;
        let task_file = ex.task_file.clone().unwrap_or_default();
        let mut parse_options = ParseOptions::with_path(&task_file);
        parse_options.dialect = ex.options.dialect;
        parse_options.wave_level = ex.options.wave_level;
        let stamp = if ex.write_back {
            store::taskfile::Stamp::at(&task_file)
        } else {
            None
        };
        // The writer refuses anything but a regular file (`/dev/null`, a
        // FIFO) before any state is created beside it.
        let taskfile = if ex.write_back {
            match taskfile::TaskFile::open(&task_file, &parse_options) {
                Ok(f) => Some(f),
                Err(crate::error::StoreError::Unparsable { .. }) => {
                    // The parser's own diagnostics (file, line, column).
                    Document::read(&task_file, &parse_options)?;
                    return Err(crate::error::StoreError::Unparsable {
                        path: task_file.clone(),
                    }
                    .into());
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        let source = std::mem::replace(&mut ex.source, Source::File(PathBuf::new()));
        let (doc, given_plan) = match source {
            // The writer's parse is the run's: the file is read once.
            Source::File(_) if taskfile.is_some() => (
                taskfile
                    .as_ref()
                    .map(|f| f.shared_document())
                    .expect("checked above"),
                None,
            ),
            Source::File(path) => (Arc::new(Document::read(&path, &parse_options)?), None),
            Source::Document(doc, plan) => (Arc::new(*doc), plan),
        };
        let checked_in_file = doc
            .tasks
            .iter()
            .filter(|t| t.checked)
            .map(|t| t.id.clone())
            .collect();
        let plan = match given_plan {
            Some(plan) => *plan,
            None => {
                let plan_options = PlanOptions {
                    cross_wave: ex.options.cross_wave,
                    only: ex.options.only.clone(),
                    include_optional: ex.options.include_optional,
                };
                Plan::build(&doc, &plan_options)?
            }
        };

        let state_dir = match &ex.state {
            StateDir::BesideFile => Some(store::state_dir(&task_file)),
            StateDir::At(dir) => Some(dir.clone()),
            StateDir::Off => None,
        };
        let lock = match &state_dir {
            Some(dir) => Some(RunLock::acquire(dir, &task_file)?),
            None => None,
        };
        if let Some(dir) = &state_dir {
            store::make_state_dir(dir)?;
            super::trust::check(
                &task_file,
                dir,
                &super::trust::hinted(&doc, &plan),
                ex.options.trust_verify,
            )?;
        }
        let run_id = uuid::Uuid::new_v4().to_string();
        let (history, journal) = match &state_dir {
            Some(dir) => (
                JournalSummary::load(dir).unwrap_or_default(),
                Some(JournalWriter::spawn(Journal::open(dir, run_id.clone())?)?),
            ),
            None => (JournalSummary::default(), None),
        };

        if ex.options.launcher == Launcher::Slurm {
            slurm::refuse_launcher_hints(&doc, &task_file)?;
            // Jobs of runs that never ended (killed) must not hold the
            // cluster's slots, nor edit files beside this run's agents.
            for r in history.runs.iter().filter(|r| r.ended.is_none()) {
                let run8 = short_run_id(&r.run_id);
                if let Ok(jobs) = slurm::jobs_of_run(&slurm::run_prefix(&run8)) {
                    for (name, _) in jobs {
                        let _ = slurm::cancel(&name, None);
                    }
                }
            }
        }
        let workdir = std::path::absolute(
            ex.options
                .workdir
                .clone()
                .or_else(|| task_file.parent().map(Path::to_path_buf))
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or_else(|| PathBuf::from(".")),
        )
        .unwrap_or_else(|_| PathBuf::from("."));
        let mut setup_warnings = Vec::new();
        // A document with no file behind it has nothing to land beside: no
        // isolation unless asked for outright.
        let isolate = match (ex.options.isolate, &ex.task_file) {
            (Isolate::Auto, None) => Isolate::None,
            (mode, _) => mode,
        };
        let isolation = match Isolation::setup(
            isolate,
            &workdir,
            &std::path::absolute(&task_file).unwrap_or_else(|_| task_file.clone()),
            &{
                // Without a state folder, git still must not see one.
                let dir = state_dir
                    .clone()
                    .unwrap_or_else(|| store::state_dir(&task_file));
                std::path::absolute(&dir).unwrap_or(dir)
            },
            &run_id,
            ex.options.worktree_dir.as_deref(),
            ex.options.into.as_deref(),
        )? {
            Some((iso, notes)) => {
                if !notes.dirty.is_empty() {
                    let shown: Vec<&str> = notes.dirty.iter().take(5).map(String::as_str).collect();
                    setup_warnings.push(format!(
                        "{} uncommitted change{} ({}{}) stay{} as {}: each task starts from the last commit in a worktree of its own and does not see {}; your checkout is only fast-forwarded where that touches none of them",
                        notes.dirty.len(),
                        if notes.dirty.len() == 1 { "" } else { "s" },
                        shown.join(", "),
                        if notes.dirty.len() > 5 { ", …" } else { "" },
                        if notes.dirty.len() == 1 { "s" } else { "" },
                        if notes.dirty.len() == 1 { "it is" } else { "they are" },
                        if notes.dirty.len() == 1 { "it" } else { "them" },
                    ));
                }
                Some(Arc::new(iso))
            }
            None => None,
        };
        if let Some(iso) = &isolation {
            // What a killed run left of the open tasks' changes: landed (check
            // the box), committed (land it), or nothing (run again).
            let open: std::collections::HashSet<&str> = plan
                .nodes
                .iter()
                .map(|n| doc.tasks[n.task].id.as_str())
                .collect();
            let ended: std::collections::HashSet<&str> = history
                .runs
                .iter()
                .filter(|r| r.ended.is_some())
                .map(|r| r.run_id.as_str())
                .collect();
            let mut candidates: Vec<RecoverCandidate> = history
                .unfinished
                .iter()
                .filter(|u| open.contains(u.id.as_str()))
                .map(|u| RecoverCandidate {
                    id: u.id.clone(),
                    run_id: u.run_id.clone(),
                    attempt: Some(u.attempt),
                })
                .collect();
            for (id, h) in &history.tasks {
                if let Some(run) = &h.landed_run
                    && open.contains(id.as_str())
                    && !ended.contains(run.as_str())
                    && !candidates.iter().any(|c| &c.id == id)
                {
                    candidates.push(RecoverCandidate {
                        id: id.clone(),
                        run_id: run.clone(),
                        attempt: None,
                    });
                }
            }
            iso.recover(&candidates);
        }
        let mut place = SpecPlace::new(&task_file);
        place.workdir = ex.options.workdir.as_deref();
        place.verify = ex.options.verify.as_deref();
        let mut place = Resolved::new(&place, &doc, ex.prompt.clone());
        // A group's title is shared by its tasks.
        let groups: Vec<Arc<str>> = doc
            .groups
            .iter()
            .map(|g| Arc::from(g.title.as_str()))
            .collect();
        let no_group: Arc<str> = Arc::from("");
        let mut nodes = Vec::with_capacity(plan.nodes.len());
        for node in &plan.nodes {
            let task = &doc.tasks[node.task];
            let spec = place.spec(&doc, task);
            nodes.push(NodeConfig {
                hash: std::sync::OnceLock::new(),
                spec: Arc::new(spec),
                retries: task.hints.retries.unwrap_or(ex.options.retries),
                timeout: task.hints.timeout.or(ex.options.timeout),
                wave: node.wave,
                group: groups.get(node.group).unwrap_or(&no_group).clone(),
                launcher_args: match ex.options.launcher {
                    Launcher::Slurm => launcher_args(&doc, task, &ex.options.launcher_args),
                    _ => Vec::new(),
                },
            });
        }

        // Which node runs a task: needed only for what earlier runs left, the
        // runners' progress and changes to the file, so made when first
        // needed (`Dispatcher::id_index`).
        let id_to_node: HashMap<Arc<str>, NodeIdx> =
            if history.unfinished.is_empty() && history.tasks.is_empty() {
                HashMap::new()
            } else {
                super::dispatcher::id_index(&nodes)
            };
        let mut runs: Vec<NodeRun> = plan.nodes.iter().map(|_| NodeRun::default()).collect();
        let mut unfinished_ids = Vec::new();
        let mut orphans = Vec::new();
        for u in &history.unfinished {
            let Some(&i) = id_to_node.get(u.id.as_str()) else {
                continue;
            };
            unfinished_ids.push(u.id.clone());
            let r = &mut runs[i];
            r.attempt = u.attempt;
            r.last_error = Some(Box::new(RunError::new(
                ErrorKind::Cancelled,
                format!("the previous run stopped during attempt {}", u.attempt),
            )));
            // A session is only continued for the same task text.
            let same_text = history
                .tasks
                .get(&u.id)
                .and_then(|h| h.text_hash.as_deref())
                .is_none_or(|h| h == nodes[i].hash());
            if ex.options.resume_sessions && same_text {
                r.resume_session = u.session_id.clone();
            }
            if let Some(pid) = u.pid
                && group_alive(pid)
                && group_runs_task(pid, &u.id)
            {
                orphans.push((u.id.clone(), pid));
            }
        }
        // A task a previous run interrupted (Ctrl-C, a fatal stop) ended its
        // attempt, so it is not in `unfinished`; it is left unfinished all the
        // same, and the run start names it.
        for n in &nodes {
            let id = n.spec.id();
            if history.tasks.get(id).is_some_and(|h| {
                h.last_outcome == Some(AttemptOutcome::Interrupted) && !h.unfinished
            }) && !unfinished_ids.iter().any(|u| u == id)
            {
                unfinished_ids.push(id.to_string());
            }
        }
        if ex.options.resume_sessions {
            for (id, h) in &history.tasks {
                if let Some(&i) = id_to_node.get(id.as_str())
                    && runs[i].resume_session.is_none()
                    && h.last_outcome != Some(AttemptOutcome::Succeeded)
                    && h.text_hash.as_deref().is_none_or(|t| t == nodes[i].hash())
                {
                    runs[i].resume_session = h.last_session.clone();
                }
            }
        }

        let jobs = ex
            .options
            .jobs
            .or(doc.hints.jobs)
            .unwrap_or(DEFAULT_JOBS)
            .max(1);
        let commit_only = match (&isolation, ex.options.commit) {
            (None, true) => Some(Arc::new(CommitOnly::setup(
                &workdir,
                &std::path::absolute(&task_file).unwrap_or_else(|_| task_file.clone()),
                &{
                    let dir = state_dir
                        .clone()
                        .unwrap_or_else(|| store::state_dir(&task_file));
                    std::path::absolute(&dir).unwrap_or(dir)
                },
                jobs,
            )?)),
            _ => None,
        };
        let sched = Scheduler::new(&plan);
        let (progress_tx, progress_rx) = mpsc::unbounded_channel();
        Ok(Dispatcher {
            run_id,
            task_file,
            parse_options,
            state_dir,
            write_back: ex.write_back,
            runner: ex.runner,
            on_event: ex.on_event,
            callback_panic: None,
            streams: ex.streams,
            user_cancel: ex.cancel,
            hard_kill: CancellationToken::new(),
            handle_signals: ex.handle_signals,
            options: ex.options,
            doc,
            plan,
            nodes,
            runs,
            sched,
            jobs,
            effective: jobs,
            rate_hits: 0,
            spent: crate::usage::Usage::default(),
            gate_until: None,
            last_limit: None,
            stop: None,
            seq: 0,
            journal,
            journal_warned: false,
            _lock: lock,
            attempts: FuturesUnordered::new(),
            done_at_once: Vec::new(),
            first_polls: Default::default(),
            timers: FuturesUnordered::new(),
            progress_tx,
            progress_rx,
            progress_lines: LineBudget::new(PROGRESS_LINES),
            pending_writes: Vec::new(),
            started: Instant::now(),
            finished: false,
            begun: false,
            unfinished_ids,
            orphans,
            id_indexed: !id_to_node.is_empty(),
            id_to_node,
            file_stamp: stamp,
            taskfile,
            writing: None,
            writing_batch: Vec::new(),
            checked_in_file,
            added_seen: std::collections::HashSet::new(),
            isolation,
            commit_only,
            prompt: ex.prompt,
            setup_warnings,
            attempt_env: None,
        })
    }
}

/// The first `launcher-arg:` hint of `task` (its own or its sections') that
/// is refused, with why.
pub(super) fn refused_task_launcher_hint(
    doc: &Document,
    task: &crate::doc::Task,
) -> Option<(String, String)> {
    launcher_args(doc, task, &[])
        .into_iter()
        .find_map(|a| slurm::refused_launcher_hint(&a).map(|why| (a, why)))
}

/// A task's `srun` arguments: the run's, then its sections' from the
/// outermost in, then its own (`launcher-arg:` hints; later ones win in srun).
pub(super) fn launcher_args(
    doc: &Document,
    task: &crate::doc::Task,
    run: &[String],
) -> Vec<String> {
    let mut args = run.to_vec();
    args.extend(doc.hints.launcher_args.iter().cloned());
    let mut chain = Vec::new();
    let mut sec = task.section;
    while let Some(s) = sec {
        let Some(section) = doc.sections.get(s) else {
            break;
        };
        chain.push(section);
        sec = section.parent.filter(|&p| p != s);
        if chain.len() > 64 {
            break;
        }
    }
    for section in chain.into_iter().rev() {
        args.extend(section.hints.launcher_args.iter().cloned());
    }
    args.extend(task.hints.launcher_args.iter().cloned());
    args
}
