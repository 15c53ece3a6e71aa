"""Compare the book's stored intervention sweep with the same sweep made with another seed.

    python -m mvf.commands.sweep_interventions --model gemma-3-270m --seed 1 --folder /tmp/seed1
    python -m mvf.commands.compare_sweeps --model gemma-3-270m --other /tmp/seed1

The seed draws the new values each problem is patched to, the probe's
held-out split and the shuffled calendar orders of its null. Prints, per
position, how many layers keep their verdict, the verdicts' counts in each
sweep, how far the circle patch's share moves where the verdict is judged,
and the layer each sweep's largest probe margin picks (the chapter's headline).
"""

import argparse
import sys
from pathlib import Path

from mvf import models
from mvf.book import stored_sweeps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=models.DEFAULT_MODEL)
    parser.add_argument("--task", default="weekday-successor")
    parser.add_argument("--other", type=Path, required=True, help="the folder of the other sweep (--folder of the sweep)")
    args = parser.parse_args()

    sweeps = {}
    for folder in (stored_sweeps.SWEEPS, args.other):
        sweep = stored_sweeps.load(args.model, args.task, folder)
        if sweep is None:
            sys.exit(f"no sweep of {args.model} on {args.task} in {folder}; make one with "
                     f"`python -m mvf.commands.sweep_interventions --model {args.model} --task {args.task} --folder {folder}`.")  # fmt: skip
        sweeps[f"seed {sweep.settings['seed']}" + (" (the book's)" if folder == stored_sweeps.SWEEPS else "")] = sweep
    if len(set(sweeps)) < 2:
        sys.exit(f"both sweeps were made with the same seed ({next(iter(sweeps))}); make the other with another --seed.")
    cells = stored_sweeps.side_by_side(sweeps)
    first, second = sweeps
    for position, rows in cells.groupby(level="position"):
        verdicts = rows["verdict"]
        judged = verdicts[first] != "inconclusive"
        moved = (rows.loc[judged, ("circle share", first)] - rows.loc[judged, ("circle share", second)]).abs()
        print(f"{position}: the verdict is the same at {(verdicts[first] == verdicts[second]).sum()} of {len(rows)} layers")
        for name in sweeps:
            counts = ", ".join(f"{n} {category}" for category, n in verdicts[name].value_counts().items())
            margins = rows[("margin", name)].droplevel("position")
            print(f"  {name}: {counts}; largest probe margin {margins.max():.2f} at layer {margins.idxmax()}")
        if len(moved):
            print(f"  the circle patch's share where {first} judges it: moves by {moved.median():.3f} (median), "
                  f"{moved.max():.3f} at most")


if __name__ == "__main__":
    sys.exit(main())
