//! The executor's own cost per task, with a runner that does nothing, beside
//! spawning and joining the same no-op futures on tokio directly; and the
//! cost of checking boxes (write-back and journal) against none.
//!
//! - `executor_{10k,100k}/tokio_spawn_join`: N no-op futures spawned on a
//!   two-thread runtime and joined — what no executor can beat;
//! - `executor_{10k,100k}/mdbatch_noop`: N tasks of one wave through the
//!   executor (`-j 8`, no state folder, no write-back), the document and
//!   plan cloned outside the timing. Target: within 3× of the line above,
//!   and the time per task the same at both sizes (no quadratic step);
//! - `writeback_10k/none` vs `writeback_10k/boxes_and_journal`: 10,000
//!   no-op tasks from a file, without and with the journal and the boxes
//!   checked (group commit: every batch of completions is one journal
//!   `fdatasync` and one task-file `fdatasync`);
//! - `writeback_10k/taskfile_one_by_one`: 10,000 boxes checked one write at
//!   a time into a 10,000-task file: the per-write cost with no re-parse.
//!
//! Run: `cargo bench -p batch-core --bench executor`.

use std::hint::black_box;
use std::sync::Arc;

use batch_core::store::taskfile::{TaskFile, Want};
use batch_core::{
    Document, ExecutorBuilder, ParseOptions, Plan, PlanOptions, RunContext, RunError, RunOptions,
    StateDir, SubagentRunner, TaskOutput, TaskSpec,
};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

struct Noop;

#[async_trait::async_trait]
impl SubagentRunner for Noop {
    async fn run(&self, _task: &TaskSpec, _ctx: RunContext) -> Result<TaskOutput, RunError> {
        Ok(TaskOutput::default())
    }
}

fn flat(tasks: usize) -> String {
    let mut s = String::with_capacity(tasks * 40);
    s.push_str("# Many\n\n");
    for i in 0..tasks {
        s.push_str("- [ ] <!-- id: t");
        s.push_str(&i.to_string());
        s.push_str(" --> do item ");
        s.push_str(&i.to_string());
        s.push('\n');
    }
    s
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn options() -> RunOptions {
    let mut o = RunOptions::default();
    o.jobs = Some(8);
    o
}

fn executor(c: &mut Criterion) {
    let rt = runtime();
    for tasks in [10_000usize, 100_000] {
        let doc = Document::parse(&flat(tasks), &ParseOptions::default()).expect("parses");
        let plan = Plan::build(&doc, &PlanOptions::default()).expect("plans");
        let mut g = c.benchmark_group(format!("executor_{}k", tasks / 1000));
        g.throughput(Throughput::Elements(tasks as u64));
        g.sample_size(10);
        g.bench_function(BenchmarkId::new("tokio_spawn_join", tasks), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let handles: Vec<_> = (0..tasks)
                        .map(|i| tokio::spawn(async move { black_box(i) }))
                        .collect();
                    let mut n = 0;
                    for h in handles {
                        n += h.await.expect("joins");
                    }
                    n
                })
            })
        });
        g.bench_function(BenchmarkId::new("mdbatch_noop", tasks), |b| {
            b.iter_batched(
                || (doc.clone(), plan.clone()),
                |(d, p)| {
                    let ex = ExecutorBuilder::from_plan(d, p)
                        .runner(Arc::new(Noop))
                        .options(options())
                        .state_dir(StateDir::Off)
                        .write_back(false)
                        .build()
                        .expect("builds");
                    let report = rt.block_on(ex.run()).expect("runs");
                    assert_eq!(report.summary.succeeded, tasks);
                },
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
}

fn writeback(c: &mut Criterion) {
    let rt = runtime();
    let tasks = 10_000usize;
    let text = flat(tasks);
    let mut g = c.benchmark_group("writeback_10k");
    g.throughput(Throughput::Elements(tasks as u64));
    g.sample_size(10);
    for (name, on) in [("none", false), ("boxes_and_journal", true)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().expect("a temp dir");
                    let path = dir.path().join("task.md");
                    std::fs::write(&path, &text).expect("writes");
                    (dir, path)
                },
                |(dir, path)| {
                    let ex = ExecutorBuilder::new(&path)
                        .runner(Arc::new(Noop))
                        .options(options())
                        .state_dir(if on {
                            StateDir::BesideFile
                        } else {
                            StateDir::Off
                        })
                        .write_back(on)
                        .build()
                        .expect("builds");
                    let report = rt.block_on(ex.run()).expect("runs");
                    assert_eq!(report.summary.succeeded, tasks);
                    drop(dir);
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.bench_function("taskfile_one_by_one", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("a temp dir");
                let path = dir.path().join("task.md");
                std::fs::write(&path, &text).expect("writes");
                (dir, path)
            },
            |(dir, path)| {
                let mut f = TaskFile::open(&path, &ParseOptions::with_path(&path)).expect("opens");
                for i in 0..tasks {
                    let out = f.check(&[Want::id(format!("t{i}"))]).expect("writes");
                    assert!(!out.reparsed);
                }
                drop(dir);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, executor, writeback);
criterion_main!(benches);
