//! The executor with a runner that does nothing, for profiling its own cost
//! per task (the `executor` bench's `mdbatch_noop`, once, outside criterion):
//!
//! ```sh
//! cargo build --release -p batch-core --example noop_run
//! valgrind --tool=callgrind target/release/examples/noop_run 10000
//! valgrind --tool=callgrind target/release/examples/noop_run 10000 tokio
//! ```
//!
//! With `tokio` after the number it spawns and joins that many no-op
//! futures instead (the bench's `tokio_spawn_join`): what no executor beats.
//! With `plan` it stops after parsing and planning: the executor's own
//! instructions per task are (run − plan) / tasks.

use std::sync::Arc;

use batch_core::{
    Document, ExecutorBuilder, ParseOptions, Plan, PlanOptions, RunContext, RunError, RunOptions,
    StateDir, SubagentRunner, TaskOutput, TaskSpec,
};

struct Noop;

#[batch_core::async_trait]
impl SubagentRunner for Noop {
    async fn run(&self, _task: &TaskSpec, _ctx: RunContext) -> Result<TaskOutput, RunError> {
        Ok(TaskOutput::default())
    }
}

fn main() {
    let tasks: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    if std::env::args().nth(2).as_deref() == Some("tokio") {
        let started = std::time::Instant::now();
        let n = rt.block_on(async {
            let handles: Vec<_> = (0..tasks)
                .map(|i| tokio::spawn(async move { std::hint::black_box(i) }))
                .collect();
            let mut n = 0;
            for h in handles {
                n += h.await.expect("joins");
            }
            n
        });
        assert_eq!(n, tasks * (tasks.max(1) - 1) / 2);
        let took = started.elapsed();
        println!(
            "{tasks} tokio tasks in {took:?}: {:.2} µs per task",
            took.as_secs_f64() * 1e6 / tasks as f64
        );
        return;
    }
    let mut text = String::from("# Many\n\n");
    for i in 0..tasks {
        text.push_str(&format!("- [ ] <!-- id: t{i} --> do item {i}\n"));
    }
    let doc = Document::parse(&text, &ParseOptions::default()).expect("parses");
    let plan = Plan::build(&doc, &PlanOptions::default()).expect("plans");
    if std::env::args().nth(2).as_deref() == Some("plan") {
        println!("{} nodes planned", plan.nodes.len());
        return;
    }
    let started = std::time::Instant::now();
    let ex = ExecutorBuilder::from_plan(doc, plan)
        .runner(Arc::new(Noop))
        .options(RunOptions::new().with_jobs(8))
        .state_dir(StateDir::Off)
        .write_back(false)
        .build()
        .expect("builds");
    let report = rt.block_on(ex.run()).expect("runs");
    assert_eq!(report.summary.succeeded, tasks);
    let took = started.elapsed();
    println!(
        "{tasks} tasks in {took:?}: {:.2} µs per task",
        took.as_secs_f64() * 1e6 / tasks as f64
    );
}
