/*
 * mdbatch_example: parse a task file, print its plan, and run it with a
 * runner written in C while printing every event.
 *
 * Build (from the repository root, after `cargo build -p batch-ffi`):
 *
 *   gcc -std=c11 -Wall -Wextra -Werror -I batch-ffi/include \
 *       examples/c/mdbatch_example.c -L target/debug -lmdbatch \
 *       -Wl,-rpath,"$PWD/target/debug" -o mdbatch_example
 *
 * Run:
 *
 *   ./mdbatch_example task.md
 *
 * The runner does no real work: it reports a progress line per attempt and
 * succeeds, except that a task whose text contains "(flaky)" fails its first
 * attempt with a transient error, so the retry shows in the events. Each
 * box is checked in the file as its task succeeds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mdbatch.h"

/* Reads a whole file into a malloc'd buffer; returns NULL on failure. */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        size_t n = fread(buf + used, 1, cap - used, f);
        used += n;
        if (used < cap) {
            break;
        }
        cap *= 2;
        char *bigger = realloc(buf, cap);
        if (bigger == NULL) {
            free(buf);
            buf = NULL;
        } else {
            buf = bigger;
        }
    }
    if (buf != NULL && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = used;
    return buf;
}

/* Prints a failure and frees the error (NULL is fine). */
static int fail(const char *what, mdbatch_status status, mdbatch_error *err) {
    const char *message = mdbatch_error_message(err);
    fprintf(stderr, "%s failed: %s\n%s\n", what, mdbatch_status_name((int)status),
            message != NULL ? message : "(no message)");
    mdbatch_error_free(err);
    return 1;
}

/*
 * The runner. Called on mdbatch's worker threads, possibly several at once,
 * so it touches nothing but its arguments. `task_json` and `ctx` are valid
 * until it returns.
 */
static int demo_runner(void *user_data, const char *task_json, mdbatch_task_ctx *ctx) {
    (void)user_data;
    const char *id = mdbatch_task_ctx_task_id(ctx);
    unsigned attempt = (unsigned)mdbatch_task_ctx_attempt(ctx);
    char line[256];
    snprintf(line, sizeof line, "C runner: task %s, attempt %u", id, attempt);
    mdbatch_task_ctx_emit(ctx, line);

    if (mdbatch_task_ctx_is_cancelled(ctx)) {
        mdbatch_task_ctx_set_error(ctx, MDBATCH_ERROR_KIND_CANCELLED, "cancelled before starting");
        return 1;
    }
    if (strstr(task_json, "(flaky)") != NULL && attempt == 1) {
        mdbatch_task_ctx_set_error(ctx, MDBATCH_ERROR_KIND_TRANSIENT, "simulated overload, try again");
        return 1;
    }
    return 0;
}

/* Called on this (main) thread, one event at a time. */
static void print_event(void *user_data, const char *event_json) {
    unsigned *count = user_data;
    *count += 1;
    printf("event: %s\n", event_json);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s TASK_FILE\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    printf("mdbatch %s\n", mdbatch_version());

    size_t len = 0;
    char *text = read_file(path, &len);
    if (text == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    mdbatch_doc *doc = NULL;
    mdbatch_error *err = NULL;
    mdbatch_status status = mdbatch_doc_parse(text, len, &doc, &err);
    free(text);
    if (status != MDBATCH_STATUS_OK) {
        return fail("parse", status, err);
    }

    char *plan = NULL;
    status = mdbatch_doc_plan_json(doc, NULL, &plan, &err);
    mdbatch_doc_free(doc);
    if (status != MDBATCH_STATUS_OK) {
        return fail("plan", status, err);
    }
    printf("--- plan ---\n%s\n--- end of plan ---\n", plan);
    mdbatch_string_free(plan);

    mdbatch_runner runner = {.run = demo_runner, .user_data = NULL};
    unsigned events = 0;
    const char *options = "{\"jobs\": 2, \"retries\": 2, \"backoff_base\": \"10ms\", \"backoff_cap\": \"10ms\"}";
    status = mdbatch_run_file(path, options, &runner, print_event, &events, &err);
    printf("events received: %u\n", events);
    printf("run: %s\n", mdbatch_status_name((int)status));
    if (status != MDBATCH_STATUS_OK) {
        return fail("run", status, err);
    }
    return 0;
}
