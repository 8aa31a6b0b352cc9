#!/usr/bin/env python3
"""Compare mdbatch with the tools people would use instead, on the same work,
in one run on this machine, and print every ratio with its inputs.

    python3 benches/compare.py                 # 1,000 and 10,000 tasks
    python3 benches/compare.py --sizes 1000    # quicker
    python3 benches/compare.py --sizes 1000,10000,100000 --runs 5

What it measures (each figure is the median of --runs runs; ratios are
mdbatch / peer, so below 1.0 means mdbatch is faster):

- per-task overhead: N tasks of `true` at -j 2 and -j 8, against
  `xargs -P J -n1 true`, GNU parallel (`parallel -j J true`) and `make -j J`
  over N phony targets;
- makespan: a cross-wave DAG (4 waves x 4 modules of short sleeps of
  different lengths) against `make -j 4` on the same DAG;
- chatty subagents: 8 tasks each printing 50 MB of lines, against the same 8
  generators writing to files side by side;
- memory as output grows: the peak RSS of a run whose 4 subagents print
  10 MB each against one where they print 100 MB each (flat: ratio ~1);
- plan: `mdbatch plan` of a 10,000- and 100,000-task file against a bare
  pulldown-cmark pass over the same text as a whole process
  (`batch-core/examples/bare_parse.rs`), and `mdbatch plan` of a 10-task file against a
  hello-world Rust binary (the median of at least 51 runs of each, in turns:
  both end within a few milliseconds);
- status and logs on the journal of one run of --journal-tasks (100,000)
  `true` tasks at -j 8, and that run's time per task;
- peak memory (max RSS) of the runs above.

It builds the release binary first. GNU parallel is installed from Debian's
packages when missing (apt-get; skipped with a note when that fails).
Nothing here is a pass/fail test: the targets live in issue 14 and the
README; this prints the numbers.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


RSS_PROBE_C = r"""
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
/* rss_probe OUT PROG ARGS...: runs PROG, writes its peak RSS (KiB) to OUT,
   exits with its status. A child forked by Python starts with Python's
   whole RSS counted as its peak; one forked from this small program does
   not. */
int main(int argc, char **argv) {
    if (argc < 3) return 125;
    pid_t pid = fork();
    if (pid < 0) return 126;
    if (pid == 0) { execvp(argv[2], argv + 2); _exit(127); }
    int st; struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) return 126;
    FILE *f = fopen(argv[1], "w");
    if (f) { fprintf(f, "%ld\n", ru.ru_maxrss); fclose(f); }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
