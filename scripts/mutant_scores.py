"""Print the mutation score of each mutated module after `make mutants`, the mutants that survived, and the lines
marked equivalent.

Reads mutmut's per-file results (``mutants/**/*.py.meta``). A mutant counts
as killed when a test failed, timed out or the type check caught it; as not
killed when it survived or no test ran it. Mutants that cannot change
behaviour are not generated: their line carries ``# pragma: no mutate (reason)``,
listed at the end with the reason.
"""

import json
import re
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

KILLED = {"killed", "timeout", "caught by type check"}
TARGET = 0.85  # the share of mutants each science module's tests must kill
PRAGMA = re.compile(r"# pragma: no mutate \((.*)\)")


def main() -> int:
    metas = sorted(Path("mutants").rglob("*.py.meta"))
    if not metas:
        print("no mutmut results under mutants/: run `make mutants` first", file=sys.stderr)
        return 1
    survivors, below = [], []
    print(f"{'module':24} {'killed':>7} {'not killed':>10} {'score':>6} {'not run yet':>11}  target {TARGET:.0%}")
    for meta in metas:
        statuses = {key: status_by_exit_code[code] for key, code in json.loads(meta.read_text())["exit_code_by_key"].items()}
        counts = Counter("killed" if s in KILLED else s if s in {"skipped", "not checked"} else "not killed"
                         for s in statuses.values())  # fmt: skip
        judged = counts["killed"] + counts["not killed"]
        module = str(meta.relative_to("mutants")).removesuffix(".meta")
        score = counts["killed"] / judged if judged else float("nan")
        met = "met" if score >= TARGET and not counts["not checked"] else "NOT MET"
        below += [module] if met != "met" else []
        print(f"{module:24} {counts['killed']:7d} {counts['not killed']:10d} {score:6.0%} {counts['not checked']:11d}  {met}")
        survivors += [f"{key} ({status})" for key, status in sorted(statuses.items())
                      if status not in KILLED | {"skipped", "not checked"}]  # fmt: skip
    print(f"\n{len(survivors)} not killed (`mutmut show <name>` prints one):")
    print("\n".join(survivors))
    print("\nMarked equivalent (not generated):")
    for meta in metas:
        source = Path(str(meta.relative_to("mutants")).removesuffix(".meta"))
        for number, line in enumerate(source.read_text().splitlines(), 1):
            if found := PRAGMA.search(line):
                print(f"{source}:{number}: {found.group(1)}")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
