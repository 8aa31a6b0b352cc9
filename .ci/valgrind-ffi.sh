#!/usr/bin/env bash
# Builds the C example against libmdbatch.so and runs it on a temporary task
# file under valgrind. Fails on any memory error or definite leak ("possibly
# lost" blocks from the runtime's threads are reported but do not fail), and
# when the run's output or the task file afterwards is not as expected.
# Usage: bash .ci/valgrind-ffi.sh   (from anywhere; installs valgrind if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
  echo "installing valgrind"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
  else
    sudo sh -c 'apt-get update -qq && apt-get install -y -qq valgrind' >/dev/null
  fi
fi

cargo build -p batch-ffi --locked
lib="$PWD/target/debug"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gcc -std=c11 -Wall -Wextra -Werror -g -I batch-ffi/include examples/c/mdbatch_example.c \
  -L "$lib" -lmdbatch -Wl,-rpath,"$lib" -o "$work/mdbatch_example"

cat >"$work/task.md" <<'TASKS'
# Valgrind

## Wave 1
- [ ] first
- [ ] second (flaky)

## Wave 2
- [ ] third
TASKS

status=0
LD_LIBRARY_PATH="$lib" RUST_BACKTRACE=0 valgrind --quiet --leak-check=full --show-leak-kinds=definite \
  --errors-for-leak-kinds=definite --error-exitcode=1 \
  "$work/mdbatch_example" "$work/task.md" >"$work/out.txt" 2>"$work/valgrind.txt" || status=$?
cat "$work/valgrind.txt"
if [ "$status" -ne 0 ]; then
  echo "valgrind-ffi: FAILED (exit $status)"
  cat "$work/out.txt"
  exit 1
fi
grep -q '^run: MDBATCH_STATUS_OK$' "$work/out.txt" || { echo "valgrind-ffi: the run did not succeed"; cat "$work/out.txt"; exit 1; }
checked=$(grep -c -- '- \[x\]' "$work/task.md" || true)
if [ "$checked" -ne 3 ]; then
  echo "valgrind-ffi: expected 3 checked boxes, found $checked"
  cat "$work/task.md"
  exit 1
fi
echo "valgrind-ffi: no memory errors, no definite leaks; $(grep -c '^event: ' "$work/out.txt") events, 3 boxes checked"