"""
RSS_PROBE = None


def build_rss_probe(d):
    """Compile the RSS probe with gcc (None, with a note, without gcc)."""
    global RSS_PROBE
    src = os.path.join(d, "rss_probe.c")
    with open(src, "w") as f:
        f.write(RSS_PROBE_C)
    out = os.path.join(d, "rss_probe")
    if shutil.which("gcc") and subprocess.run(["gcc", "-O2", "-o", out, src]).returncode == 0:
        RSS_PROBE = out
    else:
        log("note: no gcc; peak RSS figures include Python's own memory at fork")


def run_timed(argv, cwd=None, stdin_data=None, env=None, stdout=subprocess.DEVNULL, probe=False):
    """Run argv, return (seconds, max_rss_kib, returncode). With probe, the
    peak RSS comes from the RSS probe (one more fork+exec, so only where
    that is negligible against the time measured)."""
    rss_file = None
    if probe and RSS_PROBE:
        fd, rss_file = tempfile.mkstemp(prefix="mdbatch-rss-")
        os.close(fd)
        argv = [RSS_PROBE, rss_file] + list(argv)
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    if stdin_data is not None:
        proc.stdin.write(stdin_data)
        proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss = usage.ru_maxrss
    if rss_file:
        try:
            with open(rss_file) as f:
                rss = int(f.read().strip() or 0)
        except (OSError, ValueError):
            pass
        os.unlink(rss_file)
    return elapsed, rss, proc.returncode


def peak_rss(runs, argv, cwd=None, env=None):
    """The largest peak RSS (KiB) over runs, through the probe."""
    return max(run_timed(argv, cwd=cwd, env=env, probe=True)[1] for _ in range(runs))


def median_of(runs, fn):
    times, rss = [], []
    for _ in range(runs):
        t, m = fn()
        times.append(t)
        rss.append(m)
    return statistics.median(times), max(rss)


def env_plain():
    env = dict(os.environ)
    env["NO_COLOR"] = "1"
    env.pop("MDBATCH_LOG", None)
    return env


def build(args):
    if args.bin:
        return os.path.abspath(args.bin), args.bare and os.path.abspath(args.bare)
    log("building the release binaries (cargo build --release)…")
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "-p", "batch-cli"],
        cwd=ROOT,
        check=True,
    )
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "-p", "batch-core", "--example", "bare_parse"],
        cwd=ROOT,
        check=True,
    )
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "mdbatch"), os.path.join(
        target, "release", "examples", "bare_parse"
    )


def ensure_parallel():
    if shutil.which("parallel"):
        return True
    log("GNU parallel is missing: installing it from Debian's packages…")
    cmd = "apt-get update -qq && apt-get install -y -qq parallel"
    if os.geteuid() != 0:
        cmd = "sudo sh -c '" + cmd + "'"
    subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return shutil.which("parallel") is not None


def flat_taskfile(n):
    lines = ["# Bench", "", "## Wave 1", ""]
    lines += [f"- [ ] item {i}" for i in range(n)]
    return "\n".join(lines) + "\n"


class Table:
    def __init__(self):
        self.rows = []

    def add(self, work, ours, peer_name, peer, target=None):
        ratio = ours / peer if peer > 0 else float("inf")
        self.rows.append((work, ours, peer_name, peer, ratio, target))
        verdict = ""
        if target is not None:
            verdict = "  (target ≤ %.2f: %s)" % (target, "met" if ratio <= target else "MISSED")
        print(
            f"{work:<44} mdbatch {ours:9.3f}s  {peer_name:<14} {peer:9.3f}s  ratio {ratio:6.2f}{verdict}",
            flush=True,
        )


def bench_per_task(mdbatch, sizes, jobs_list, runs, table, have_parallel, keep_dir):
    env = env_plain()
    last_dir = None
    for n in sizes:
        for jobs in jobs_list:
            work = f"{n} x true, -j {jobs}"

            def ours():
                d = tempfile.mkdtemp(prefix="mdbatch-bench-")
                path = os.path.join(d, "task.md")
                with open(path, "w") as f:
                    f.write(flat_taskfile(n))
                t, m, rc = run_timed(
                    [mdbatch, "run", path, "--cmd", "true", "-j", str(jobs)],
                    cwd=d,
                    env=env,
                    probe=True,
                )
                if rc != 0:
                    log(f"warning: mdbatch exited {rc} on {work}")
                nonlocal last_dir
                if last_dir and last_dir != keep_dir:
                    shutil.rmtree(last_dir, ignore_errors=True)
                last_dir = d
                return t, m

            t_ours, rss_ours = median_of(runs, ours)
            print(f"  mdbatch peak RSS on {work}: {rss_ours / 1024:.1f} MiB", flush=True)

            lines = "".join(f"{i}\n" for i in range(n)).encode()

            def xargs():
                t, m, _ = run_timed(["xargs", "-P", str(jobs), "-n1", "true"], stdin_data=lines)
                return t, m

            table.add(work, t_ours, "xargs -P", median_of(runs, xargs)[0], target=1.5)

            if have_parallel:

                def par():
                    t, m, _ = run_timed(
                        ["parallel", "--will-cite", "-j", str(jobs), "true"], stdin_data=lines
                    )
                    return t, m

                table.add(work, t_ours, "GNU parallel", median_of(runs, par)[0], target=1.0)

            d = tempfile.mkdtemp(prefix="mdbatch-make-")
            with open(os.path.join(d, "Makefile"), "w") as f:
                names = " ".join(f"t{i}" for i in range(n))
                f.write(f".PHONY: all {names}\nall: {names}\n")
                for i in range(n):
                    f.write(f"t{i}:\n\t@true\n")

            def mk():
                t, m, _ = run_timed(["make", "-s", "-j", str(jobs), "-C", d])
                return t, m

            table.add(work, t_ours, "make -j", median_of(runs, mk)[0])
            shutil.rmtree(d, ignore_errors=True)
            print(f"  per task: mdbatch {t_ours / n * 1e3:.3f} ms", flush=True)
    return last_dir


def bench_makespan(mdbatch, runs, table):
    # 4 waves x 4 modules; module m's task in wave w sleeps a length that
    # differs by module and wave, so waiting for the whole wave costs time
    # and cross-wave (a module waits only for itself) does not.
    durations = {
        (w, m): [0.1, 0.4, 0.2, 0.3][(w + m) % 4] for w in range(4) for m in range(4)
    }
    lines = ["# Makespan", "", "<!-- cross-wave: true -->", ""]
    for w in range(4):
        lines += [f"## Wave {w + 1}", ""]
        for m in range(4):
            lines += [f"### m{m}", "", f"- [ ] {durations[(w, m)]}s", ""]
    text = "\n".join(lines)
    env = env_plain()

    def ours():
        d = tempfile.mkdtemp(prefix="mdbatch-span-")
        path = os.path.join(d, "task.md")
        with open(path, "w") as f:
            f.write(text)
        t, m, rc = run_timed(
            [mdbatch, "run", path, "--cmd", "sleep {task}", "-j", "4"], cwd=d, env=env
        )
        if rc != 0:
            log(f"warning: mdbatch exited {rc} on the makespan run")
        shutil.rmtree(d, ignore_errors=True)
        return t, m

    d = tempfile.mkdtemp(prefix="mdbatch-span-make-")
    with open(os.path.join(d, "Makefile"), "w") as f:
        targets = [f"w{w}m{m}" for w in range(4) for m in range(4)]
        f.write(".PHONY: all " + " ".join(targets) + "\nall: " + " ".join(targets) + "\n")
        for w in range(4):
            for m in range(4):
                dep = f"w{w - 1}m{m}" if w else ""
                f.write(f"w{w}m{m}: {dep}\n\t@sleep {durations[(w, m)]}\n")

    def mk():
        t, m, _ = run_timed(["make", "-s", "-j", "4", "-C", d])
        return t, m

    table.add("makespan, cross-wave 4x4 sleeps, -j 4", median_of(runs, ours)[0], "make -j 4",
              median_of(runs, mk)[0], target=1.03)
    shutil.rmtree(d, ignore_errors=True)


def output_generator(d, mb):
    """A script in d printing mb MB of 100-byte lines; its path."""
    gen = os.path.join(d, f"gen{mb}.py")
    with open(gen, "w") as f:
        f.write(
            "import sys\n"
            "line = b'x' * 99 + b'\\n'\n"
            "out = sys.stdout.buffer\n"
            f"for _ in range({mb} * 10000):\n"
            "    out.write(line)\n"
        )
    return gen


def run_fresh(mdbatch, d, text, cmd, jobs):
    """A run of a task file of `text` in d with no state from earlier runs:
    (seconds, peak RSS in KiB, exit code)."""
    path = os.path.join(d, "task.md")
    with open(path, "w") as f:
        f.write(text)
    shutil.rmtree(os.path.join(d, ".mdbatch"), ignore_errors=True)
    return run_timed(
        [mdbatch, "run", path, "--cmd", cmd, "-j", str(jobs)],
        cwd=d,
        env=env_plain(),
        probe=True,
    )


def bench_chatty(mdbatch, runs, table, mb):
    d = tempfile.mkdtemp(prefix="mdbatch-chatty-")
    gen = output_generator(d, mb)
    text = "# Chatty\n\n## Wave 1\n\n" + "".join(f"- [ ] c{i}\n" for i in range(8))

    def ours():
        t, m, rc = run_fresh(mdbatch, d, text, f"python3 {gen}", 8)
        if rc != 0:
            log(f"warning: mdbatch exited {rc} on the chatty run")
        return t, m

    def peer():
        start = time.perf_counter()
        procs = []
        for i in range(8):
            out = open(os.path.join(d, f"out{i}"), "wb")
            procs.append((subprocess.Popen(["python3", gen], stdout=out), out))
        for p, out in procs:
            p.wait()
            out.close()
        t = time.perf_counter() - start
        for i in range(8):
            os.unlink(os.path.join(d, f"out{i}"))
        return t, 0

    t, rss = median_of(runs, ours)
    table.add(f"chatty: 8 x {mb} MB of output, -j 8", t, "to files", median_of(runs, peer)[0],
              target=3.0)
    print(f"  mdbatch peak RSS with 8 x {mb} MB of output: {rss / 1024:.1f} MiB", flush=True)
    shutil.rmtree(d, ignore_errors=True)


def bench_memory_flat(mdbatch):
    """Peak RSS of a run whose 4 subagents print 10 MB each, and 100 MB
    each: memory must not grow with output (it is streamed to the logs)."""
    d = tempfile.mkdtemp(prefix="mdbatch-flat-")
    try:
        text = "# Output\n\n## Wave 1\n\n" + "".join(f"- [ ] o{i}\n" for i in range(4))
        peaks = {}
        for mb in (10, 100):
            gen = output_generator(d, mb)
            _, m, rc = run_fresh(mdbatch, d, text, f"python3 {gen}", 4)
            if rc != 0:
                log(f"warning: mdbatch exited {rc} on the {mb} MB run")
            peaks[mb] = m
        ratio = peaks[100] / max(peaks[10], 1)
        verdict = "met" if ratio <= 1.10 else "MISSED"
        print(
            f"memory as output grows: 4 x 10 MB peak RSS {peaks[10] / 1024:.1f} MiB,"
            f" 4 x 100 MB {peaks[100] / 1024:.1f} MiB, ratio {ratio:.2f}"
            f" (target: flat, ≤ 1.10: {verdict})",
            flush=True,
        )
    finally:
        shutil.rmtree(d, ignore_errors=True)


def generated_plan_file(n):
    lines = ["# Generated", "", "Context.", ""]
    waves = max(n // 500, 1)
    per = n // (waves * 5)
    k = 0
    for w in range(waves):
        lines += [f"## Wave {w + 1}", ""]
        for m in range(5):
            lines += [f"### m{m}", ""]
            for i in range(per):
                mark = "x" if k % 7 == 0 else " "
                lines.append(f"- [{mark}] Implement item {i} of m{m} in `src/m{m}/w{w}_{i}.rs`")
                k += 1
            lines.append("")
    return "\n".join(lines) + "\n"


def bench_plan(mdbatch, bare, runs, table):
    d = tempfile.mkdtemp(prefix="mdbatch-plan-")
    for n in (10_000, 100_000):
        path = os.path.join(d, f"t{n}.md")
        with open(path, "w") as f:
            f.write(generated_plan_file(n))

        def ours():
            t, m, rc = run_timed([mdbatch, "plan", path], env=env_plain())
            if rc != 0:
                log(f"warning: mdbatch plan exited {rc}")
            return t, m

        def peer():
            t, m, _ = run_timed([bare, path])
            return t, m

        t_o, _ = median_of(runs, ours)
        t_p, _ = median_of(runs, peer)
        rss_o = peak_rss(runs, [mdbatch, "plan", path], env=env_plain())
        rss_p = peak_rss(runs, [bare, path])
        table.add(f"plan of {n} tasks (whole process)", t_o, "bare pass", t_p, target=1.5)
        print(
            f"  peak RSS: mdbatch plan {rss_o / 1024:.1f} MiB, bare {rss_p / 1024:.1f} MiB,"
            f" ratio {rss_o / max(rss_p, 1):.2f} (target ≤ 2)",
            flush=True,
        )

    small = os.path.join(d, "t10.md")
    with open(small, "w") as f:
        f.write(flat_taskfile(10))
    hello_src = os.path.join(d, "hello.rs")
    with open(hello_src, "w") as f:
        f.write('fn main() { println!("hello"); }\n')
    hello = os.path.join(d, "hello")
    subprocess.run(["rustc", "-O", "-o", hello, hello_src], check=True)

    def ours():
        t, m, _ = run_timed([mdbatch, "plan", small], env=env_plain())
        return t, m

    def peer():
        t, m, _ = run_timed([hello])
        return t, m

    # Both take a millisecond or two, so one slow fork moves a median of
    # five: many runs, taken in turns so that a busy moment hits both.
    mine, theirs = [], []
    for _ in range(max(runs * 10, 51)):
        mine.append(ours()[0])
        theirs.append(peer()[0])
    table.add("plan of 10 tasks (start-up)", statistics.median(mine), "hello world",
              statistics.median(theirs), target=2.0)
    shutil.rmtree(d, ignore_errors=True)


def bench_status_logs(mdbatch, n, runs):
    """One run of n `true` tasks at -j 8 (its time per task, for the
    flatness target), then `status` and `logs` on the journal it leaves."""
    env = env_plain()
    d = tempfile.mkdtemp(prefix="mdbatch-journal-")
    try:
        path = os.path.join(d, "task.md")
        with open(path, "w") as f:
            f.write(flat_taskfile(n))
        log(f"running {n} x true at -j 8 for its journal")
        t, m, rc = run_timed(
            [mdbatch, "run", path, "--cmd", "true", "-j", "8"], cwd=d, env=env, probe=True
        )
        if rc != 0:
            log(f"warning: mdbatch exited {rc} on the {n}-task run")
        journal = os.path.join(d, ".mdbatch", "task.md", "journal.jsonl")
        size = os.path.getsize(journal) if os.path.exists(journal) else 0
        print(
            f"{n} x true, -j 8 (one run): {t:.2f}s, {t / n * 1000:.3f} ms per task,"
            f" peak RSS {m / 1024:.1f} MiB; journal {size / 1e6:.1f} MB",
            flush=True,
        )
        last = f"wave-1/item-{n - 1}"  # the id flat_taskfile gives its last task
        for name, argv in (
            ("status", [mdbatch, "status", path]),
            ("status --json", [mdbatch, "status", "--json", path]),
            ("logs", [mdbatch, "logs", "--file", path, last]),
        ):

            def once():
                t, m, rc = run_timed(argv, cwd=d, env=env)
                # `logs` of a task that printed nothing exits 2 after finding
                # its attempt in the journal; anything else is a failure.
                if rc not in (0, 2) or (rc == 2 and name != "logs"):
                    log(f"warning: `{' '.join(argv[1:3])}` exited {rc}")
                return t, m

            t, m = median_of(runs, once)
            verdict = "met" if t < 0.5 else "MISSED"
            print(
                f"{name} on the journal of a {n}-task run: {t:.3f}s, peak RSS"
                f" {m / 1024:.1f} MiB (target: well under a second, < 0.5 s: {verdict})",
                flush=True,
            )
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000", help="task counts for the per-task runs")
    ap.add_argument("--jobs", default="2,8", help="-j values for the per-task runs")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    ap.add_argument("--chatty-mb", type=int, default=50, help="MB of output per chatty task")
    ap.add_argument("--bin", help="an mdbatch binary to use instead of building one")
    ap.add_argument("--bare", help="the bare_parse binary, with --bin")
    ap.add_argument("--journal-tasks", type=int, default=100000,
                    help="tasks of the run whose journal status and logs read")
    ap.add_argument("--only", default="per-task,makespan,chatty,memory,plan,status",
                    help="comma-separated parts to run")
    args = ap.parse_args()

    mdbatch, bare = build(args)
    probe_dir = tempfile.mkdtemp(prefix="mdbatch-probe-")
    build_rss_probe(probe_dir)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    jobs = [int(s) for s in args.jobs.split(",") if s]
    parts = set(args.only.split(","))
    print(f"mdbatch: {mdbatch}; {os.cpu_count()} CPUs; runs per figure: {args.runs}", flush=True)
    table = Table()
    run_dir = None
    if "per-task" in parts:
        have_parallel = ensure_parallel()
        if not have_parallel:
            print("note: GNU parallel not available; its column is left out", flush=True)
        run_dir = bench_per_task(mdbatch, sizes, jobs, args.runs, table, have_parallel, None)
    if "makespan" in parts:
        bench_makespan(mdbatch, args.runs, table)
    if "chatty" in parts:
        bench_chatty(mdbatch, args.runs, table, args.chatty_mb)
    if "memory" in parts:
        bench_memory_flat(mdbatch)
    if "plan" in parts and bare:
        bench_plan(mdbatch, bare, args.runs, table)
    if run_dir:
        shutil.rmtree(run_dir, ignore_errors=True)
    if "status" in parts:
        bench_status_logs(mdbatch, args.journal_tasks, args.runs)
    shutil.rmtree(probe_dir, ignore_errors=True)
    missed = [r for r in table.rows if r[5] is not None and r[4] > r[5]]
    print(f"\n{len(table.rows)} ratios, {len(missed)} above their target", flush=True)


if __name__ == "__main__":
    main()
