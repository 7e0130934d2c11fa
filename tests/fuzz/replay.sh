#!/bin/sh
# Replay the corpus of each fuzz target (FUZZ_TARGETS, set by the Makefile from its one
# list: tests/fuzz/fuzz_NAME replays tests/fuzz/corpus/NAME/*); TAP output.
n=0; fail=0
if [ -z "$FUZZ_TARGETS" ]; then
  echo "1..0 # SKIP FUZZ_TARGETS not set (run from make check)"
  exit 0
fi
for target in $FUZZ_TARGETS; do
  name=${target##*/fuzz_}
  bin="$top_builddir/$target"
  dir="$top_srcdir/tests/fuzz/corpus/$name"
  n=$((n + 1))
  if [ ! -d "$dir" ]; then
    echo "not ok $n - fuzz_$name: no corpus directory $dir"
    fail=1
    continue
  fi
  # libFuzzer's driver takes files as inputs to run once, as replay.c does.
  if "$bin" "$dir"/* >/dev/null 2>fuzz-$name.err; then
    echo "ok $n - fuzz_$name replays $(ls "$dir" | wc -l) inputs"
  else
    echo "not ok $n - fuzz_$name crashed or failed:"; sed 's/^/# /' fuzz-$name.err | head -40
    fail=1
  fi
done
echo "1..$n"
exit $fail
