#!/bin/sh
# Install the dependencies, build pop3d and run the whole test suite (`make check`:
# unit tests, fuzz corpus replay, end-to-end tests).  Ends with "N passed, M failed".
#   BUILD_DIR        build directory (default _build)
#   CONFIGURE_FLAGS  extra configure flags (default --enable-werror)
set -u
cd "$(dirname "$0")/.." || exit 1
top=$(pwd)
build=${BUILD_DIR:-_build}
flags=${CONFIGURE_FLAGS:---enable-werror}

if [ -z "${SKIP_DEPS:-}" ]; then
  scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }
fi
if ! { ./bootstrap >/dev/null 2>&1 || ./bootstrap; }; then
  echo "bootstrap failed"; echo "0 passed, 1 failed"; exit 1
fi
mkdir -p "$build" && cd "$build" || exit 1
# shellcheck disable=SC2086
if ! { "$top/configure" $flags >configure.out 2>&1 && tail -12 configure.out &&
       make -j2 >make.out 2>&1; }; then
  cat configure.out make.out 2>/dev/null | tail -60
  echo "build failed"; echo "0 passed, 1 failed"; exit 1
fi
make -j2 check >check.out 2>&1
rc=$?
grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP):' check.out | grep -v '^PASS' | head -100
grep -E '^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' check.out
if [ $rc -ne 0 ]; then
  for f in $(grep -lE '^(not ok|FAIL|ERROR)' tests/*/*.log tests/*.log 2>/dev/null); do
    echo "==== $f"; grep -vE '^ok ' "$f" | head -150
  done
fi
pass=$(sed -n 's/^# PASS: *//p' check.out | tail -1)
fail=$(sed -n 's/^# FAIL: *//p' check.out | tail -1)
err=$(sed -n 's/^# ERROR: *//p' check.out | tail -1)
xpass=$(sed -n 's/^# XPASS: *//p' check.out | tail -1)
skip=$(sed -n 's/^# SKIP: *//p' check.out | tail -1)
failed=$(( ${fail:-0} + ${err:-0} + ${xpass:-0} ))
[ $rc -ne 0 ] && [ $failed -eq 0 ] && failed=1
echo "${pass:-0} passed, $failed failed, ${skip:-0} skipped"
[ $rc -eq 0 ]
