"""The benchmark's report: the metrics, the goals they check, report.md, results.json and
one bar chart per metric."""
import json
import os
import platform
import subprocess

from bench import dpkg_version

PACKAGES = {"dovecot": "dovecot-pop3d", "mailutils": "mailutils-pop3d",
            "popa3d": "popa3d"}
COLOURS = {"pop3d": "#1f77b4", "dovecot": "#ff7f0e", "mailutils": "#2ca02c",
           "popa3d": "#d62728"}

# key, measure, title ({many}, {dele}, {half}: the run's sizes), unit, higher is better
METRICS = [
    ("sessions_s", "sessions", "Sessions/s, 8 clients (USER, PASS, STAT, QUIT)",
     "sessions/s", True),
    ("session_cpu_ms", "sessions", "Server CPU per session", "ms", False),
    ("pop3s_sessions_s", "tls", "POP3S sessions/s, 8 clients", "sessions/s", True),
    ("pop3s_session_cpu_ms", "tls", "Server CPU per POP3S session", "ms", False),
    ("handshakes_s", "tls", "TLS handshakes/s (openssl s_time -new)", "handshakes/s",
     True),
    ("handshake_cpu_ms", "tls", "Server CPU per TLS handshake", "ms", False),
    ("open_cold_s", "open", "{many}-message mbox, PASS to the end of UIDL, cold", "s",
     False),
    ("open_warm_s", "open", "{many}-message mbox, PASS to the end of UIDL, warm", "s",
     False),
    ("maildir_cold_s", "maildir", "{many}-message Maildir, PASS to the end of UIDL, cold",
     "s", False),
    ("maildir_warm_s", "maildir", "{many}-message Maildir, PASS to the end of UIDL, warm",
     "s", False),
    ("mh_cold_s", "mh", "{many}-message MH folder, PASS to the end of UIDL, cold", "s",
     False),
    ("mh_warm_s", "mh", "{many}-message MH folder, PASS to the end of UIDL, warm", "s",
     False),
    ("pss_kib", "pss", "PSS of an idle logged-in session, plain", "KiB", False),
    ("pss_tls_kib", "pss", "PSS of an idle logged-in session, POP3S", "KiB", False),
    ("dele_s", "dele", "{half} DELE, one round trip each", "s", False),
    ("quit_s", "dele", "QUIT after DELE of {half} of {dele} messages", "s", False),
]
# RETR: one command at a time and 8 in flight, plain and POP3S; MB/s and CPU.
METRICS[6:6] = [
    ("retr%s%s_%s" % (d, t, k), "retr", title % ("{big}", how, over), unit, k == "mbs")
    for d, how in (("", "one command at a time"), ("8", "8 commands in flight"))
    for t, over in (("", "plain"), ("_tls", "POP3S"))
    for k, title, unit in (("mbs", "RETR of a %s MB mbox, %s, %s", "MB/s"),
                           ("cpu", "Server CPU for RETR of a %s MB mbox, %s, %s", "s/GB"))]
BY_KEY = {m[0]: m for m in METRICS}
NOTES = {
    "open_cold_s": "Cold: the server's first session on the maildrop (no index or cache "
                   "of its own; the file is in the page cache).",
    "open_warm_s": "Warm: the best of the three sessions after the first.",
    "dele_s": "The best of 3, each on a fresh maildrop.",
    "quit_s": "Timed to the end of the connection; the best of 3.",
    "pss_kib": "The processes that the session added to the server's tree, after a "
               "first session started whatever starts lazily.",
}

