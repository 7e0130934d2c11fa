#!/bin/sh
# Install what pop3d needs to build and to run its tests (Debian 12).
set -e
# --build: only what building and running pop3d needs (the demo); otherwise also what the
# test suite needs: the cwrap libraries, real clients and the peers it compares with.
build_pkgs="build-essential autoconf automake libtool pkg-config texinfo
  libgnutls28-dev libgdbm-dev libpam0g-dev libwrap0-dev libcrypt-dev libseccomp-dev
  libldap2-dev nettle-dev libmariadb-dev libpq-dev python3 curl"
test_pkgs="python3-pytest python3-gdbm gnutls-bin fetchmail mpop fail2ban
  libpam-wrapper libnss-wrapper libuid-wrapper dovecot-pop3d mailutils-pop3d
  gdb btrfs-progs systemd openssl groff-base slapd ldap-utils
  mariadb-server mariadb-client postgresql liblockfile-bin"
if [ "${1:-}" = "--build" ]; then pkgs=$build_pkgs; else pkgs="$build_pkgs $test_pkgs"; fi
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing packages:$missing (run as root to install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
