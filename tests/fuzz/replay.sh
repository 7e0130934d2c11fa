#!/bin/sh
# Replay each fuzz target's corpus (tests/fuzz/corpus/TARGET/*); TAP output.
n=0; fail=0
for target in conf mbox options sasl maildir monitor; do
  bin="$top_builddir/tests/fuzz/fuzz_$target"
  dir="$top_srcdir/tests/fuzz/corpus/$target"
  n=$((n + 1))
  if [ ! -d "$dir" ]; then
    echo "ok $n - fuzz_$target # SKIP no corpus directory $dir"
    continue
  fi
  if "$bin" "$dir"/* >/dev/null 2>fuzz-$target.err; then
    echo "ok $n - fuzz_$target replays $(ls "$dir" | wc -l) inputs"
  else
    echo "not ok $n - fuzz_$target crashed or failed:"; sed 's/^/# /' fuzz-$target.err | head -40
    fail=1
  fi
done
echo "1..$n"
exit $fail
