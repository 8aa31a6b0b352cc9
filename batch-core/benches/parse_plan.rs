//! Parse + plan of generated task files, beside a bare pulldown-cmark pass
//! over the same text in the same run.
//!
//! The files have 10,000 and 100,000 tasks in waves of modules (groups), some
//! checked, some with details, some with `id:` / `after:` hints. "bare" is
//! what no task-file tool can beat: pulldown-cmark with the parser's options,
//! every event of the offset iterator consumed. The interesting figure is the
//! ratio `parse_plan / bare` at each size.
//!
//! The `pathological` group times inputs that once made the parser
//! quadratic (100,000 comments on one line, 200,000 nested list markers,
//! 100,000 nested blockquotes, …): each must parse in time linear in its
//! size. These were a timed unit test; speed targets live here.
//!
//! Run: `cargo bench -p batch-core --bench parse_plan`.

use std::fmt::Write as _;
use std::hint::black_box;

use batch_core::{Document, ParseOptions, Plan, PlanOptions};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pulldown_cmark::{Options, Parser};

/// A task file with `tasks` tasks: `waves` waves of 5 modules each.
fn generate(tasks: usize) -> String {
    let modules = 5;
    let waves = (tasks / 500).max(1);
    let per_group = tasks / (waves * modules);
    let mut s = String::with_capacity(tasks * 90);
    s.push_str(
        "# Generated batch\n\nContext for every subagent: keep changes small, run the tests.\n\n",
    );
    let mut n = 0usize;
    for w in 0..waves {
        let _ = writeln!(s, "## Wave {}: step {w}\n", w + 1);
        for m in 0..modules {
            let _ = writeln!(s, "### Module m{m}\n");
            if m == 4 {
                s.push_str("<!-- parallel: 4 -->\n\n");
            }
            for i in 0..per_group {
                let mark = if n.is_multiple_of(7) { "x" } else { " " };
                let _ = write!(
                    s,
                    "- [{mark}] Implement item {i} of module m{m} in `src/m{m}/w{w}_{i}.rs`"
                );
                if n.is_multiple_of(50) {
                    let _ = write!(s, " <!-- id: t{n} -->");
                } else if n % 50 == 25 && n > 50 {
                    let _ = write!(s, " <!-- after: t{} -->", n - 75);
                }
                s.push('\n');
                if n % 10 == 3 {
                    s.push_str("  - keep the public API unchanged\n  - add a unit test\n");
                }
                n += 1;
            }
            s.push('\n');
        }
    }
    s
}

fn bare(text: &str) -> usize {
    let opts = Options::ENABLE_TASKLISTS
        | Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES;
    Parser::new_ext(text, opts)
        .into_offset_iter()
        .map(|(e, r)| black_box((e, r)).1.len())
        .sum()
}

fn parse_plan(text: &str) -> usize {
    let doc = Document::parse(text, &ParseOptions::default()).expect("the generated file parses");
    let plan = Plan::build(&doc, &PlanOptions::default()).expect("the generated file plans");
    plan.nodes.len()
}

fn bench(c: &mut Criterion) {
    for tasks in [10_000usize, 100_000] {
        let text = generate(tasks);
        let planned = parse_plan(&text);
        assert!(planned > tasks * 8 / 10, "most generated tasks are open");
        let mut g = c.benchmark_group(format!("{}k_tasks", tasks / 1000));
        g.throughput(Throughput::Bytes(text.len() as u64));
        if tasks >= 100_000 {
            g.sample_size(10);
        }
        g.bench_with_input(
            BenchmarkId::new("bare_pulldown_cmark", tasks),
            &text,
            |b, t| b.iter(|| bare(black_box(t))),
        );
        g.bench_with_input(BenchmarkId::new("parse_only", tasks), &text, |b, t| {
            b.iter(|| {
                Document::parse(black_box(t), &ParseOptions::default())
                    .map(|d| d.tasks.len())
                    .unwrap_or(0)
            })
        });
        let doc = Document::parse(&text, &ParseOptions::default()).expect("parses");
        g.bench_with_input(BenchmarkId::new("plan_only", tasks), &doc, |b, d| {
            b.iter(|| {
                Plan::build(black_box(d), &PlanOptions::default())
                    .map(|p| p.nodes.len())
                    .unwrap_or(0)
            })
        });
        g.bench_with_input(BenchmarkId::new("parse_plan", tasks), &text, |b, t| {
            b.iter(|| parse_plan(black_box(t)))
        });
        g.finish();
    }
}

/// Inputs built to be slow: what each must survive in linear time.
fn pathological_inputs() -> Vec<(&'static str, String)> {
    vec![
        ("id_comments_on_one_line", "<!-- id: a -->".repeat(100_000)),
        ("open_brackets", "[".repeat(1_000_000)),
        ("nested_list_markers", "- ".repeat(200_000)),
        ("emphasis_runs", "*a **b ".repeat(100_000)),
        ("nested_blockquotes", format!("{}x\n", "> ".repeat(100_000))),
        (
            "misspelt_hint_per_task",
            "- [ ] x <!-- paralel: 1 -->\n".repeat(5_000),
        ),
        ("unclosed_comments", "<!--".repeat(200_000)),
        ("backticks", "`".repeat(500_000)),
    ]
}

fn pathological(c: &mut Criterion) {
    let mut g = c.benchmark_group("pathological");
    g.sample_size(10);
    for (name, text) in pathological_inputs() {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(BenchmarkId::new("parse", name), &text, |b, t| {
            b.iter(|| {
                Document::parse(black_box(t), &ParseOptions::default())
                    .map(|d| d.tasks.len())
                    .unwrap_or(0)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, pathological);
criterion_main!(benches);
