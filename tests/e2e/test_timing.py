"""Harvesting defence, measured: the answer to PASS for an unknown user must take the
same time as the answer for a known user with a wrong password (auth.c hashes a dummy
password when no module did).  Many trials of each kind, interleaved in random order,
compared as distributions with a Mann-Whitney U test; no fixed time thresholds.

Every trial is the first failure of a fresh session, so each answer carries the same
growing-delay pause (login_failure_delay(1)); sessions run in parallel batches to keep
the wall time down, and both kinds share every batch."""
import math
import os
import random
import statistics
import subprocess
import threading
import time
import warnings

import pytest

TRIALS = 40         # per kind and per authentication setup
BATCH = 16          # sessions waiting on their answer at once
STAGGER = 0.04      # seconds between the PASS commands of a batch


def sha512_crypt(password):
    out = subprocess.run(["openssl", "passwd", "-6", password], capture_output=True,
                         text=True)
    if out.returncode != 0:
        pytest.skip("openssl passwd -6 is not available")
    return out.stdout.strip()


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
        r = (i + j) / 2.0 + 1
        for k in range(i, j + 1):
            ranks[k] = r
        t = j - i + 1
        ties += t ** 3 - t
        i = j + 1
    r1 = sum(r for r, (_, g) in zip(ranks, pooled) if g == 0)
    u = r1 - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    mu = n1 * n2 / 2.0
    sigma = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))))
    if sigma == 0:
        return 1.0
    z = (abs(u - mu) - 0.5) / sigma
    return max(0.0, min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2))))


def test_mann_whitney_detects_a_shift():
    """The comparison itself: blind to order, sharp on a real difference."""
    rng = random.Random(7)
    a = [rng.gauss(1.0, 0.002) for _ in range(TRIALS)]
    b = [rng.gauss(1.0, 0.002) for _ in range(TRIALS)]
    assert mann_whitney(a, b) > 0.001
    # One SHA-512 crypt (about 4 ms) missing, under 2 ms of noise.
    c = [x + 0.004 for x in b]
    assert mann_whitney(a, c) < 0.001
    assert mann_whitney([1.0] * 5, [1.0] * 5) == 1.0


def measure(site, known, unknown, wrong):
    kinds = ["known"] * TRIALS + ["unknown"] * TRIALS
    random.shuffle(kinds)
    times = {"known": [], "unknown": []}
    replies = set()
    lock = threading.Lock()

    def run(sess, kind, offset):
        time.sleep(offset)
        t0 = time.perf_counter()
        r = sess.cmd("PASS " + wrong)
        dt = time.perf_counter() - t0
        with lock:
            times[kind].append(dt)
            replies.add(r)

    for start in range(0, len(kinds), BATCH):
        batch = kinds[start:start + BATCH]
        sessions = []
        try:
            for kind in batch:
                s = site.inetd()
                assert s.cmd("USER " + (known if kind == "known" else unknown)) \
                    .startswith("+OK")
                sessions.append((s, kind))
            # The PASS commands go out STAGGER apart: the waits overlap, the hashing
            # (a few ms each) mostly does not.
            threads = [threading.Thread(target=run, args=(s, kind, i * STAGGER))
                       for i, (s, kind) in enumerate(sessions)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        finally:
            for s, _ in sessions:
                s.close()
        site.procs = [p for p in site.procs if p.poll() is None]
    assert replies == {"-ERR [AUTH] Bad login"}, replies
    assert len(times["known"]) == TRIALS and len(times["unknown"]) == TRIALS
    return times["known"], times["unknown"]


def write_shadow(site, entries):
    path = os.path.join(site.dir, "shadow")
    with open(path, "w") as f:
        for user, hash_ in entries:
            f.write("%s:%s:19000:0:99999:7:::\n" % (user, hash_))
    site.write_conf(auth="auth { authentication system; authorization system; };")
    env = site.env()
    env["NSS_WRAPPER_SHADOW"] = path
    site.env = lambda: env


def compare(known, unknown):
    p = mann_whitney(known, unknown)
    ms = lambda v: "median %.2f ms (IQR %.2f..%.2f)" % tuple(
        1000 * x for x in (statistics.median(v), *statistics.quantiles(v, n=4)[::2]))
    report = "wrong password: %s; unknown user: %s; Mann-Whitney p = %.4f" % (
        ms(known), ms(unknown), p)
    print(report)
    assert p > 0.001, report


def test_unknown_user_costs_as_much_as_wrong_password_pam(site):
    """The default harness: PAM (pam_matrix)."""
    site.write_mbox([])
    known, unknown = measure(site, "alice", "nosuchuser", "not-the-password")
    compare(known, unknown)


def test_unknown_user_costs_as_much_as_wrong_password_system(site):
    """The system module over a shadow file of SHA-512 crypt hashes: a real hash for
    alice, the dummy (same method and cost, learned from the shadow file) otherwise."""
    write_shadow(site, [("alice", sha512_crypt("shadow-pass")),
                        ("bob", sha512_crypt("bob-shadow-pass"))])
    site.write_mbox([])
    known, unknown = measure(site, "alice", "nosuchuser", "not-the-password")
    compare(known, unknown)


def test_measurement_sees_a_real_difference(site):
    """The same measurement is sharp enough to see a cost difference: alice's hash has
    ten times the default rounds while the dummy copies bob's (the first SHA-512 hash
    of the shadow file), so a wrong password for alice costs visibly more."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt")
    slow = crypt.crypt("shadow-pass", "$6$rounds=50000$timingSaltX$")
    if not slow or not slow.startswith("$6$rounds=50000$"):
        pytest.skip("crypt(3) does not take SHA-512 rounds")
    write_shadow(site, [("bob", sha512_crypt("bob-shadow-pass")), ("alice", slow)])
    site.write_mbox([])
    known, unknown = measure(site, "alice", "nosuchuser", "not-the-password")
    p = mann_whitney(known, unknown)
    print("slow hash for alice: wrong password median %.2f ms, unknown user median "
          "%.2f ms, p = %.2g" % (1000 * statistics.median(known),
                                 1000 * statistics.median(unknown), p))
    assert p < 0.001 and statistics.median(known) > statistics.median(unknown), (
        p, statistics.median(known), statistics.median(unknown))
