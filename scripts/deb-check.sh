#!/bin/sh
# Build the Debian package (dpkg-buildpackage -us -uc -b) in a copy of the source
# tree, unpack it into a scratch root with dpkg -x and check what it installs, then
# install and purge it with dpkg --root in another scratch root, its maintainer
# scripts included, and runs postinst and postrm once more, for real, on a copy of
# /etc in a mount namespace (the pop3d user).  The host's own packages and users are
# left alone: installing pop3d for real would remove the other POP3 servers
# (Conflicts: pop3-server), so apt is only asked to simulate that.  Run it as root on Debian 12; it installs debhelper,
# dpkg-dev and fakeroot (and the build dependencies) when they are missing.
# Prints one "ok"/"not ok" line per check and ends with "deb: N passed, M failed".
#   DEB_WORK   scratch directory, kept (default: a new directory under /tmp, removed
#              when every check passes)
#   DEB_OUT    directory the .deb is copied to (default: _build, which git ignores)
#   SKIP_DEPS  set: don't install the build dependencies
set -u
cd "$(dirname "$0")/.." || exit 1
top=$(pwd)
work=${DEB_WORK:-$(mktemp -d /tmp/pop3d-deb.XXXXXX)}
out=${DEB_OUT:-$top/_build}
passed=0; failed=0; n=0

