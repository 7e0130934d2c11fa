#!/usr/bin/env python3
"""Regenerate the parts of the manual pages that pop3d can print itself.

    doc/gen-man.py [--check] [POP3D]

POP3D is the binary to ask (default: ./pop3d, then ../pop3d).  Two sections are
rewritten in place, between their marker comments:

  doc/pop3d.conf.5  STATEMENT SUMMARY: every statement and block of `pop3d
                    --config-help', with its argument and its one-line description
  doc/pop3d.8       the option summary: every option of `pop3d --help'

so that a statement or an option added to the code shows up in the pages (and
tests/e2e/test_docs.py fails until this script has been run and its result
committed).  With --check nothing is written: the differences are printed and the
exit status is 1 when a page is not up to date.
"""
import difflib
import os
import re
import subprocess
import sys

DOC = os.path.dirname(os.path.abspath(__file__))


def esc(text):
    """Text for a roff line: backslashes, hyphens (minus signs, so that names can be
    copied), and a leading control character."""
    t = text.replace("\\", "\\e").replace("-", "\\-")
    if t[:1] in (".", "'"):
        t = "\\&" + t
    return t


def arg_roff(arg):
    """An argument placeholder of --config-help, such as <name: string>, in italics."""
    return "\\fI" + esc(arg) + "\\fP" if arg else ""


# ---------------------------------------------------------------- pop3d.conf.5

def parse_config_help(text):
    """The tree of --config-help: a list of (name, arg, description, children or None)."""
    root = []
    stack = [root]
    comment = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            comment.append(line[1:].strip())
            continue
        if line in ("};", "}"):
            if len(stack) == 1:
                raise ValueError("unbalanced }: " + raw)
            stack.pop()
            comment = []
            continue
        m = re.match(r"([a-z][a-z0-9-]*)\s*(.*?)\s*(\{|;)$", line)
        if not m:
            raise ValueError("unexpected --config-help line: " + raw)
        name, arg, end = m.groups()
        node = (name, arg, " ".join(comment), [] if end == "{" else None)
        stack[-1].append(node)
        if end == "{":
            stack.append(node[3])
        comment = []
    if len(stack) != 1:
        raise ValueError("unterminated block in --config-help")
    return root


def render_statements(nodes):
    out = []
    for name, arg, desc, children in nodes:
        head = "\\fB" + esc(name) + "\\fP"
        if arg:
            head += " " + arg_roff(arg)
        head += " { ... };" if children is not None else ";"
        out.append(".TP")
        out.append(head)
        if desc:
            out.append(esc(desc))
        if children:
            out.append(".RS")
            out.extend(render_statements(children))
            out.append(".RE")
    return out


def conf_section(pop3d):
    text = run(pop3d, "--config-help")
    lines = [
        ".SH STATEMENT SUMMARY",
        "Every statement that",
        ".B pop3d",
        "accepts, with its argument and the description that",
        ".B pop3d \\-\\-config\\-help",
        "prints (this list is made from that output).",
        "The sections above tell what each statement does here.",
    ]
    lines += render_statements(parse_config_help(text))
    return lines


# ---------------------------------------------------------------- pop3d.8

def flags_roff(spec):
    """-d, --daemon[=NUMBER] -> option names in bold, metavariables in italics."""
    out = []
    for tok in re.findall(r"=[A-Z][A-Z_]*|[\[\]=, ]+|[^\[\]=, ]+", spec):
        if re.fullmatch(r"=[A-Z][A-Z_]*", tok):
            out.append("=\\fI" + tok[1:] + "\\fP")
        elif re.fullmatch(r"[\[\]=, ]+", tok):
            out.append(esc(tok))
        else:
            out.append("\\fB" + esc(tok) + "\\fP")
    return "".join(out)


def parse_help(text):
    """--help as a list of (heading or None, [(flags, description)])."""
    groups = [(None, [])]
    cur = None
    for raw in text.splitlines():
        if not raw.strip():
            cur = None
            continue
        if not raw.startswith(" "):
            cur = None           # usage line, tagline, bug address
            continue
        m = re.match(r"\s+(-[^\s,]+(?:, -[^\s,]+)*)(?:\s+(\S.*))?$", raw)
        if m:
            cur = [m.group(1), m.group(2) or ""]
            groups[-1][1].append(cur)
            continue
        if raw.startswith(" ") and raw.rstrip().endswith(":") and not raw.startswith("  "):
            groups.append((raw.strip()[:-1], []))
            cur = None
            continue
        if cur is not None:      # continuation of a description
            cur[1] = (cur[1] + " " + raw.strip()).strip()
            continue
        raise ValueError("unexpected --help line: " + raw)
    return [(h, [tuple(o) for o in opts]) for h, opts in groups if opts]


def options_section(pop3d):
    text = run(pop3d, "--help")
    lines = [
        ".SS Summary",
        "What",
        ".B pop3d \\-\\-help",
        "prints (this list is made from that output); the options are described",
        "below.",
    ]
    for heading, opts in parse_help(text):
        if heading:
            lines.append(".PP")
            lines.append(".I " + esc(heading))
        for flags, desc in opts:
            lines.append(".TP")
            lines.append(flags_roff(flags))
            lines.append(esc(desc[:1].upper() + desc[1:]) + ".")
    return lines


# ---------------------------------------------------------------- common

def run(pop3d, opt):
    p = subprocess.run([pop3d, opt], capture_output=True, text=True)
    if p.returncode != 0 or not p.stdout.strip():
        raise SystemExit("gen-man: %s %s failed (status %d): %s"
                         % (pop3d, opt, p.returncode, p.stderr.strip()))
    return p.stdout


PAGES = [
    ("pop3d.conf.5", "statement-summary", conf_section),
    ("pop3d.8", "option-summary", options_section),
]


def marker(kind, which):
    if which == "BEGIN":
        return ('.\\" BEGIN %s: generated by doc/gen-man.py from pop3d; do not edit'
                % kind)
    return '.\\" END %s' % kind


def regenerate(page_text, kind, body):
    begin, end = marker(kind, "BEGIN"), marker(kind, "END")
    lines = page_text.split("\n")
    try:
        b = lines.index(begin)
        e = lines.index(end, b)
    except ValueError:
        raise SystemExit("gen-man: the markers of %s are missing:\n%s\n%s"
                         % (kind, begin, end))
    return "\n".join(lines[:b + 1] + body + lines[e:])


def find_pop3d(argv):
    if argv:
        return argv[0]
    for p in ("./pop3d", os.path.join(DOC, "..", "pop3d")):
        if os.access(p, os.X_OK):
            return p
    raise SystemExit("gen-man: give the pop3d binary to use: doc/gen-man.py PATH/pop3d")


def main(argv):
    check = False
    if argv and argv[0] == "--check":
        check, argv = True, argv[1:]
    pop3d = find_pop3d(argv)
    stale = 0
    for page, kind, make in PAGES:
        path = os.path.join(DOC, page)
        with open(path, encoding="utf-8") as f:
            old = f.read()
        new = regenerate(old, kind, make(pop3d))
        if new == old:
            continue
        if check:
            stale += 1
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), new.splitlines(True), "doc/" + page,
                "doc/" + page + " (regenerated)"))
        else:
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.write(new)
            os.replace(path + ".tmp", path)
            print("gen-man: updated doc/" + page)
    if stale:
        print("gen-man: %d page(s) out of date: run doc/gen-man.py PATH/pop3d "
              "(or make update-man in the build directory)" % stale)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
