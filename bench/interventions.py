"""A layer sweep of circle patching, batched, against one problem at a time, in the same run.

    python bench/interventions.py [--task weekday-successor] [--layers 0,4,8,12] [--batch-size 512]

Both sides compute the same patched activations (probe fitted per layer) and
run every (problem, target) pair through the embedded model with a hook; the
reference runs one pair per forward pass, the way a loop over problems does.
Prints the times, the speed-up, and the largest logit difference between them.
"""

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from mvf import activations, interventions, models, probes, tasks, tokens  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="weekday-successor")
    parser.add_argument("--layers", default="0,4,8,12")
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args()

    model = models.load_model("smollm2-135m", device="cpu")
    problems = tasks.task(args.task)
    hooks = [f"blocks.{layer}.hook_resid_post" for layer in map(int, args.layers.split(","))]
    positions = np.array([tasks.positions(model.tokenizer, p, tokens.prepends_bos(model))["operand"] for p in problems])
    clean = activations.collect_at_positions(model, [p.prompt for p in problems], positions, hooks)
    starts = np.array([p.start for p in problems])
    index, target = interventions.target_pairs(problems)
    prompts = [problems[i].prompt for i in index]
    patched = {}
    for hook in hooks:
        acts = clean[hook].numpy().astype(np.float64)
        probe = probes.fit_circle_probe(acts, starts, problems[0].period)
        patched[hook] = interventions.circle_patch(probe, acts[index], probes.circle_targets(target, problems[0].period))

    results = {}
    for label, batch_size in (("batched", args.batch_size), ("one at a time", 1)):
        start = time.perf_counter()
        results[label] = [
            interventions.patched_logits(model, prompts, hook, positions[index], patched[hook], batch_size) for hook in hooks
        ]
        results[label + " time"] = time.perf_counter() - start
    gap = max(float((a - b).abs().max()) for a, b in zip(results["batched"], results["one at a time"]))
    print(f"{args.task}: {len(index)} (problem, target) pairs x {len(hooks)} layers")
    print(f"batched ({args.batch_size} per pass): {results['batched time']:7.1f} s")
    print(f"one at a time:          {results['one at a time time']:7.1f} s")
    print(f"speed-up: {results['one at a time time'] / results['batched time']:.1f}x; max |logit difference| {gap:.2e}")


if __name__ == "__main__":
    main()
