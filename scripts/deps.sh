#!/bin/sh
# Install what pop3d needs to build and to run its tests (Debian 12).
set -e
pkgs="build-essential autoconf automake libtool pkg-config texinfo
  libgnutls28-dev libgdbm-dev libpam0g-dev libwrap0-dev libcrypt-dev
  python3 python3-pytest python3-gdbm curl gnutls-bin fetchmail
  libpam-wrapper libnss-wrapper libuid-wrapper"
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
