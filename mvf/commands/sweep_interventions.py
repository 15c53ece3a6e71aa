"""Compute and store an intervention sweep at every layer, both positions: ``mvf/data/sweeps/<model>-<task>.json``.

    python -m mvf.commands.sweep_interventions [--model smollm2-135m] [--task weekday-successor] [--k 5]
        [--site hook_resid_pre] [--per-problem 2|all] [--seed 0] [--folder mvf/data/sweeps]

The interventions chapter's methods (``interventions.position_sweep``) at
every layer, at the operand and at the final token, with the chapter's
defaults; the chapter shows the stored tables and recomputes its own layers
live to check that they agree. The time it took is in the file's provenance.
``--folder`` stores it elsewhere (another seed's sweep, for
``python -m mvf.commands.compare_sweeps``), leaving the book's own untouched.
"""

import argparse
import os
import sys
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402

from mvf import activations, interventions, models, results, tasks  # noqa: E402
from mvf.book import stored_sweeps  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=models.DEFAULT_MODEL)
    parser.add_argument("--task", default="weekday-successor")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--site", default="hook_resid_pre")
    parser.add_argument("--per-problem", type=lambda text: None if text == "all" else int(text), default=2,
                        help="new values per problem, or 'all' (the paper's p - 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folder", type=Path, default=stored_sweeps.SWEEPS, help="where to store it")
    args = parser.parse_args()

    started = time.monotonic()
    model = models.load_model(args.model)
    problems = tasks.task(args.task)
    hooks = activations.resid_hooks(model, args.site)
    quality, effects = [], []
    for position in ("operand", "final"):
        measured = interventions.position_sweep(model, problems, position, hooks, hooks, args.k, args.per_problem, args.seed)
        quality.append(measured[0])
        effects.append(measured[1])
    settings = stored_sweeps.sweep_settings(model, problems, args.site, args.k, args.per_problem, args.seed)
    # The book's own folder is the default and not named, so that the stored command runs on any machine.
    options = {key: value for key, value in vars(args).items() if key != "folder" or value != stored_sweeps.SWEEPS}
    provenance = {
        "command": "python -m mvf.commands.sweep_interventions " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in options.items()),
        "date": date.today().isoformat(), "hardware": results.hardware(), "versions": results.versions(), "minutes": round((time.monotonic() - started) / 60, 1),
    }  # fmt: skip
    path = stored_sweeps.save(args.model, args.task, settings, provenance, pd.concat(quality, ignore_index=True),
                              pd.concat(effects, ignore_index=True), folder=args.folder)  # fmt: skip
    print(f"{path}: {len(hooks)} layers x 2 positions in {provenance['minutes']} min")


if __name__ == "__main__":
    sys.exit(main())
