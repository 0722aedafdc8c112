"""The test suite's cost, before and after a change: the slowest tests of two ``pytest --durations`` logs, side by side.

    .venv/bin/python benchmarks/test_durations.py BEFORE.log AFTER.log [--top 20]

Each log is the output of ``pytest --durations=N`` (``make test`` prints the slowest 60). A test's cost is its
setup + call + teardown. Prints a markdown table (the slowest ``--top`` tests of BEFORE, with their AFTER time, or "< t"
when AFTER's list stops above them) and each log's totals line, for docs/benchmarks.md.
"""
import argparse
import re
from collections import defaultdict
from pathlib import Path

LINE = re.compile(r"^([\d.]+)s (setup|call|teardown)\s+(\S+)")
TOTAL = re.compile(r"^=*\s*(\d+ passed.*) in ([\d.]+)s")


def read(path):
    """``({test id: seconds}, totals line)`` of one log."""
    cost, total = defaultdict(float), ""
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        match = LINE.match(line.strip())
        if match:
            cost[match.group(3)] += float(match.group(1))
        elif TOTAL.match(line.strip()):
            total = line.strip().strip("= ")
    return dict(cost), total


def table(before, after, top):
    rows = ["| test | before (s) | after (s) |", "|---|---:|---:|"]
    floor = min(after.values(), default=0.0)  # a test absent from AFTER's list took less than its fastest entry
    for test, seconds in sorted(before.items(), key=lambda kv: -kv[1])[:top]:
        later = after.get(test)
        rows.append(f"| `{test}` | {seconds:.1f} | {f'< {floor:.1f}' if later is None else f'{later:.1f}'} |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    (before, before_total), (after, after_total) = read(args.before), read(args.after)
    print(table(before, after, args.top))
    print(f"\nbefore: {before_total}\nafter: {after_total}")


if __name__ == "__main__":
    main()
