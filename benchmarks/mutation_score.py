"""Mutation score per module from `mutmut results --all true` (run after `mutmut run`).

Killed = killed by a test, by a timeout or by a crash; survived and "no tests" (no selected test
reaches the code) count against the score. Usage: python benchmarks/mutation_score.py
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys

LINE = re.compile(r"^\s*(?P<module>[\w.]+?)\.(?:x_|xǁ)[^:]*__mutmut_\d+: (?P<status>.+)$")
KILLED = {"killed", "timeout", "segfault", "suspicious"}


def main() -> int:
    done = subprocess.run(["mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True)
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for line in done.stdout.splitlines():
        match = LINE.match(line)
        if match:
            counts[match["module"]][match["status"].strip()] += 1
    print(f"{'module':<24} {'killed':>7} {'survived':>9} {'no tests':>9} {'unchecked':>10} {'score':>7}")
    total = collections.Counter()
    for module, c in sorted(counts.items()):
        total.update(c)
        print(row(module, c))
    print(row("all", total))
    return 0


def row(name: str, c: collections.Counter) -> str:
    killed = sum(c[s] for s in KILLED)
    checked = killed + c["survived"] + c["no tests"]
    score = f"{killed / checked:.1%}" if checked else "–"
    return f"{name:<24} {killed:>7} {c['survived']:>9} {c['no tests']:>9} {c['not checked']:>10} {score:>7}"


if __name__ == "__main__":
    sys.exit(main())
