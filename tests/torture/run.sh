#!/bin/sh
# make check: the torture harness (tests/torture/README), TORTURE_ROUNDS rounds (20) of
# each maildrop format, one TAP line a format.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${POP3D:=$top_builddir/pop3d}"
: "${PYTHON3:=python3}"
export POP3D top_srcdir top_builddir
exec "$PYTHON3" "$top_srcdir/tests/torture/torture.py" --rounds "${TORTURE_ROUNDS:-20}" --tap
