#!/usr/bin/env python3
"""What privilege separation costs: two pop3d binaries (say the release before it and the
build with it) serving the same users in one run.

Run as root on Debian 12 (the privsep user must exist: adduser --system --group
--no-create-home --home /nonexistent pop3d):

    bench/privsep.py --before OLD/pop3d --after _build/pop3d [--seconds 10]

Measures, for each binary:
  sessions/s    connect, USER, PASS, STAT, QUIT; 8 clients at once, distinct users
  CPU/session   the server's CPU (listener and every process below it) per session
  RETR MB/s     one session RETRieving every message of a ~100 MB mbox, plain and POP3S
                (with privilege separation the POP3S stream goes through the worker's
                relay), best of 3
  RETR CPU s/GB the server's CPU for those RETRs (steadier than MB/s on a loaded machine)
"""
import argparse
import crypt
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (NUSERS, PASSWORD, Client, cpu_of, free_port, wait_port,  # noqa: E402
                   write_mbox)


def run(binary, d, conf_extra, seconds, big_count):
    port, sport = free_port(), free_port()
    conf = os.path.join(d, "pop3d-%d.conf" % port)
    with open(conf, "w") as f:
        f.write("logging { syslog no; severity error; };\n"
                "auth { authentication virtdomain; authorization virtdomain; };\n"
                "virtdomain { passwd-dir \"%s\"; };\nmax-children 100;\n%s\n"
                "tls { ssl-certificate-file \"%s/cert.pem\"; ssl-key-file \"%s/key.pem\"; };\n"
                "server 127.0.0.1:%d { };\nserver 127.0.0.1:%d { tls-mode connection; };\n"
                % (os.path.join(d, "domains"), conf_extra, d, d, port, sport))
    proc = subprocess.Popen([binary, "-d100", "--foreground", "--config-file=" + conf],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    wait_port(port, proc)
    out = {}
    try:
        count = [0] * NUSERS
        stop = time.monotonic() + seconds
        time.sleep(0.3)
        cpu0 = cpu_of(proc.pid)

        def worker(i):
            while time.monotonic() < stop:
                c = Client(port)
                c.login("u%d@bench.test" % i)
                c.cmd("STAT")
                c.cmd("QUIT")
                c.close()
                count[i] += 1
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(NUSERS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        time.sleep(0.5)                     # the last sessions are reaped
        n = sum(count)
        out["sessions/s"] = n / elapsed
        out["CPU ms/session"] = (cpu_of(proc.pid) - cpu0) * 1000 / n
        for name, p, tls in (("RETR plain MB/s", port, False), ("RETR POP3S MB/s", sport, True)):
            best = 0.0
            cpu0, octets = cpu_of(proc.pid), 0
            for _ in range(3):
                c = Client(p, tls, bufsize=1 << 20)
                c.login("big@bench.test")
                t0 = time.monotonic()
                total = 0
                for k in range(1, big_count + 1):
                    c.send(b"RETR %d\r\n" % k)
                    total += c.multi()
                best = max(best, total / (time.monotonic() - t0) / 1e6)
                octets += total
                c.cmd("QUIT")
                c.close()
            time.sleep(0.5)                 # the sessions are reaped: their CPU counted
            out[name] = best
            out[name.replace("MB/s", "CPU s/GB")] = (cpu_of(proc.pid) - cpu0) / (octets / 1e9)
    finally:
        proc.terminate()
        proc.wait(20)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="pop3d-bench-")
    os.chmod(d, 0o755)
    try:
        pw = pwd.getpwnam("nobody")
        h = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512))
        os.mkdir(os.path.join(d, "domains"))
        with open(os.path.join(d, "domains", "bench.test"), "w") as f:
            for u in ["u%d" % i for i in range(NUSERS)] + ["big"]:
                home = os.path.join(d, "home", u)
                os.makedirs(home)
                os.chown(home, pw.pw_uid, pw.pw_gid)
                f.write("%s:%s:%d:%d::%s:/bin/false\n" % (u, h, pw.pw_uid, pw.pw_gid, home))
                write_mbox(os.path.join(home, "INBOX"), 10 if u != "big" else 1100,
                           3 if u != "big" else 1200, pw.pw_uid, pw.pw_gid)
        for args in (["--generate-privkey", "--key-type=ecdsa", "--outfile", d + "/key.pem"],):
            subprocess.run(["certtool"] + args, check=True, capture_output=True)
        with open(d + "/t", "w") as f:
            f.write('cn = "localhost"\nexpiration_days = 30\ntls_www_server\n')
        subprocess.run(["certtool", "--generate-self-signed", "--load-privkey", d + "/key.pem",
                        "--template", d + "/t", "--outfile", d + "/cert.pem"], check=True,
                       capture_output=True)
        os.chmod(d + "/key.pem", 0o600)
        empty = os.path.join(d, "empty")
        os.mkdir(empty)
        results = {"before": [], "after": []}
        for r in range(a.rounds):
            for which, binary in (("before", a.before), ("after", a.after)):
                extra = ""
                if which == "after":
                    extra = 'privsep-chroot "%s";' % empty
                results[which].append(run(binary, d, extra, a.seconds, 1100))
        keys = list(results["before"][0])
        print("%-18s %12s %12s %8s" % ("median of %d" % a.rounds, "before", "after", "ratio"))
        for k in keys:
            b = sorted(x[k] for x in results["before"])[a.rounds // 2]
            f = sorted(x[k] for x in results["after"])[a.rounds // 2]
            print("%-18s %12.2f %12.2f %8.3f" % (k, b, f, f / b))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
