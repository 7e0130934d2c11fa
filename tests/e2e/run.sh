#!/bin/sh
# Run the end-to-end tests (pytest) against the built pop3d and report each test as a TAP
# line, so that `make check` counts them one by one.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${POP3D:=$top_builddir/pop3d}"
: "${PYTHON3:=python3}"
export POP3D top_srcdir top_builddir
if ! "$PYTHON3" -c 'import pytest' 2>/dev/null; then
  echo "1..0 # SKIP python3-pytest is not installed"
  exit 0
fi
xml="${TMPDIR:-/tmp}/pop3d-e2e-$$.xml"
"$PYTHON3" -m pytest -q -p no:cacheprovider --junitxml="$xml" "$top_srcdir/tests/e2e" >e2e-pytest.out 2>&1
rc=$?
sed 's/^/# /' e2e-pytest.out
"$PYTHON3" "$top_srcdir/tests/e2e/junit2tap.py" "$xml"
tap=$?
rm -f "$xml"
[ $rc -le 1 ] || { echo "not ok - pytest exited with $rc"; exit 1; }
exit $tap
