#!/usr/bin/env python3
"""Does the time of a refused login tell whether the user exists?  Many refused logins
of a known user (wrong password) and of an unknown one, interleaved in random order and
run 8 at a time, against one pop3d per authentication setup; the two kinds are compared
as distributions (medians, p90, Mann-Whitney U test), with no threshold to pass.

The setups are those of the end-to-end tests (tests/e2e/conftest.py: users from
nss_wrapper, PAM through pam_wrapper and pam_matrix, identities through uid_wrapper):

  pam       authentication pam (pam_matrix's passwords)
  system    authentication system: SHA-512 crypt hashes in a shadow file
  default   Mailutils' default list, generic:system:pam:virtdomain, alice with a hash
            in passwd (generic's): a password store or two, and PAM, for everyone
  scram     AUTH SCRAM-SHA-256 against the APOP database (a wrong proof)
  control   system, with alice's hash at ten times the rounds of the others (which the
            dummy hash copies): the one setup where the two kinds must differ, to show
            that the measure would see a missing hash

Every attempt is the first failure of a fresh session, so each answer carries the same
failure delay (1 s); the time is from the command that carries the credentials to its
answer.  Login penalties and the per-source limit are off when the binary has them: the
attempts all come from 127.0.0.1.  Needs libpam-wrapper, libnss-wrapper, libuid-wrapper
and a Python with pytest (the harness is the test suite's):

    bench/timing.py --pop3d _build/pop3d [--attempts 200] [--concurrency 8]
                    [--setups pam,system,default,scram,control]
                    [--report FILE] [--plot FILE] [--json FILE]

The report is Markdown, on standard output and in --report; --plot draws the
distributions when matplotlib is installed; --json writes the summary (bench/run
includes it in its report).
"""
import argparse
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
import crypt  # noqa: E402  (Debian 12's Python 3.11 still has it)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import Client, free_port, wait_port  # noqa: E402

KNOWN, UNKNOWN = "alice", "nosuchuser"
WRONG = "not-the-password"
FAILED = re.compile(r"authentication failed for (\S+) from \S+: [^:]+: (.*)$")


def harness(binary):
    """The end-to-end test modules, for this binary."""
    os.environ["POP3D"] = os.path.abspath(binary)
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
    import conftest
    import test_apop
    import test_auth_reasons
    import test_scram
    if not (conftest.PAM_WRAPPER and conftest.NSS_WRAPPER and conftest.UID_WRAPPER
            and conftest.PAM_MATRIX):
        sys.exit("needs libpam-wrapper, libnss-wrapper and libuid-wrapper")
    return conftest, test_apop, test_auth_reasons, test_scram


def mann_whitney(a, b):
    """Two-sided p-value of the Mann-Whitney U test (normal approximation with tie and
    continuity corrections)."""
    n1, n2 = len(a), len(b)
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2.0 + 1
        t = j - i + 1
        ties += t ** 3 - t
        i = j + 1
    r1 = sum(r for r, (_, g) in zip(ranks, pooled) if g == 0)
    u = r1 - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))))
    if sigma == 0:
        return 1.0
    z = (abs(u - n1 * n2 / 2.0) - 0.5) / sigma
    return max(0.0, min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2))))


def ask(c, line):
    """One command line and its answer, whatever it is."""
    c.s.sendall(line.encode() + b"\r\n")
    return c.line().decode("latin-1").rstrip("\r\n")


def pass_attempt(port, user):
    c = Client(port)
    try:
        c.cmd("USER " + user)
        t0 = time.perf_counter()
        answer = ask(c, "PASS " + WRONG)
        return time.perf_counter() - t0, answer
    finally:
        c.close()


def scram_attempt(scram, port, user):
    c = Client(port)
    try:
        x = scram.Scram(user, WRONG)
        r = ask(c, "AUTH SCRAM-SHA-256 " + scram.b64(x.first()))
        if not r.startswith("+ "):
            raise RuntimeError("AUTH SCRAM-SHA-256 -> %r" % r)
        final = scram.b64(x.final(scram.unb64(r[2:])))   # the client's Hi() is not timed
        t0 = time.perf_counter()
        answer = ask(c, final)
        return time.perf_counter() - t0, answer
    finally:
        c.close()


