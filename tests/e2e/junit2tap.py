"""Turn a pytest JUnit XML report into TAP lines."""
import sys
import xml.etree.ElementTree as ET

def main(path):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        print("not ok 1 - no pytest report: %s" % e)
        print("1..1")
        return 1
    n = 0
    failed = 0
    for case in root.iter("testcase"):
        n += 1
        name = "%s::%s" % (case.get("classname", ""), case.get("name", ""))
        skip = case.find("skipped")
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if skip is not None:
            print("ok %d - %s # SKIP %s" % (n, name, (skip.get("message") or "").replace("\n", " ")))
        elif bad is not None:
            failed += 1
            print("not ok %d - %s" % (n, name))
            for line in (bad.get("message") or "").splitlines()[:20]:
                print("#   " + line)
        else:
            print("ok %d - %s" % (n, name))
    print("1..%d" % n)
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
