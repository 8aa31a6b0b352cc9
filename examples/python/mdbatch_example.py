#!/usr/bin/env python3
"""Parse a task file, print its plan, and run it with a runner written in
Python, through mdbatch's C interface and ctypes (nothing to install).

    cargo build -p batch-ffi
    python3 examples/python/mdbatch_example.py task.md

The library is found through $MDBATCH_LIB (a path to libmdbatch.so), else in
target/debug or target/release of this repository.

The runner does no real work: it reports a progress line per attempt and
succeeds, except that a task whose text contains "(flaky)" fails its first
attempt with a transient error, so the retry shows in the events.
"""

import ctypes
import json
import os
import sys
from pathlib import Path

MDBATCH_STATUS_OK = 0
MDBATCH_ERROR_KIND_TRANSIENT = 1
MDBATCH_ERROR_KIND_FAILED = 5
MDBATCH_ERROR_KIND_CANCELLED = 7

# typedef int (*mdbatch_runner_fn)(void *user_data, const char *task_json, mdbatch_task_ctx *ctx);
RUNNER_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)
# typedef void (*mdbatch_event_fn)(void *user_data, const char *event_json);
EVENT_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)


class Runner(ctypes.Structure):
    """struct mdbatch_runner { mdbatch_runner_fn run; void *user_data; }"""

    _fields_ = [("run", RUNNER_FN), ("user_data", ctypes.c_void_p)]


def find_library():
    explicit = os.environ.get("MDBATCH_LIB")
    if explicit:
        return explicit
    root = Path(__file__).resolve().parents[2]
    names = ["libmdbatch.so", "libmdbatch.dylib", "mdbatch.dll"]
    for profile in ["debug", "release"]:
        for name in names:
            candidate = root / "target" / profile / name
            if candidate.exists():
                return str(candidate)
    sys.exit("libmdbatch not found: run `cargo build -p batch-ffi` or set MDBATCH_LIB")


def load(path):
    lib = ctypes.CDLL(path)
    p, c_char_p, c_void_p = ctypes.POINTER, ctypes.c_char_p, ctypes.c_void_p
    sigs = {
        "mdbatch_version": ([], c_char_p),
        "mdbatch_status_name": ([ctypes.c_int], c_char_p),
        "mdbatch_doc_parse": ([c_char_p, ctypes.c_size_t, p(c_void_p), p(c_void_p)], ctypes.c_int),
        "mdbatch_doc_plan_json": ([c_void_p, c_char_p, p(c_void_p), p(c_void_p)], ctypes.c_int),
        "mdbatch_doc_free": ([c_void_p], None),
        # Returned strings are taken as void* so they can go back to mdbatch_string_free.
        "mdbatch_string_free": ([c_void_p], None),
        "mdbatch_error_message": ([c_void_p], c_char_p),
        "mdbatch_error_free": ([c_void_p], None),
        "mdbatch_run_file": (
            [c_char_p, c_char_p, p(Runner), EVENT_FN, c_void_p, p(c_void_p)],
            ctypes.c_int,
        ),
        "mdbatch_task_ctx_emit": ([c_void_p, c_char_p], None),
        "mdbatch_task_ctx_is_cancelled": ([c_void_p], ctypes.c_bool),
        "mdbatch_task_ctx_set_error": ([c_void_p, ctypes.c_uint32, c_char_p], ctypes.c_int),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = res
    return lib


class MdbatchError(Exception):
    pass


def check(lib, what, status, err):
    """Raises with the library's message (and frees the error) unless status is OK."""
    if status == MDBATCH_STATUS_OK:
        return
    message = lib.mdbatch_error_message(err) if err.value else None
    lib.mdbatch_error_free(err)
    name = lib.mdbatch_status_name(status).decode()
    raise MdbatchError(f"{what} failed: {name}\n{(message or b'(no message)').decode()}")


def take_string(lib, ptr):
    """Copies a string returned by mdbatch and frees it with mdbatch_string_free."""
    try:
        return ctypes.string_at(ptr.value).decode()
    finally:
        lib.mdbatch_string_free(ptr)


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} TASK_FILE", file=sys.stderr)
        return 2
    path = argv[1]
    lib = load(find_library())
    print(f"mdbatch {lib.mdbatch_version().decode()}")

    text = Path(path).read_bytes()
    doc, err = ctypes.c_void_p(), ctypes.c_void_p()
    check(lib, "parse", lib.mdbatch_doc_parse(text, len(text), ctypes.byref(doc), ctypes.byref(err)), err)
    try:
        out = ctypes.c_void_p()
        status = lib.mdbatch_doc_plan_json(doc, None, ctypes.byref(out), ctypes.byref(err))
        check(lib, "plan", status, err)
        print("--- plan ---\n" + take_string(lib, out) + "\n--- end of plan ---")
    finally:
        lib.mdbatch_doc_free(doc)

    # Called on mdbatch's worker threads, possibly several at once (ctypes takes the GIL).
    def run_task(_user_data, task_json, ctx):
        try:
            return run_one(json.loads(task_json), ctx)
        except Exception as e:  # an exception must not turn into a success
            lib.mdbatch_task_ctx_set_error(ctx, MDBATCH_ERROR_KIND_FAILED, f"runner raised: {e}".encode())
            return 1

    def run_one(task, ctx):
        line = f"Python runner: task {task['id']}, attempt {task['attempt']}"
        lib.mdbatch_task_ctx_emit(ctx, line.encode())
        if lib.mdbatch_task_ctx_is_cancelled(ctx):
            lib.mdbatch_task_ctx_set_error(ctx, MDBATCH_ERROR_KIND_CANCELLED, b"cancelled")
            return 1
        if "(flaky)" in task["text"] and task["attempt"] == 1:
            lib.mdbatch_task_ctx_set_error(ctx, MDBATCH_ERROR_KIND_TRANSIENT, b"simulated overload, try again")
            return 1
        return 0

    events = []

    # Called on this thread, one event at a time.
    def on_event(_user_data, event_json):
        events.append(json.loads(event_json))
        print("event: " + event_json.decode(), flush=True)

    # Keep the ctypes callback objects alive for the whole run.
    runner = Runner(RUNNER_FN(run_task), None)
    event_fn = EVENT_FN(on_event)
    options = json.dumps({"jobs": 2, "retries": 2, "backoff_base": "10ms", "backoff_cap": "10ms"})
    status = lib.mdbatch_run_file(
        path.encode(), options.encode(), ctypes.byref(runner), event_fn, None, ctypes.byref(err)
    )
    print(f"events received: {len(events)}")
    print(f"run: {lib.mdbatch_status_name(status).decode()}")
    check(lib, "run", status, err)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except MdbatchError as e:
        print(e, file=sys.stderr)
        sys.exit(1)