ok() { n=$((n + 1)); passed=$((passed + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { desc=$1; shift; if "$@" >/dev/null 2>&1; then ok "$desc"; else notok "$desc"; fi; }
finish() {
  if [ "$failed" -eq 0 ] && [ -z "${DEB_WORK:-}" ]; then rm -rf "$work"
  elif [ "$failed" -ne 0 ]; then echo "# build log and scratch root kept in $work"; fi
  echo "deb: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]; exit $?
}

# Build dependencies: those of the build (scripts/deps.sh --build: the Build-Depends
# of debian/control, not the test suite's packages) plus the packaging tools.
if [ -z "${SKIP_DEPS:-}" ]; then
  scripts/deps.sh --build >/dev/null || { notok "build dependencies installed"; finish; }
  missing=""
  for p in debhelper dpkg-dev fakeroot; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "deb-check: missing packages:$missing (run as root to install them)" >&2
      notok "build dependencies installed"; finish
    fi
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
      >/dev/null || { notok "build dependencies installed"; finish; }
  fi
fi

# A clean copy of the tree: the files git tracks plus new ones it doesn't ignore,
# without build directories or leftovers of an earlier package build.
src=$work/pop3d
rm -rf "$src" && mkdir -p "$src" || exit 1
if git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -co --exclude-standard -z |
    tr '\0' '\n' |
    grep -vE '^(_build|debian/(pop3d/|tmp/|\.debhelper/|files$|debhelper-build-stamp$|.*\.substvars$|.*\.debhelper\.log$))' |
    while IFS= read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done |
    tar -cf - -T - | tar -xf - -C "$src"
else
  tar -cf - --exclude='./_build*' --exclude=./autom4te.cache --exclude=./.git \
    --exclude=./debian/pop3d --exclude=./debian/tmp --exclude=./debian/.debhelper . |
    tar -xf - -C "$src"
fi
[ -f "$src/debian/rules" ] || { notok "source copied to $src"; finish; }

# Build.  dh_autoreconf regenerates the build system in the copy.
if (cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
  ok "dpkg-buildpackage -us -uc -b"
else
  tail -60 "$work/build.log"; notok "dpkg-buildpackage -us -uc -b (log: $work/build.log)"
  finish
fi
version=$(cd "$src" && dpkg-parsechangelog -S Version)
deb=$work/pop3d_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb
if [ ! -f "$deb" ]; then notok "pop3d .deb built ($deb)"; finish; fi
ok "built $(basename "$deb")"
mkdir -p "$out" && cp "$deb" "$out/" && echo "# package: $out/$(basename "$deb")"

# Contents: dpkg-deb -c lists them, dpkg -x unpacks them into a scratch root.
dpkg-deb -c "$deb" >"$work/contents" 2>&1
root=$work/root
rm -rf "$root"
if ! dpkg -x "$deb" "$root"; then notok "dpkg -x into $root"; finish; fi
ok "dpkg -x into scratch root"
sbin=$root/usr/sbin/pop3d
popauth=$root/usr/bin/popauth
[ -x "$popauth" ] || popauth=$root/usr/sbin/popauth
for f in ./usr/sbin/pop3d ./etc/pop3d.conf ./etc/pam.d/gnu-pop3d \
         ./usr/share/man/man8/pop3d.8.gz ./usr/share/man/man5/pop3d.conf.5.gz \
         ./usr/share/man/man8/popauth.8.gz ./usr/share/info/pop3d.info.gz \
         ./lib/systemd/system/pop3d.service ./lib/systemd/system/pop3d.socket \
         './lib/systemd/system/pop3d@.service' ./lib/systemd/system/pop3s.socket \
         './lib/systemd/system/pop3s@.service' ./etc/xinetd.d/pop3d \
         ./etc/fail2ban/filter.d/pop3d.conf ./etc/fail2ban/jail.d/pop3d.conf \
         ./usr/share/doc/pop3d/copyright; do
  check "package contains $f" grep -qF " $f" "$work/contents"
done
check "package contains popauth (bin or sbin)" grep -qE ' \./usr/s?bin/popauth$' "$work/contents"
# The loadable modules, in $(pkglibdir) (/usr/lib/<triplet>/pop3d): each resolves its
# libraries on this host, and pop3d itself links none of their client libraries.
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for m in sql ldap tcpwrap; do
  check "package contains the module /usr/lib/$multiarch/pop3d/$m.so" \
    grep -qE " \./usr/lib/$multiarch/pop3d/$m\.so\$" "$work/contents"
done
check "no info dir file" sh -c "! grep -qE ' \./usr/share/info/dir' '$work/contents'"

# The programs run from the scratch root with the system's libraries.
check "pop3d --version runs from the scratch root" "$sbin" --version
check "popauth --version runs from the scratch root" "$popauth" --version
for m in sql ldap tcpwrap; do
  check "the module $m.so finds its libraries" sh -c \
    "ldd '$root/usr/lib/$multiarch/pop3d/$m.so' >'$work/ldd-$m' && ! grep -q 'not found' '$work/ldd-$m'"
done
check "pop3d links no SQL, LDAP or libwrap client (they are the modules')" sh -c \
  "ldd '$sbin' >'$work/ldd-pop3d' && ! grep -qE 'libmariadb|libpq|libldap|liblber|libwrap' '$work/ldd-pop3d'"
check "popauth links no SQL, LDAP or libwrap client" sh -c \
  "! ldd '$popauth' | grep -qE 'libmariadb|libpq|libldap|liblber|libwrap'"
# Run as root, lint also checks the privsep user, which only the package's postinst
# creates (on the host it is checked in a namespace below): name one this host has.
check "pop3d --config-lint accepts the packaged /etc/pop3d.conf" \
  "$sbin" --config-lint --config-file="$root/etc/pop3d.conf" --set=privsep-user=nobody
# The packaged sql.so and ldap.so load into the packaged pop3d (POP3D_MODULE_DIR names
# them in the scratch root): lint loads the modules the configuration uses.
check "pop3d --config-lint loads the packaged sql.so and ldap.so" \
  env POP3D_MODULE_DIR="$root/usr/lib/$multiarch/pop3d" "$sbin" --config-lint \
  --config-file="$root/etc/pop3d.conf" --set=privsep-user=nobody --set=sql.interface=mysql \
  --set="sql.getpass=SELECT pw FROM u WHERE n='\$user'" --set=ldap.enable=yes \
  --set=auth.authentication=sql:ldap

# Control data: conffiles and the relations to other POP3 servers.
ctl=$work/control
rm -rf "$ctl" && dpkg-deb -e "$deb" "$ctl"
check "conffiles lists /etc/pop3d.conf" grep -qx /etc/pop3d.conf "$ctl/conffiles"
check "conffiles lists /etc/pam.d/gnu-pop3d" grep -qx /etc/pam.d/gnu-pop3d "$ctl/conffiles"
for field in Provides Conflicts Replaces; do
  check "$field: pop3-server" sh -c "dpkg-deb -f '$deb' $field | grep -qw pop3-server"
done
check "Depends has the shared libraries" sh -c "dpkg-deb -f '$deb' Depends | grep -q libc6"
check "Depends has the modules' libraries (libmariadb3, libpq5, libldap, libwrap0)" sh -c \
  "dpkg-deb -f '$deb' Depends | grep -q libmariadb3 && dpkg-deb -f '$deb' Depends | grep -q libpq5 &&
   dpkg-deb -f '$deb' Depends | grep -q libldap && dpkg-deb -f '$deb' Depends | grep -q libwrap0"
check "the package has a postrm" test -x "$ctl/postrm"
check "postrm removes the user pop3d on purge" grep -q 'deluser --system' "$ctl/postrm"
# Installed, not enabled or started: postinst re-enables a unit only if the
# administrator had enabled it (was-enabled), and starts nothing.
check "postinst doesn't enable pop3d on a new install" \
  sh -c "! grep -q 'was-enabled defaults to true' '$ctl/postinst'"
check "postinst doesn't start pop3d" \
  sh -c "! grep -qE 'deb-systemd-invoke|systemctl.*(start|restart)' '$ctl/postinst'"

# The unpacked daemon serves a session in inetd mode with the packaged configuration
# (its pre-login worker as nobody in an empty directory of ours: the scratch root's
# postinst did not run, so there is no pop3d user on this host).
mkdir -p "$work/empty" && chmod 755 "$work/empty"
check "pop3d -i from the scratch root greets and answers CAPA" sh -c \
  "printf 'CAPA\\r\\nQUIT\\r\\n' | '$sbin' -i --config-file='$root/etc/pop3d.conf' \
     --set=logging.syslog=no --set=privsep-user=nobody --set=privsep-chroot='$work/empty' \
     2>/dev/null | tr -d '\\r' | grep -qx IMPLEMENTATION.pop3d"

# apt resolves the dependencies from the archive and would replace the other
# providers of pop3-server (simulation only: nothing is installed or removed).
if apt-get install -s "$deb" >"$work/apt-sim" 2>&1; then
  check "apt-get install -s installs pop3d" grep -q '^Inst pop3d ' "$work/apt-sim"
  for p in $(dpkg-query -W -f='${Package} ${Status} ${Provides}\n' 2>/dev/null |
             awk '/install ok installed/ && /pop3-server/ && $1 != "pop3d" { print $1 }'); do
    check "apt-get install -s replaces $p (Conflicts: pop3-server)" \
      grep -q "^Remv $p " "$work/apt-sim"
  done
else
  sed 's/^/# /' "$work/apt-sim" | tail -20; notok "apt-get install -s resolves the dependencies"
fi

# A real installation into a scratch root with dpkg --root: the maintainer scripts
# run outside it with DPKG_ROOT set (--force-script-chrootless), so they must not
# touch the host; the libraries come from the host, hence --force-depends.
droot=$work/dpkg-root
rm -rf "$droot" && mkdir -p "$droot/var/lib/dpkg/info" "$droot/var/lib/dpkg/updates" &&
  : >"$droot/var/lib/dpkg/status"
host_units() {
  find /var/lib/systemd/deb-systemd-helper-enabled /etc/systemd/system 2>/dev/null | sort
}
host_units >"$work/host-systemd.before"
dpkg_root() { dpkg --root="$droot" --force-script-chrootless --force-not-root "$@"; }
if dpkg_root --force-depends -i "$deb" >"$work/dpkg-root.log" 2>&1; then
  ok "dpkg --root installs the package (maintainer scripts included)"
  check "dpkg --root: pop3d is installed" sh -c \
    "dpkg-query --admindir='$droot/var/lib/dpkg' -W -f='\${Status}' pop3d | grep -q 'install ok installed'"
  check "dpkg --root: /etc/pop3d.conf is a registered conffile" sh -c \
    "dpkg-query --admindir='$droot/var/lib/dpkg' -W -f='\${Conffiles}' pop3d | grep -q '^ /etc/pop3d.conf '"
  check "dpkg --root: the installed pop3d lints the installed configuration" \
    "$droot/usr/sbin/pop3d" --config-lint --config-file="$droot/etc/pop3d.conf" \
    --set=privsep-user=nobody
  check "dpkg --root: postinst made the privsep-chroot /var/lib/pop3d/empty (root, 0755, empty)" \
    sh -c "[ \"\$(stat -c '%U %a' '$droot/var/lib/pop3d/empty')\" = 'root 755' ] &&
           [ -z \"\$(ls -A '$droot/var/lib/pop3d/empty')\" ]"
  check "dpkg --root: no unit enabled" sh -c \
    "! find '$droot/etc/systemd' -name 'pop3d*' 2>/dev/null | grep -q ."
  host_units >"$work/host-systemd.after"
  check "the host's systemd state is untouched" \
    cmp "$work/host-systemd.before" "$work/host-systemd.after"
  if dpkg_root --purge pop3d >>"$work/dpkg-root.log" 2>&1; then
    ok "dpkg --root purges the package"
    check "dpkg --root: purge leaves no file behind" sh -c \
      "! find '$droot/etc' '$droot/usr' '$droot/lib' -type f 2>/dev/null | grep -q ."
    check "dpkg --root: purge removes /var/lib/pop3d" test ! -e "$droot/var/lib/pop3d"
  else
    sed 's/^/# /' "$work/dpkg-root.log" | tail -20; notok "dpkg --root purges the package"
  fi
else
  sed 's/^/# /' "$work/dpkg-root.log" | tail -20
  notok "dpkg --root installs the package (maintainer scripts included)"
fi

# The user and group: the maintainer scripts run for real (DPKG_ROOT unset) in a mount
# namespace where /etc is a copy of the host's and /var/lib, /var/log and /run are
# scratch directories, so that adduser and deluser edit the copy and the host is left
# alone.  Skipped where no mount namespace can be made.
ns=$work/ns
in_ns() {
  # shellcheck disable=SC2016
  unshare --mount sh -c 'mount --make-rprivate / && mount --bind "$0/etc" /etc &&
    mount --bind "$0/lib" /var/lib && mount --bind "$0/log" /var/log &&
    mount --bind "$0/run" /run && exec "$@"' "$ns" "$@"
}
if [ "$(id -u)" = 0 ] && unshare --mount true 2>/dev/null; then
  rm -rf "$ns" && mkdir -p "$ns/lib" "$ns/log" "$ns/run" && cp -a /etc "$ns/etc"
  cp /etc/passwd "$work/passwd.host"
  # A host with a pop3d user already: start the copy without it.
  if grep -q '^pop3d:' "$ns/etc/passwd"; then in_ns deluser --system --quiet pop3d; fi
  if grep -q '^pop3d:' "$ns/etc/group"; then in_ns delgroup --quiet pop3d; fi
  check "postinst configure runs (DPKG_ROOT unset)" in_ns "$ctl/postinst" configure
  gid=$(awk -F: '$1 == "pop3d" { print $3 }' "$ns/etc/group")
  check "postinst made the group pop3d" test -n "$gid"
  check "postinst made the system user pop3d (group pop3d, no home, no login)" \
    grep -qE "^pop3d:[^:]*:[0-9]+:$gid:[^:]*:/nonexistent:/usr/sbin/nologin\$" \
    "$ns/etc/passwd"
  check "postinst made /var/lib/pop3d/empty" test -d "$ns/lib/pop3d/empty"
  check "postrm purge runs" in_ns "$ctl/postrm" purge
  check "postrm purge removed the user pop3d" sh -c "! grep -q '^pop3d:' '$ns/etc/passwd'"
  check "postrm purge removed the group pop3d" sh -c "! grep -q '^pop3d:' '$ns/etc/group'"
  check "postrm purge removed /var/lib/pop3d" test ! -e "$ns/lib/pop3d"
  check "the host's users are untouched" cmp /etc/passwd "$work/passwd.host"
else
  n=$((n + 1)); passed=$((passed + 1))
  echo "ok $n - postinst and postrm make and remove the user # SKIP no mount namespace"
fi

# lintian, when it is installed (it is not a dependency of this check).
if command -v lintian >/dev/null 2>&1; then
  if lintian --fail-on error "$deb" >"$work/lintian.out" 2>&1; then ok "lintian: no errors"
  else sed 's/^/# /' "$work/lintian.out" | head -30; notok "lintian: no errors"; fi
fi

finish
