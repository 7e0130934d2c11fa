#!/bin/sh
# Check the systemd units of etc/ (TAP): systemd-analyze verify accepts them all, and
# systemd-analyze security --offline=true rates each service's exposure at most
# $MAX_EXPOSURE (0 = fully confined, 10 = not at all).  The units name
# /usr/sbin/pop3d; the check points them at the pop3d just built.
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${POP3D:=$top_srcdir/pop3d}"
MAX_EXPOSURE=3.0
services="pop3d.service pop3d@.service pop3s@.service"
units="$services pop3d.socket pop3s.socket"
# shellcheck disable=SC2086
set -- $services
echo "1..$(($# + 1))"
skip_all() {
  i=1
  echo "ok $i - systemd-analyze verify # SKIP $1"
  for u in $services; do
    i=$((i + 1)); echo "ok $i - exposure of $u # SKIP $1"
  done
  exit 0
}
command -v systemd-analyze >/dev/null 2>&1 || skip_all "systemd-analyze is not installed"
[ -x "$POP3D" ] || skip_all "pop3d not built: $POP3D"
dir=$(mktemp -d "${TMPDIR:-/tmp}/pop3d-units.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
for u in $units; do
  sed "s|/usr/sbin/pop3d|$POP3D|g" "$top_srcdir/etc/$u" >"$dir/$u" || exit 1
done
failed=0

set --
for u in $units; do set -- "$@" "./$u"; done
out=$(cd "$dir" && systemd-analyze verify --man=no "$@" 2>&1)
rc=$?
[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/# /'
# Unknown keys and the like are only warnings to systemd-analyze: fail on them too.
if [ $rc -ne 0 ] || printf '%s\n' "$out" | grep -q .; then
  echo "not ok 1 - systemd-analyze verify $units"
  failed=1
else
  echo "ok 1 - systemd-analyze verify $units"
fi

# The score is the last line: "→ Overall exposure level for pop3d.service: 2.9 OK".
# Offline, systemd-analyze rates the unit file alone (no running manager needed).
i=1
for u in $services; do
  i=$((i + 1))
  out=$(cd "$dir" && systemd-analyze security --offline=true --no-pager "./$u" 2>&1)
  score=$(printf '%s\n' "$out" |
          sed -n 's/.*Overall exposure level for [^:]*: *\([0-9][0-9.]*\).*/\1/p' | tail -1)
  if [ -z "$score" ]; then
    if printf '%s\n' "$out" | grep -q -- "--offline"; then
      echo "ok $i - exposure of $u # SKIP this systemd-analyze has no --offline"
      continue
    fi
    printf '%s\n' "$out" | tail -20 | sed 's/^/# /'
    echo "not ok $i - exposure of $u: no score"
    failed=1
  elif awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
    echo "ok $i - exposure of $u: $score (at most $MAX_EXPOSURE)"
  else
    printf '%s\n' "$out" | grep '✗' | sed 's/^/# /'
    echo "not ok $i - exposure of $u: $score (more than $MAX_EXPOSURE)"
    failed=1
  fi
done
exit $failed
