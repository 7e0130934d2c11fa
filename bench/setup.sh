#!/bin/sh
# Install the peers the benchmarks compare pop3d with (Debian 12): Dovecot's pop3 and GNU
# Mailutils pop3d.  Their services are not started (no runlevel in a build machine; the
# benchmark starts each server itself on a free 127.0.0.1 port).
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq dovecot-pop3d mailutils-pop3d python3