# Each goal: its text and its conditions, all to hold: ("abs", key, limit) or
# ("rel", key, factor, peer) with peer a server name or "best" (the best peer).
GOALS = [
    ("sessions/s >= 2x the best peer, with <= 3 ms CPU per session",
     [("rel", "sessions_s", 2.0, "best"), ("abs", "session_cpu_ms", 3.0)]),
    ("TLS handshakes/s >= Dovecot's", [("rel", "handshakes_s", 1.0, "dovecot")]),
    ("POP3S sessions/s >= 4x Dovecot", [("rel", "pop3s_sessions_s", 4.0, "dovecot")]),
    ("RETR CPU <= 0.5 s/GB plain", [("abs", "retr_cpu", 0.5)]),
    ("RETR CPU <= 0.8 s/GB TLS", [("abs", "retr_tls_cpu", 0.8)]),
    ("RETR in one session >= 700 MB/s plain", [("abs", "retr_mbs", 700.0)]),
    ("RETR pipelined >= 2 GB/s plain", [("abs", "retr8_mbs", 2000.0)]),
    ("RETR pipelined >= 1 GB/s TLS", [("abs", "retr8_tls_mbs", 1000.0)]),
    ("50k mbox open cold <= 0.5x popa3d", [("rel", "open_cold_s", 0.5, "popa3d")]),
    ("50k mbox open warm <= 0.013 s", [("abs", "open_warm_s", 0.013)]),
    ("idle plain session <= 150 KiB PSS", [("abs", "pss_kib", 150.0)]),
    ("idle TLS session <= 400 KiB PSS", [("abs", "pss_tls_kib", 400.0)]),
    ("QUIT after DELE 5,000 of 10k <= popa3d's time", [("rel", "quit_s", 1.0, "popa3d")]),
    ("5,000 DELE <= Dovecot", [("rel", "dele_s", 1.0, "dovecot")]),
]


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 1:
        return "%.2f" % v
    return "%.3g" % v


def titles(sizes):
    """Each metric's title, with the run's sizes in it."""
    words = {"many": "{:,}".format(sizes["many"]), "dele": "{:,}".format(sizes["dele"]),
             "half": "{:,}".format((sizes["dele"] + 1) // 2),
             "big": "%.0f" % (sizes.get("big_bytes", 0) / 1e6)}
    return {m[0]: m[2].format(**words) for m in METRICS}


def best_peer(results, key, servers):
    higher = BY_KEY[key][4]
    vals = [(results[s][key], s) for s in servers
            if s != "pop3d" and results.get(s, {}).get(key) is not None]
    if not vals:
        return None, None
    return (max if higher else min)(vals)


def judge(results, servers):
    """[(goal, "met" | "not met" | "not measured", numbers)]"""
    out = []
    mine = results.get("pop3d", {})
    for text, conds in GOALS:
        ok, words = True, []
        for c in conds:
            key = c[1]
            higher, unit = BY_KEY[key][4], BY_KEY[key][3]
            v = mine.get(key)
            if v is None:
                ok = None
                words.append("pop3d %s: not measured" % key)
                break
            if c[0] == "abs":
                good = v >= c[2] if higher else v <= c[2]
                words.append("pop3d %s %s (limit %s)" % (fmt(v), unit, fmt(c[2])))
            else:
                if c[3] == "best":
                    ref, peer = best_peer(results, key, servers)
                else:
                    peer = c[3]
                    ref = results.get(peer, {}).get(key)
                if ref is None:
                    ok = None
                    words.append("%s: not measured" % (peer or "no peer"))
                    break
                good = v >= c[2] * ref if higher else v <= c[2] * ref
                words.append("pop3d %s %s, %s %s %s: %.2fx" % (
                    fmt(v), unit, peer, fmt(ref), unit, v / ref if ref else float("inf")))
            ok = ok and good
        status = "not measured" if ok is None else ("met" if ok else "not met")
        out.append((text, status, "; ".join(words)))
    return out


def machine(repo, binary):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f
                        if l.startswith("model name")), "?")
    except OSError:
        pass
    try:
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    except OSError:
        debian = "?"
    r = subprocess.run(["git", "-C", repo, "describe", "--always", "--dirty"],
                       capture_output=True, text=True)
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "debian": debian, "pop3d_commit": r.stdout.strip() or "?",
            "pop3d_binary": binary,
            "tools": {p: dpkg_version(p) for p in ("openssl", "socat", "python3",
                                                   "python3-matplotlib")}}


