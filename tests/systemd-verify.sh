#!/bin/sh
# Check the systemd units of etc/ with systemd-analyze verify (TAP).  The units name
# /usr/sbin/pop3d; the check points them at the pop3d just built.
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${POP3D:=$top_srcdir/pop3d}"
echo "1..1"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "ok 1 - systemd units # SKIP systemd-analyze is not installed"
  exit 0
fi
if [ ! -x "$POP3D" ]; then
  echo "ok 1 - systemd units # SKIP pop3d not built: $POP3D"
  exit 0
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/pop3d-units.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
for u in pop3d.service pop3d.socket pop3d@.service; do
  sed "s|/usr/sbin/pop3d|$POP3D|g" "$top_srcdir/etc/$u" >"$dir/$u" || exit 1
done
out=$(cd "$dir" && systemd-analyze verify --man=no ./pop3d.service ./pop3d.socket \
        ./pop3d@.service 2>&1)
rc=$?
[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/# /'
# Unknown keys and the like are only warnings to systemd-analyze: fail on them too.
if [ $rc -ne 0 ] || printf '%s\n' "$out" | grep -q .; then
  echo "not ok 1 - systemd-analyze verify etc/pop3d.service etc/pop3d.socket etc/pop3d@.service"
  exit 1
fi
echo "ok 1 - systemd-analyze verify etc/pop3d.service etc/pop3d.socket etc/pop3d@.service"
