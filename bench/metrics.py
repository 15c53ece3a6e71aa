"""Time S + M for a batch of planes against the paper-style reference, in the same run.

    python bench/metrics.py [--planes 256] [--points 4096] [--reference-planes 8]

The reference (per-angle histograms, 10 000 steps of gradient ascent) takes
seconds per plane, so it runs on the first ``--reference-planes`` planes only;
both sides are reported per plane. Prints the speed-up and how the two M
estimates compare on the planes both measured.
"""

import argparse
import time

import numpy as np

from mvf import metrics, synthetic
from mvf.metrics_reference import mixture_index_reference, separability_index_reference


def _planes(count: int, points: int) -> np.ndarray:
    names = list(synthetic.DISTRIBUTIONS)
    return np.stack([synthetic.sample(names[i % len(names)], n=points, seed=i) for i in range(count)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--planes", type=int, default=256)
    parser.add_argument("--points", type=int, default=4096)
    parser.add_argument("--reference-planes", type=int, default=8)
    args = parser.parse_args()
    planes = _planes(args.planes, args.points)

    start = time.perf_counter()
    fast_s = metrics.separability_index(planes)
    fast_m = metrics.mixture_index(planes)
    fast = (time.perf_counter() - start) / args.planes

    subset = planes[: args.reference_planes]
    start = time.perf_counter()
    ref_s = np.array([separability_index_reference(p) for p in subset])
    ref_m = np.array([mixture_index_reference(p) for p in subset])
    reference = (time.perf_counter() - start) / len(subset)

    gap_m = fast_m[: len(subset)] - ref_m
    print(f"planes: {args.planes} x {args.points} points (reference on {len(subset)})")
    print(f"mvf.metrics  S+M per plane: {fast * 1e3:8.2f} ms")
    print(f"reference    S+M per plane: {reference * 1e3:8.2f} ms")
    print(f"speed-up per plane: {reference / fast:.0f}x")
    print(f"max |S - S_ref|: {np.abs(fast_s[: len(subset)] - ref_s).max():.4f} bits")
    print(f"M - M_ref: min {gap_m.min():+.4f}, mean {gap_m.mean():+.4f}, max {gap_m.max():+.4f}")


if __name__ == "__main__":
    main()