def plot(out, key, title, results, servers, na):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    unit, higher = BY_KEY[key][3], BY_KEY[key][4]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    vals = [results.get(s, {}).get(key) for s in servers]
    bars = ax.bar(servers, [v or 0 for v in vals], color=[COLOURS.get(s, "grey")
                                                          for s in servers])
    top = max([v for v in vals if v] or [1])
    for b, v, s in zip(bars, vals, servers):
        label = fmt(v) if v is not None else ("n/a" if key in na.get(s, {}) else "error")
        ax.text(b.get_x() + b.get_width() / 2, (v or 0) + top * 0.01, label,
                ha="center", va="bottom", fontsize=9)
    ax.set_ylabel(unit)
    ax.set_ylim(0, top * 1.15)
    ax.set_title("%s\n(%s is better)" % (title, "higher" if higher else "lower"),
                 fontsize=10)
    fig.tight_layout()
    name = key + ".png"
    fig.savefig(os.path.join(out, name), dpi=90)
    plt.close(fig)
    return name


def write(out, data):
    """report.md, results.json and the plots in out.  data: meta, servers, results,
    na, errors, extra, timing (see bench/run)."""
    os.makedirs(out, exist_ok=True)
    servers, results, na = data["servers"], data["results"], data["na"]
    meta = data["meta"]
    mach = meta["machine"]
    names = titles(meta["sizes"])
    data["goals"] = [{"goal": g, "status": s, "numbers": n}
                     for g, s, n in judge(results, servers)]
    try:
        import matplotlib  # noqa: F401
        can_plot = True
    except ImportError:
        can_plot = False
    L = ["# pop3d and its peers: benchmark of %s" % meta["date"], ""]
    L += ["Machine: %s, %d cores, kernel %s, Debian %s." % (
        mach["cpu"], mach["cores"], mach["kernel"], mach["debian"]),
        "",
        "pop3d: commit `%s`, `%s` (%s)." % (
            mach["pop3d_commit"], mach["pop3d_binary"],
            data["extra"].get("pop3d", {}).get("version") or "not run"),
        "Peers: " + (", ".join("%s %s" % (PACKAGES[s], data["extra"][s].get("version"))
                               for s in servers if s != "pop3d") or "none") + ".",
        "Tools: " + ", ".join("%s %s" % (p, v or "not installed")
                              for p, v in mach["tools"].items()) + ".", ""]
    L += ["These figures are from one run: every server was measured once, one after "
          "the other, on this machine, with the same users, the same `%s` password hash "
          "and the same maildrops, on 127.0.0.1.  Absolute numbers move with the machine "
          "and with whatever else runs on it; read the ratios (server / pop3d in each "
          "table, pop3d / best peer under it) and the goals." % meta["hash_prefix"], ""]
    if meta.get("quickack"):
        L += ["The client acknowledged what it received at once (TCP_QUICKACK), so that "
              "no answer waited for its delayed ACK: the figures are the servers' own.  "
              "`--delayed-ack` measures as an ordinary client, where a server that leaves "
              "the end of an answer to Nagle's algorithm waits about 40 ms for it.", ""]
    else:
        L += ["The client acknowledged with TCP's delayed ACKs (`--delayed-ack`), as an "
              "ordinary client: a server that leaves the end of an answer to Nagle's "
              "algorithm waits about 40 ms at every answer for the client's ACK.", ""]
    if meta["quick"]:
        L += ["**Quick run** (`--quick`): small maildrops and short durations, to check "
              "that the benchmark works.  The goals below are judged on these figures "
              "anyway; only a full run says whether they are met.", ""]
    L += ["Sizes: sessions and handshakes for %(seconds)g s each; RETR maildrop "
          "%(big)d messages (%(big_mb).0f MB), best of %(rounds)d session(s); open "
          "%(many)s messages; DELE %(half)s of %(dele)s." % dict(
              meta["sizes"], big_mb=meta["sizes"]["big_bytes"] / 1e6,
              many="{:,}".format(meta["sizes"]["many"]),
              dele="{:,}".format(meta["sizes"]["dele"]),
              half="{:,}".format((meta["sizes"]["dele"] + 1) // 2)), ""]
    L += ["## Goals", "", "| goal | status | numbers |", "|---|---|---|"]
    for g in data["goals"]:
        L.append("| %s | **%s** | %s |" % (g["goal"], g["status"], g["numbers"]))
    L.append("")
    for key, measure, _, unit, higher in METRICS:
        vals = {s: results.get(s, {}).get(key) for s in servers}
        if all(v is None for v in vals.values()):
            continue
        mine = vals.get("pop3d")
        L += ["## %s" % names[key], "",
              "%s is better.%s" % ("Higher" if higher else "Lower",
                                   " " + NOTES[key] if key in NOTES else ""), "",
              "| server | %s | server / pop3d |" % unit, "|---|---|---|"]
        for s in servers:
            v = vals[s]
            if v is None:
                why = na.get(s, {}).get(key) or data["errors"].get(s, {}).get(measure) \
                    or "not measured"
                L.append("| %s | n/a (%s) | - |" % (s, why))
            else:
                L.append("| %s | %s | %s |" % (s, fmt(v), "%.2f" % (v / mine)
                                                if mine else "-"))
        ref, peer = best_peer(results, key, servers)
        if mine and ref:
            L += ["", "pop3d / best peer (%s): %.2f" % (peer, mine / ref)]
        if can_plot:
            L += ["", "![%s](%s)" % (names[key], plot(out, key, names[key], results,
                                                     servers, na))]
        L.append("")
    t = data.get("timing")
    if t:
        L += ["## Login timing: known against unknown users (pop3d)", ""]
        if t.get("error"):
            L += ["Not measured: %s" % t["error"], ""]
        else:
            L += [l.replace("# ", "### ", 1) if l.startswith("# ") else l
                  for l in t["report"].splitlines() if not l.startswith("Plot: ")]
            if os.path.exists(os.path.join(out, "timing.png")):
                L += ["", "![login timing](timing.png)"]
            L.append("")
    L += ["## How each server ran", ""]
    for s in servers:
        x = data["extra"].get(s, {})
        L.append("- %s %s: %s" % (s, x.get("version") or "?",
                                  "; ".join(x.get("notes", [])) or "-"))
    L += ["", "| server | TLS | session errors (plain, POP3S) | client CPU during "
          "sessions/s (cores, plain) | processes of an idle session (plain, POP3S) | "
          "client CPU for RETR one at a time (s/GB, plain) |", "|---|---|---|---|---|---|"]
    for s in servers:
        x = data["extra"].get(s, {})
        sess, tls = x.get("sessions", {}), x.get("pop3s_sessions", {})
        retr = x.get("retr", {}).get("retr_mbs", {})
        L.append("| %s | %s | %s, %s | %s | %s, %s | %s |" % (
            s, x.get("tls_version", "-"), sess.get("errors", "-"), tls.get("errors", "-"),
            fmt(sess.get("client_cpu")), x.get("pss", {}).get("processes", "-"),
            x.get("pss_tls", {}).get("processes", "-"), fmt(retr.get("client_cpu_s_gb"))))
    errs = [(s, m, e) for s in servers for m, e in data["errors"].get(s, {}).items()]
    if errs:
        L += ["", "## Errors", ""] + ["- %s, %s: %s" % e for e in errs]
    L += ["", "The whole of it, with the numbers above, is in results.json.", ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(L))
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    return data["goals"]
