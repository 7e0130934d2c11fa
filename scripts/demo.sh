#!/bin/sh
# Install the build dependencies, build pop3d, and run it in the foreground on 127.0.0.1
# with a self-contained demo configuration and maildrop.  Creates no system user and
# touches nothing in /etc: the demo user lives in a virtdomain password file under the
# demo directory and its maildrop (HOME/INBOX, as virtdomain says) is owned by the
# unprivileged user `nobody`; the part of each session before login runs as the system
# user `daemon` (a real site has a `pop3d' user of its own), confined to an empty
# directory under the demo directory.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
port=${PORT:-1110}
scripts/deps.sh --build
./bootstrap >/dev/null 2>&1 || ./bootstrap
mkdir -p _build && cd _build
[ -f Makefile ] || "$top/configure" >/dev/null
make -j2 >/dev/null
demo=$(mktemp -d /tmp/pop3d-demo.XXXXXX)
chmod 755 "$demo"
uid=$(id -u nobody 2>/dev/null || echo 65534)
gid=$(id -g nobody 2>/dev/null || echo 65534)
mkdir -p "$demo/domains" "$demo/home" "$demo/empty"
chmod 755 "$demo/empty"
hash=$(python3 -c 'import crypt,sys; print(crypt.crypt("demo", crypt.mksalt(crypt.METHOD_SHA512)))' 2>/dev/null ||
       openssl passwd -6 demo)
echo "demo:$hash:$uid:$gid:Demo user:$demo/home:/bin/false" > "$demo/domains/pop3d.test"
{
  for i in 1 2 3; do
    printf 'From demo@pop3d.test Mon Nov 23 10:00:0%s 2026\n' "$i"
    printf 'From: pop3d demo <demo@pop3d.test>\nTo: demo@pop3d.test\n'
    printf 'Subject: demo message %s\nMessage-ID: <demo-%s@pop3d.test>\n\n' "$i" "$i"
    printf 'Hello from pop3d, message %s.\n\n' "$i"
  done
} > "$demo/home/INBOX"
cat > "$demo/pop3d.conf" <<CONF
# Demo configuration: see doc/pop3d.conf.5 for every statement.
logging { syslog no; };
auth { authentication virtdomain; authorization virtdomain; };
virtdomain { passwd-dir "$demo/domains"; };
privsep-user daemon;
privsep-chroot "$demo/empty";
server 127.0.0.1:$port { };
CONF
if [ "$(id -u)" = 0 ]; then
  chown -R "$uid:$gid" "$demo/home"
  chmod 700 "$demo/home"
fi
cat <<MSG

pop3d demo: listening on 127.0.0.1:$port (configuration: $demo/pop3d.conf)
  list the demo mail:   curl -u 'demo@pop3d.test:demo' pop3://127.0.0.1:$port/
  fetch message 1:      curl -u 'demo@pop3d.test:demo' pop3://127.0.0.1:$port/1
  talk POP3 yourself:   telnet 127.0.0.1 $port   (USER demo@pop3d.test, PASS demo)
Press Ctrl-C to stop.

MSG
exec ./pop3d --foreground -d10 --config-file="$demo/pop3d.conf"
