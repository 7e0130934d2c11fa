#!/bin/sh
# Install what the benchmark needs (Debian 12, as root): the peers pop3d is compared with
# (Dovecot's pop3, GNU Mailutils pop3d, popa3d), openssl (certificate, s_time), socat
# (popa3d's inetd), matplotlib (the charts) and what bench/timing.py needs (pytest and
# the PAM, NSS and uid wrappers of the end-to-end tests).  No service is started: the
# benchmark starts each server itself on free 127.0.0.1 ports.
#
# popa3d, dovecot-pop3d and mailutils-pop3d all provide and conflict with pop3-server:
# apt would remove the other two to install popa3d.  So popa3d's package is only
# unpacked, into $POPA3D_DIR (default /usr/local/lib/pop3d-bench/popa3d): bench/run runs
# its /usr/sbin/popa3d from there and gives it what the package's scripts would have
# made (its user, its chroot directory, its PAM service) in a mount namespace of its own.
set -e
export DEBIAN_FRONTEND=noninteractive
POPA3D_DIR=${POPA3D_DIR:-/usr/local/lib/pop3d-bench/popa3d}
apt-get install -y -qq --no-install-recommends dovecot-pop3d mailutils-pop3d openssl \
    socat python3 python3-matplotlib python3-pytest libpam-wrapper libnss-wrapper \
    libuid-wrapper
if [ ! -x "$POPA3D_DIR/usr/sbin/popa3d" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && apt-get download popa3d 2>/dev/null)
    mkdir -p "$POPA3D_DIR"
    dpkg-deb -x "$tmp"/popa3d_*.deb "$POPA3D_DIR"
    dpkg-deb -f "$tmp"/popa3d_*.deb Version > "$POPA3D_DIR/VERSION"
fi
"$POPA3D_DIR/usr/sbin/popa3d" -V