def statements(binary):
    out = subprocess.run([binary, "--config-help"], capture_output=True, text=True).stdout
    return set(re.findall(r"^\s*([a-z][a-z0-9-]*) ", out, re.M))


class Setup:
    """One pop3d standalone listener over a harness site."""
    def __init__(self, conftest, binary, root):
        self.binary = binary
        self.site = conftest.Site(root)
        known = statements(binary)
        self.tuning = "".join("%s 0;\n" % s for s in ("login-penalty-max",
                                                       "max-preauth-per-source")
                              if s in known)

    def start(self, auth, extra=""):
        self.port = free_port()
        self.site.write_conf("%s%s\nserver 127.0.0.1:%d { };\n" % (self.tuning, extra,
                                                                   self.port), auth=auth)
        env = self.site.env()
        self.log = os.path.join(self.site.dir, "pop3d.log")
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen([self.binary, "-d100", "--foreground",
                                          "--config-file=" + self.site.conf],
                                         stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err, env=env)
        self.site.procs.append(self.proc)
        try:
            wait_port(self.port, self.proc)
        except RuntimeError as e:
            with open(self.log, errors="replace") as f:
                raise RuntimeError("%s: %s" % (e, f.read().strip())) from None

    def reasons(self):
        """The logged reasons of the refused logins, per user."""
        out = {}
        with open(self.log, errors="replace") as f:
            for m in map(FAILED.search, f):
                if m:
                    out.setdefault(m.group(1), {}).setdefault(m.group(2), 0)
                    out[m.group(1)][m.group(2)] += 1
        return out

    def stop(self):
        self.site.cleanup()


def sha512(password, setting=None):
    return crypt.crypt(password, setting or crypt.mksalt(crypt.METHOD_SHA512))


def prepare(name, setup, mods):
    """Configure and start setup for name; the attempt function (port, user)."""
    _, test_apop, files, test_scram = mods
    site = setup.site
    if name == "pam":
        setup.start("auth { authentication pam; authorization system; };")
    elif name in ("system", "control"):
        alice = sha512("shadow-pass")
        if name == "control":
            alice = sha512("shadow-pass", "$6$rounds=50000$%s$" % crypt.mksalt()[3:])
        # bob comes first: the dummy hash copies the first hash of the commonest method.
        files.shadow_with(site, [("bob", sha512("bob-shadow-pass")), ("alice", alice)])
        setup.start("auth { authentication system; authorization system; };")
    elif name == "default":
        files.passwd_with_hash(site, KNOWN, sha512("passwd-pass"))
        files.shadow_with(site, [("bob", sha512("bob-shadow-pass"))])
        domains = files.domain_with(site, "example.org", [("carol", sha512("carol-pw"))])
        setup.start("auth { authentication generic:system:pam:virtdomain; "
                    "authorization generic; };",
                    'virtdomain { passwd-dir "%s"; };' % domains)
    elif name == "scram":
        db = test_apop.text_db(site)
        setup.start("auth { authentication pam; authorization system; };",
                    'apop-database-file "%s";\napop-database-owner %d;\n' % (db,
                                                                            os.getuid()))
        return lambda port, user: scram_attempt(test_scram, port, user)
    else:
        raise SystemExit("unknown setup " + name)
    return pass_attempt


def measure(attempt, port, attempts, concurrency):
    """attempts refused logins of each kind, in random order, concurrency at a time."""
    kinds = ["known"] * attempts + ["unknown"] * attempts
    random.shuffle(kinds)
    times = {"known": [], "unknown": []}
    answers, failures = set(), []
    lock = threading.Lock()
    todo = iter(kinds)

    def worker():
        while True:
            with lock:
                kind = next(todo, None)
            if kind is None or failures:
                return
            try:
                dt, answer = attempt(port, KNOWN if kind == "known" else UNKNOWN)
            except Exception as e:       # noqa: BLE001  (reported below)
                with lock:
                    failures.append(e)
                return
            with lock:
                times[kind].append(dt)
                answers.add(answer)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return times, answers


