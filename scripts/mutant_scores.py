"""Print the mutation score of each mutated module after `make mutants`, and the mutants that survived.

Reads mutmut's per-file results (``mutants/**/*.py.meta``). A mutant counts
as killed when a test failed, timed out or the type check caught it; as not
killed when it survived or no test ran it. Mutants marked equivalent carry
``# pragma: no mutate`` with their reason in the source and are not generated.
"""

import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

KILLED = {"killed", "timeout", "caught by type check"}


def main() -> int:
    metas = sorted(Path("mutants").rglob("*.py.meta"))
    if not metas:
        print("no mutmut results under mutants/: run `make mutants` first", file=sys.stderr)
        return 1
    survivors = []
    print(f"{'module':28} {'killed':>7} {'not killed':>10} {'score':>6} {'not run yet':>11}")
    for meta in metas:
        statuses = {key: status_by_exit_code[code] for key, code in json.loads(meta.read_text())["exit_code_by_key"].items()}
        counts = Counter("killed" if s in KILLED else s if s in {"skipped", "not checked"} else "not killed"
                         for s in statuses.values())  # fmt: skip
        judged = counts["killed"] + counts["not killed"]
        module = str(meta.relative_to("mutants")).removesuffix(".meta")
        score = f"{counts['killed'] / judged:.0%}" if judged else "—"
        print(f"{module:28} {counts['killed']:7d} {counts['not killed']:10d} {score:>6} {counts['not checked']:11d}")
        survivors += [f"{key} ({status})" for key, status in sorted(statuses.items())
                      if status not in KILLED | {"skipped", "not checked"}]  # fmt: skip
    print(f"\n{len(survivors)} not killed (`mutmut show <name>` prints one):")
    print("\n".join(survivors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