def ms(v):
    return "%.1f" % (1000 * v)


def summary(name, times, answers, reasons):
    known, unknown = times["known"], times["unknown"]
    p = mann_whitney(known, unknown)
    q = {k: statistics.quantiles(v, n=10) for k, v in times.items()}
    return {
        "setup": name, "p": p, "answers": sorted(answers),
        "diff": statistics.median(unknown) - statistics.median(known),
        "rows": [(k, len(v), statistics.median(v), q[k][8]) for k, v in
                 (("known", known), ("unknown", unknown))],
        "reasons": {KNOWN: reasons.get(KNOWN, {}), UNKNOWN: reasons.get(UNKNOWN, {})},
    }


def report(results, args):
    out = ["# Refused logins: a known user's wrong password against an unknown user", "",
           "pop3d `%s`; %d attempts of each kind per setup, %d at once, in random order; "
           "time from the command with the credentials to its answer (the 1 s failure "
           "delay included), in ms." % (args.pop3d, args.attempts, args.concurrency), "",
           "| setup | kind | n | median (p50) | p90 |", "|---|---|---|---|---|"]
    for r in results:
        for kind, n, med, p90 in r["rows"]:
            out.append("| %s | %s | %d | %s | %s |" % (r["setup"], kind, n, ms(med),
                                                      ms(p90)))
    out += ["", "| setup | unknown - known (medians) | Mann-Whitney p | answers |",
            "|---|---|---|---|"]
    for r in results:
        out.append("| %s | %+.1f ms | %.3g | %s |" % (
            r["setup"], 1000 * r["diff"], r["p"], ", ".join(r["answers"])))
    out += ["", "Reasons logged:", ""]
    for r in results:
        for user, rs in r["reasons"].items():
            out.append("- %s, %s: %s" % (r["setup"], user, "; ".join(
                "%s (%d)" % kv for kv in sorted(rs.items())) or "none"))
    return "\n".join(out) + "\n"


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot."
    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 4),
                             squeeze=False)
    for ax, r in zip(axes[0], results):
        ax.boxplot([[1000 * t for t in r["times"][k]] for k in ("known", "unknown")],
                   labels=["known, wrong password", "unknown"])
        ax.set_title("%s (p = %.2g)" % (r["setup"], r["p"]))
        ax.set_ylabel("ms to the answer")
    fig.tight_layout()
    fig.savefig(path)
    return "Plot: %s" % path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pop3d", default=os.path.join(HERE, "..", "_build", "pop3d"))
    ap.add_argument("--attempts", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--setups", default="pam,system,default,scram,control")
    ap.add_argument("--report")
    ap.add_argument("--plot", default="timing.png")
    ap.add_argument("--json")
    args = ap.parse_args()
    mods = harness(args.pop3d)
    results = []
    for name in args.setups.split(","):
        root = tempfile.mkdtemp(prefix="pop3d-timing.")
        setup = Setup(mods[0], os.path.abspath(args.pop3d), root)
        try:
            attempt = prepare(name, setup, mods)
            t0 = time.monotonic()
            times, answers = measure(attempt, setup.port, args.attempts, args.concurrency)
            print("# %s: %.0f s" % (name, time.monotonic() - t0), file=sys.stderr)
            setup.stop()
            r = summary(name, times, answers, setup.reasons())
            r["times"] = times
            results.append(r)
        finally:
            setup.stop()
            shutil.rmtree(root, ignore_errors=True)
    text = report(results, args) + "\n" + plot(results, args.plot) + "\n"
    sys.stdout.write(text)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"attempts": args.attempts, "concurrency": args.concurrency,
                       "setups": [{k: v for k, v in r.items() if k != "times"}
                                  for r in results]}, f, indent=1)


if __name__ == "__main__":
    main()
